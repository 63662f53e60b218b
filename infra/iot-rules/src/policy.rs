//! AWS IoT Core policies, evaluated as IoT Core does for MQTT: the device policy of
//! `template.yaml` decides, locally too, what a client may connect as, publish, subscribe to and
//! receive.
//!
//! Supported: `Effect` `Allow`/`Deny`; `Action` (string or list) with `*` wildcards (`iot:*`);
//! `Resource` (string or list) with `*` (any run of characters, `/` included) and `?` (one
//! character); the policy variables `${iot:ClientId}`, `${iot:Connection.Thing.ThingName}`,
//! `${iot:Connection.Thing.IsAttached}`, `${iot:Connection.Thing.ThingTypeName}` and
//! `${iot:Connection.Thing.Attributes[<name>]}`; `Condition` operators `Bool`, `StringEquals`,
//! `StringNotEquals`, `StringLike`, `StringNotLike`, `ArnEquals`, `ArnLike` (with `...IfExists`
//! forms) on `iot:*` condition keys. Anything else is an error when the policy is read, never a
//! silent allow. An explicit `Deny` wins; no matching `Allow` denies.
//!
//! A resource whose policy variable has no value (a client connected without an attached
//! thing has no `iot:Connection.Thing.ThingName`) matches nothing, as in AWS.

use std::collections::BTreeMap;

use serde_json::Value;
use thiserror::Error;

/// A policy that cannot be evaluated faithfully.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("IoT policy: {0}")]
pub struct PolicyError(String);

/// An MQTT action IoT Core authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `iot:Connect` on `client/<clientId>`.
    Connect,
    /// `iot:Publish` on `topic/<topic>`.
    Publish,
    /// `iot:Subscribe` on `topicfilter/<filter>`.
    Subscribe,
    /// `iot:Receive` on `topic/<topic>`.
    Receive,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Connect => "iot:Connect",
            Self::Publish => "iot:Publish",
            Self::Subscribe => "iot:Subscribe",
            Self::Receive => "iot:Receive",
        }
    }

    fn resource_type(self) -> &'static str {
        match self {
            Self::Connect => "client",
            Self::Publish | Self::Receive => "topic",
            Self::Subscribe => "topicfilter",
        }
    }
}

/// Who is asking: the connection's identity.
#[derive(Debug, Clone, Default)]
pub struct Principal<'a> {
    /// The MQTT client id.
    pub client_id: &'a str,
    /// The thing the connection's certificate (or credential) is attached to, if any.
    pub thing: Option<&'a str>,
    /// The thing's type.
    pub thing_type: Option<&'a str>,
    /// The thing's attributes.
    pub attributes: Option<&'a BTreeMap<String, String>>,
}

impl Principal<'_> {
    fn variable(&self, name: &str) -> Option<String> {
        match name {
            "iot:ClientId" => Some(self.client_id.to_owned()),
            "iot:Connection.Thing.ThingName" => self.thing.map(str::to_owned),
            "iot:Connection.Thing.IsAttached" => Some(
                if self.thing.is_some() {
                    "true"
                } else {
                    "false"
                }
                .to_owned(),
            ),
            "iot:Connection.Thing.ThingTypeName" => self.thing_type.map(str::to_owned),
            _ => {
                let attribute = name
                    .strip_prefix("iot:Connection.Thing.Attributes[")?
                    .strip_suffix(']')?;
                self.attributes?.get(attribute).cloned()
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operator {
    Bool,
    StringEquals,
    StringNotEquals,
    StringLike,
    StringNotLike,
}

#[derive(Debug, Clone)]
struct Condition {
    operator: Operator,
    if_exists: bool,
    key: String,
    values: Vec<String>,
}

#[derive(Debug, Clone)]
struct Statement {
    effect: Effect,
    actions: Vec<String>,
    resources: Vec<String>,
    conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Debug, Clone)]
pub struct Policy {
    statements: Vec<Statement>,
}

fn strings(value: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match value {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err(PolicyError(format!("{what} must hold strings"))),
            })
            .collect(),
        Value::Bool(b) => Ok(vec![b.to_string()]),
        _ => Err(PolicyError(format!(
            "{what} must be a string or a list of strings"
        ))),
    }
}

impl Policy {
    /// Reads a policy document (`{"Version": "2012-10-17", "Statement": [...]}`).
    ///
    /// # Errors
    /// Anything this evaluator would not evaluate as AWS does.
    pub fn from_json(document: &Value) -> Result<Policy, PolicyError> {
        let statements = match document.get("Statement") {
            Some(Value::Array(list)) => list.clone(),
            Some(single @ Value::Object(_)) => vec![single.clone()],
            _ => return Err(PolicyError("no Statement".to_owned())),
        };
        let statements = statements
            .iter()
            .enumerate()
            .map(|(i, statement)| {
                Self::statement(statement)
                    .map_err(|e| PolicyError(format!("Statement {i}: {}", e.0)))
            })
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    fn statement(statement: &Value) -> Result<Statement, PolicyError> {
        let Value::Object(fields) = statement else {
            return Err(PolicyError("not an object".to_owned()));
        };
        for key in fields.keys() {
            if !matches!(
                key.as_str(),
                "Effect" | "Action" | "Resource" | "Condition" | "Sid"
            ) {
                return Err(PolicyError(format!("{key} is not supported")));
            }
        }
        let effect = match fields.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(PolicyError("Effect must be Allow or Deny".to_owned())),
        };
        let actions = strings(fields.get("Action").unwrap_or(&Value::Null), "Action")?;
        let resources = strings(fields.get("Resource").unwrap_or(&Value::Null), "Resource")?;
        let mut conditions = Vec::new();
        if let Some(condition) = fields.get("Condition") {
            let Value::Object(operators) = condition else {
                return Err(PolicyError("Condition must be an object".to_owned()));
            };
            for (name, keys) in operators {
                let (base, if_exists) = match name.strip_suffix("IfExists") {
                    Some(base) => (base, true),
                    None => (name.as_str(), false),
                };
                let operator = match base {
                    "Bool" => Operator::Bool,
                    "StringEquals" | "ArnEquals" => Operator::StringEquals,
                    "StringNotEquals" | "ArnNotEquals" => Operator::StringNotEquals,
                    "StringLike" | "ArnLike" => Operator::StringLike,
                    "StringNotLike" | "ArnNotLike" => Operator::StringNotLike,
                    other => {
                        return Err(PolicyError(format!(
                            "condition operator {other} is not supported"
                        )));
                    }
                };
                let Value::Object(keys) = keys else {
                    return Err(PolicyError(format!(
                        "{name} must map condition keys to values"
                    )));
                };
                for (key, values) in keys {
                    conditions.push(Condition {
                        operator,
                        if_exists,
                        key: key.clone(),
                        values: strings(values, key)?,
                    });
                }
            }
        }
        Ok(Statement {
            effect,
            actions,
            resources,
            conditions,
        })
    }

    /// Whether `principal` may do `action` on `name` (the client id, topic or topic filter) in
    /// the account and region of `arn_prefix` (`arn:aws:iot:<region>:<account>`).
    pub fn allows(
        &self,
        arn_prefix: &str,
        principal: &Principal<'_>,
        action: Action,
        name: &str,
    ) -> bool {
        let resource = format!("{arn_prefix}:{}/{name}", action.resource_type());
        let mut allowed = false;
        for statement in &self.statements {
            if !statement.applies(principal, action, &resource) {
                continue;
            }
            match statement.effect {
                Effect::Deny => return false,
                Effect::Allow => allowed = true,
            }
        }
        allowed
    }
}

impl Statement {
    fn applies(&self, principal: &Principal<'_>, action: Action, resource: &str) -> bool {
        self.actions.iter().any(|pattern| {
            like(
                &pattern.to_ascii_lowercase(),
                &action.name().to_ascii_lowercase(),
            )
        }) && self.resources.iter().any(|pattern| {
            substitute(pattern, principal).is_some_and(|pattern| like(&pattern, resource))
        }) && self.conditions.iter().all(|c| c.holds(principal))
    }
}

impl Condition {
    fn holds(&self, principal: &Principal<'_>) -> bool {
        let Some(actual) = principal.variable(&self.key) else {
            return self.if_exists;
        };
        let values = self.values.iter().filter_map(|v| substitute(v, principal));
        match self.operator {
            Operator::Bool => values.into_iter().any(|v| v.eq_ignore_ascii_case(&actual)),
            Operator::StringEquals => values.into_iter().any(|v| v == actual),
            Operator::StringNotEquals => values.into_iter().all(|v| v != actual),
            Operator::StringLike => values.into_iter().any(|v| like(&v, &actual)),
            Operator::StringNotLike => values.into_iter().all(|v| !like(&v, &actual)),
        }
    }
}

/// `text` with its `${...}` policy variables replaced; `None` if one has no value.
fn substitute(text: &str, principal: &Principal<'_>) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find('}')?;
        let name = &after[..end];
        let value = match name {
            "*" => "*".to_owned(),
            "?" => "?".to_owned(),
            "$" => "$".to_owned(),
            _ => principal.variable(name)?,
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// IAM-style matching: `*` any run of characters (possibly empty, `/` included), `?` exactly one.
fn like(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests;
