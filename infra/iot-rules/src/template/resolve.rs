//! Parameters, conditions and intrinsic functions, resolved as a local stack without AWS sees
//! them: account `000000000000`, region `local`, stack `hearth-local`, and resources of the
//! template named by local URLs (`local://queue/<LogicalId>`, `local://table/<LogicalId>`).

use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet};

use super::TemplateError;
use super::yaml::Node;

pub(crate) const ACCOUNT_ID: &str = "000000000000";
pub(crate) const REGION: &str = "local";
pub(crate) const PARTITION: &str = "aws";
pub(crate) const STACK_NAME: &str = "hearth-local";

pub(crate) const QUEUE: &str = "AWS::SQS::Queue";
pub(crate) const TABLE: &str = "AWS::DynamoDB::Table";
pub(crate) const TOPIC_RULE: &str = "AWS::IoT::TopicRule";
pub(crate) const IOT_POLICY: &str = "AWS::IoT::Policy";
const FUNCTION: &str = "AWS::Serverless::Function";
const HTTP_API: &str = "AWS::Serverless::HttpApi";
const API_V2: &str = "AWS::ApiGatewayV2::Api";
const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";

/// `arn:aws:iot:local:000000000000`: the prefix of IoT resource ARNs as they resolve locally.
pub(crate) fn iot_arn_prefix() -> String {
    format!("arn:{PARTITION}:iot:{REGION}:{ACCOUNT_ID}")
}

/// How deep `!Ref <TopicRule>` may chase rule names through other rules.
const MAX_DEPTH: u32 = 16;

/// A resolved value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Val>),
    Map(Vec<(String, Val)>),
    /// `!Ref` to a resource of the template (its local value depends on where it is used).
    Ref(String),
    /// `!GetAtt Resource.Attribute`.
    GetAtt(String, String),
    /// `!Ref AWS::NoValue`: the property is left out.
    NoValue,
}

impl Val {
    fn kind(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "a boolean",
            Val::Int(_) | Val::Float(_) => "a number",
            Val::Str(_) => "a string",
            Val::List(_) => "a list",
            Val::Map(_) => "a mapping",
            Val::Ref(_) => "a !Ref to a resource",
            Val::GetAtt(..) => "a !GetAtt",
            Val::NoValue => "AWS::NoValue",
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn int(&self, what: &str) -> Result<i64, String> {
        match self {
            Val::Int(i) => Ok(*i),
            Val::Str(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("{what}: `{s}` is not an integer")),
            other => Err(format!(
                "{what}: expected an integer, found {}",
                other.kind()
            )),
        }
    }

    pub(crate) fn boolean(&self, what: &str) -> Result<bool, String> {
        match self {
            Val::Bool(b) => Ok(*b),
            Val::Str(s) if s.eq_ignore_ascii_case("true") => Ok(true),
            Val::Str(s) if s.eq_ignore_ascii_case("false") => Ok(false),
            other => Err(format!(
                "{what}: expected a boolean, found {}",
                other.kind()
            )),
        }
    }

    pub(crate) fn list(&self, what: &str) -> Result<&[Val], String> {
        match self {
            Val::List(items) => Ok(items),
            other => Err(format!("{what}: expected a list, found {}", other.kind())),
        }
    }

    pub(crate) fn map(&self, what: &str) -> Result<&[(String, Val)], String> {
        match self {
            Val::Map(entries) => Ok(entries),
            other => Err(format!(
                "{what}: expected a mapping, found {}",
                other.kind()
            )),
        }
    }
}

#[derive(Debug)]
struct Parameter {
    value: Option<String>,
    list: bool,
}

#[derive(Debug)]
pub(crate) struct Resource<'t> {
    pub(crate) ty: &'t str,
    pub(crate) node: &'t Node,
    /// Whether the resource exists: it has no `Condition`, or its condition is true.
    pub(crate) created: bool,
}

/// What the resolver knows about the template.
pub(crate) struct Ctx<'t> {
    parameters: BTreeMap<String, Parameter>,
    conditions: BTreeMap<String, bool>,
    pub(crate) resources: Vec<(&'t str, Resource<'t>)>,
    index: BTreeMap<&'t str, usize>,
    depth: Cell<u32>,
}

fn scalar_text(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        Node::Float(f) => Some(f.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl<'t> Ctx<'t> {
    pub(crate) fn new(
        root: &'t Node,
        overrides: &BTreeMap<String, String>,
    ) -> Result<Self, TemplateError> {
        let invalid = |message: String| TemplateError::Template(message);
        let mut parameters = BTreeMap::new();
        for (name, spec) in root
            .get("Parameters")
            .map(Node::entries)
            .unwrap_or_default()
        {
            let ty = spec.get("Type").and_then(Node::as_str).unwrap_or("String");
            let default = match spec.get("Default") {
                None => None,
                Some(node) => Some(scalar_text(node).ok_or_else(|| {
                    invalid(format!("parameter {name}: Default must be a plain value"))
                })?),
            };
            let value = match overrides.get(name) {
                Some(value) => {
                    if let Some(Node::Seq(allowed)) = spec.get("AllowedValues")
                        && !allowed
                            .iter()
                            .any(|a| scalar_text(a).as_ref() == Some(value))
                    {
                        return Err(invalid(format!(
                            "parameter {name}: `{value}` is not one of its AllowedValues"
                        )));
                    }
                    Some(value.clone())
                }
                None => default,
            };
            let list = ty == "CommaDelimitedList" || ty.starts_with("List<");
            parameters.insert(name.clone(), Parameter { value, list });
        }
        if let Some(unknown) = overrides.keys().find(|k| !parameters.contains_key(*k)) {
            return Err(invalid(format!(
                "parameter override {unknown}: the template has no such parameter"
            )));
        }

        let mut resources = Vec::new();
        let mut index = BTreeMap::new();
        let Some(Node::Map(entries)) = root.get("Resources") else {
            return Err(invalid("the template has no Resources mapping".to_owned()));
        };
        for (id, node) in entries {
            let Some(ty) = node.get("Type").and_then(Node::as_str) else {
                return Err(TemplateError::Resource {
                    resource: id.clone(),
                    message: "Type must be a plain string".to_owned(),
                });
            };
            index.insert(id.as_str(), resources.len());
            resources.push((
                id.as_str(),
                Resource {
                    ty,
                    node,
                    created: true,
                },
            ));
        }

        let mut ctx = Ctx {
            parameters,
            conditions: BTreeMap::new(),
            resources,
            index,
            depth: Cell::new(0),
        };
        let definitions = root
            .get("Conditions")
            .map(Node::entries)
            .unwrap_or_default();
        let mut conditions = BTreeMap::new();
        for (name, _) in definitions {
            let mut visiting = BTreeSet::new();
            ctx.condition(name, definitions, &mut conditions, &mut visiting)
                .map_err(|message| invalid(format!("condition {name}: {message}")))?;
        }
        ctx.conditions = conditions;
        for (id, resource) in &mut ctx.resources {
            if let Some(condition) = resource.node.get("Condition") {
                let Some(name) = condition.as_str() else {
                    return Err(TemplateError::Resource {
                        resource: (*id).to_owned(),
                        message: "Condition must be the name of a condition".to_owned(),
                    });
                };
                let Some(value) = ctx.conditions.get(name) else {
                    return Err(TemplateError::Resource {
                        resource: (*id).to_owned(),
                        message: format!("Condition {name} is not defined in Conditions"),
                    });
                };
                resource.created = *value;
            }
        }
        Ok(ctx)
    }

    pub(crate) fn resource(&self, id: &str) -> Option<&Resource<'t>> {
        self.index.get(id).map(|&i| &self.resources[i].1)
    }

    fn condition(
        &self,
        name: &str,
        definitions: &[(String, Node)],
        done: &mut BTreeMap<String, bool>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<bool, String> {
        if let Some(value) = done.get(name) {
            return Ok(*value);
        }
        let Some((_, definition)) = definitions.iter().find(|(n, _)| n == name) else {
            return Err(format!("condition {name} is not defined in Conditions"));
        };
        if !visiting.insert(name.to_owned()) {
            return Err(format!("condition {name} depends on itself"));
        }
        let value = self.condition_expr(definition, definitions, done, visiting)?;
        visiting.remove(name);
        done.insert(name.to_owned(), value);
        Ok(value)
    }

    fn condition_expr(
        &self,
        node: &Node,
        definitions: &[(String, Node)],
        done: &mut BTreeMap<String, bool>,
        visiting: &mut BTreeSet<String>,
    ) -> Result<bool, String> {
        match node {
            Node::Fn(name, arg) => match (name.as_str(), arg.as_ref()) {
                ("Equals", Node::Seq(items)) if items.len() == 2 => {
                    let left = self.text(&self.resolve(&items[0])?)?;
                    let right = self.text(&self.resolve(&items[1])?)?;
                    Ok(left == right)
                }
                ("Not", Node::Seq(items)) if items.len() == 1 => {
                    Ok(!self.condition_expr(&items[0], definitions, done, visiting)?)
                }
                ("And" | "Or", Node::Seq(items)) if (2..=10).contains(&items.len()) => {
                    let mut values = Vec::with_capacity(items.len());
                    for item in items {
                        values.push(self.condition_expr(item, definitions, done, visiting)?);
                    }
                    Ok(if name == "And" {
                        values.iter().all(|v| *v)
                    } else {
                        values.iter().any(|v| *v)
                    })
                }
                ("Condition", Node::Str(other)) => {
                    self.condition(other, definitions, done, visiting)
                }
                ("Equals" | "Not" | "And" | "Or" | "Condition", _) => Err(format!(
                    "malformed Fn::{name} (Equals takes 2 values, Not 1 condition, And and Or 2 \
                     to 10 conditions, Condition a name)"
                )),
                _ => Err(unsupported_function(name)),
            },
            Node::Map(entries) => match entries.as_slice() {
                [(key, Node::Str(other))] if key == "Condition" => {
                    self.condition(other, definitions, done, visiting)
                }
                _ => Err("expected a condition function".to_owned()),
            },
            _ => Err("expected a condition function".to_owned()),
        }
    }

    /// Resolves every intrinsic function in `node`.
    pub(crate) fn resolve(&self, node: &Node) -> Result<Val, String> {
        Ok(match node {
            Node::Null => Val::Null,
            Node::Bool(b) => Val::Bool(*b),
            Node::Int(i) => Val::Int(*i),
            Node::Float(f) => Val::Float(*f),
            Node::Str(s) => Val::Str(s.clone()),
            Node::Seq(items) => {
                let mut values = Vec::with_capacity(items.len());
                for item in items {
                    match self.resolve(item)? {
                        Val::NoValue => {}
                        value => values.push(value),
                    }
                }
                Val::List(values)
            }
            Node::Map(entries) => {
                let mut values = Vec::with_capacity(entries.len());
                for (key, value) in entries {
                    match self.resolve(value)? {
                        Val::NoValue => {}
                        value => values.push((key.clone(), value)),
                    }
                }
                Val::Map(values)
            }
            Node::Fn(name, arg) => self.function(name, arg)?,
        })
    }

    fn function(&self, name: &str, arg: &Node) -> Result<Val, String> {
        match name {
            "Ref" => {
                let Some(target) = arg.as_str() else {
                    return Err("!Ref takes a name".to_owned());
                };
                self.reference(target)
            }
            "GetAtt" => {
                let (resource, attribute) = get_att_target(arg)?;
                self.created_resource(resource)?;
                Ok(Val::GetAtt(resource.to_owned(), attribute.to_owned()))
            }
            "Sub" => {
                let (template, variables) = sub_arguments(arg)?;
                let mut vars = Vec::with_capacity(variables.len());
                for (key, value) in variables {
                    vars.push((key.as_str(), self.resolve(value)?));
                }
                let mut out = String::with_capacity(template.len());
                for piece in sub_pieces(template)? {
                    match piece {
                        SubPiece::Text(text) => out.push_str(text),
                        SubPiece::Var(var) => {
                            let value = match vars.iter().find(|(k, _)| *k == var) {
                                Some((_, value)) => value.clone(),
                                None => match var.split_once('.') {
                                    Some((resource, attribute)) => {
                                        self.created_resource(resource)?;
                                        Val::GetAtt(resource.to_owned(), attribute.to_owned())
                                    }
                                    None => self.reference(var)?,
                                },
                            };
                            out.push_str(&self.text(&value)?);
                        }
                    }
                }
                Ok(Val::Str(out))
            }
            "If" => {
                let Node::Seq(items) = arg else {
                    return Err("!If takes [condition, value if true, value if false]".to_owned());
                };
                let [condition, yes, no] = items.as_slice() else {
                    return Err("!If takes [condition, value if true, value if false]".to_owned());
                };
                let Some(condition) = condition.as_str() else {
                    return Err("!If: the condition must be a condition name".to_owned());
                };
                let Some(value) = self.conditions.get(condition) else {
                    return Err(format!("!If: condition {condition} is not defined"));
                };
                self.resolve(if *value { yes } else { no })
            }
            "Join" => {
                let (delimiter, list) = join_arguments(arg)?;
                let list = self.resolve(list)?;
                let mut parts = Vec::new();
                for value in list.list("!Join")? {
                    parts.push(self.text(value)?);
                }
                Ok(Val::Str(parts.join(delimiter)))
            }
            "Equals" | "Not" | "And" | "Or" | "Condition" => Err(format!(
                "condition function Fn::{name} is only supported in Conditions"
            )),
            _ => Err(unsupported_function(name)),
        }
    }

    fn reference(&self, target: &str) -> Result<Val, String> {
        if let Some(pseudo) = target.strip_prefix("AWS::") {
            return Ok(match pseudo {
                "AccountId" => Val::Str(ACCOUNT_ID.to_owned()),
                "Region" => Val::Str(REGION.to_owned()),
                "Partition" => Val::Str(PARTITION.to_owned()),
                "StackName" => Val::Str(STACK_NAME.to_owned()),
                "URLSuffix" => Val::Str("amazonaws.com".to_owned()),
                "NoValue" => Val::NoValue,
                _ => return Err(format!("unsupported pseudo parameter {target}")),
            });
        }
        if let Some(parameter) = self.parameters.get(target) {
            let Some(value) = &parameter.value else {
                return Err(format!(
                    "parameter {target} has no Default and no value was given"
                ));
            };
            if parameter.list {
                return Ok(Val::List(
                    value.split(',').map(|s| Val::Str(s.to_owned())).collect(),
                ));
            }
            return Ok(Val::Str(value.clone()));
        }
        self.created_resource(target)?;
        Ok(Val::Ref(target.to_owned()))
    }

    fn created_resource(&self, id: &str) -> Result<&Resource<'t>, String> {
        match self.resource(id) {
            Some(resource) if resource.created => Ok(resource),
            Some(_) => Err(format!(
                "resource {id} is not created (its Condition is false)"
            )),
            None => Err(format!("{id} is neither a parameter nor a resource")),
        }
    }

    /// A resolved value as JSON (a policy document): references become their local names.
    pub(crate) fn json(&self, value: &Val) -> Result<serde_json::Value, String> {
        use serde_json::Value as J;
        Ok(match value {
            Val::Null | Val::NoValue => J::Null,
            Val::Bool(b) => J::Bool(*b),
            Val::Int(i) => J::from(*i),
            Val::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Val::Str(s) => J::String(s.clone()),
            Val::List(items) => J::Array(
                items
                    .iter()
                    .filter(|v| !matches!(v, Val::NoValue))
                    .map(|v| self.json(v))
                    .collect::<Result<_, _>>()?,
            ),
            Val::Map(entries) => J::Object(
                entries
                    .iter()
                    .filter(|(_, v)| !matches!(v, Val::NoValue))
                    .map(|(k, v)| Ok((k.clone(), self.json(v)?)))
                    .collect::<Result<_, String>>()?,
            ),
            reference @ (Val::Ref(_) | Val::GetAtt(..)) => J::String(self.text(reference)?),
        })
    }

    /// A value where a string is expected: resources become their local names.
    pub(crate) fn text(&self, value: &Val) -> Result<String, String> {
        Ok(match value {
            Val::Str(s) => s.clone(),
            Val::Int(i) => i.to_string(),
            Val::Float(f) => f.to_string(),
            Val::Bool(b) => b.to_string(),
            Val::Ref(id) => {
                let ty = self.resource(id).map_or("", |r| r.ty);
                match ty {
                    QUEUE => format!("local://queue/{id}"),
                    TABLE => format!("local://table/{id}"),
                    TOPIC_RULE => self.rule_name(id)?,
                    IOT_POLICY => self.named(id, "PolicyName")?,
                    FUNCTION => self.named(id, "FunctionName")?,
                    // Locally an API or integration is known by its logical id.
                    HTTP_API | API_V2 | INTEGRATION => id.clone(),
                    _ => {
                        return Err(format!(
                            "!Ref {id} ({ty}) has no local value (only queues, tables, topic \
                             rules, IoT policies, functions, HTTP APIs and integrations do)"
                        ));
                    }
                }
            }
            Val::GetAtt(id, attribute) => {
                let ty = self.resource(id).map_or("", |r| r.ty);
                match (ty, attribute.as_str()) {
                    (QUEUE, "Arn") => format!("arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{id}"),
                    (QUEUE, "QueueUrl") => format!("local://queue/{id}"),
                    (QUEUE, "QueueName") => id.clone(),
                    (TABLE, "Arn") => {
                        format!("arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{id}")
                    }
                    (TABLE, "StreamArn") => format!(
                        "arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{id}/stream/local"
                    ),
                    (TOPIC_RULE, "Arn") => format!(
                        "arn:{PARTITION}:iot:{REGION}:{ACCOUNT_ID}:rule/{}",
                        self.rule_name(id)?
                    ),
                    _ => {
                        return Err(format!(
                            "!GetAtt {id}.{attribute} ({ty}) has no local value"
                        ));
                    }
                }
            }
            other => return Err(format!("expected a string, found {}", other.kind())),
        })
    }

    /// A resource's name property (`PolicyName`, `FunctionName`), else its logical id.
    fn named(&self, id: &str, property: &str) -> Result<String, String> {
        match self
            .resource(id)
            .and_then(|r| r.node.get("Properties"))
            .and_then(|p| p.get(property))
        {
            Some(node) => self.resolve(node).and_then(|v| self.text(&v)),
            None => Ok(id.to_owned()),
        }
    }

    /// The `RuleName` of a topic rule resource (its logical id when it has none).
    pub(crate) fn rule_name(&self, id: &str) -> Result<String, String> {
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return Err(format!("the RuleName of {id} refers back to itself"));
        }
        self.depth.set(depth + 1);
        let name = match self
            .resource(id)
            .and_then(|r| r.node.get("Properties"))
            .and_then(|p| p.get("RuleName"))
        {
            Some(node) => self.resolve(node).and_then(|v| self.text(&v)),
            None => Ok(id.to_owned()),
        };
        self.depth.set(depth);
        name
    }

    /// Checks that `node` uses only the supported intrinsic functions, well formed, naming
    /// parameters, pseudo parameters, conditions and resources that exist.
    pub(crate) fn validate(&self, node: &Node) -> Result<(), String> {
        match node {
            Node::Seq(items) => items.iter().try_for_each(|item| self.validate(item)),
            Node::Map(entries) => entries.iter().try_for_each(|(_, v)| self.validate(v)),
            Node::Fn(name, arg) => match name.as_str() {
                "Ref" => match arg.as_ref() {
                    Node::Str(target) => self.check_name(target),
                    _ => Err("!Ref takes a name".to_owned()),
                },
                "GetAtt" => {
                    let (resource, _) = get_att_target(arg)?;
                    self.check_resource(resource)
                }
                "Sub" => {
                    let (template, variables) = sub_arguments(arg)?;
                    for (_, value) in variables {
                        self.validate(value)?;
                    }
                    for piece in sub_pieces(template)? {
                        let SubPiece::Var(var) = piece else { continue };
                        if variables.iter().any(|(k, _)| k == var) {
                            continue;
                        }
                        match var.split_once('.') {
                            Some((resource, _)) => self.check_resource(resource)?,
                            None => self.check_name(var)?,
                        }
                    }
                    Ok(())
                }
                "If" => {
                    let Node::Seq(items) = arg.as_ref() else {
                        return Err("!If takes [condition, value if true, value if false]".into());
                    };
                    let [Node::Str(condition), yes, no] = items.as_slice() else {
                        return Err("!If takes [condition, value if true, value if false]".into());
                    };
                    if !self.conditions.contains_key(condition) {
                        return Err(format!("!If: condition {condition} is not defined"));
                    }
                    self.validate(yes)?;
                    self.validate(no)
                }
                "Join" => {
                    let (_, list) = join_arguments(arg)?;
                    self.validate(list)
                }
                "Equals" | "Not" | "And" | "Or" | "Condition" => Err(format!(
                    "condition function Fn::{name} is only supported in Conditions"
                )),
                _ => Err(unsupported_function(name)),
            },
            Node::Null | Node::Bool(_) | Node::Int(_) | Node::Float(_) | Node::Str(_) => Ok(()),
        }
    }

    fn check_name(&self, target: &str) -> Result<(), String> {
        if let Some(pseudo) = target.strip_prefix("AWS::") {
            return match pseudo {
                "AccountId" | "Region" | "Partition" | "StackName" | "URLSuffix" | "NoValue" => {
                    Ok(())
                }
                _ => Err(format!("unsupported pseudo parameter {target}")),
            };
        }
        if self.parameters.contains_key(target) {
            return Ok(());
        }
        self.check_resource(target)
    }

    fn check_resource(&self, id: &str) -> Result<(), String> {
        if self.resource(id).is_some() {
            Ok(())
        } else {
            Err(format!("{id} is neither a parameter nor a resource"))
        }
    }
}

fn unsupported_function(name: &str) -> String {
    if name.contains('!') || name.contains(':') {
        format!("unsupported YAML tag `{name}`")
    } else {
        format!(
            "unsupported intrinsic function Fn::{name} (supported: Ref, Fn::GetAtt, Fn::Sub, \
             Fn::If, Fn::Join, and Fn::Equals, Fn::Not, Fn::And, Fn::Or, Condition in \
             Conditions)"
        )
    }
}

fn get_att_target(arg: &Node) -> Result<(&str, &str), String> {
    match arg {
        Node::Str(target) => target
            .split_once('.')
            .ok_or_else(|| format!("!GetAtt {target}: expected Resource.Attribute")),
        Node::Seq(items) => match items.as_slice() {
            [Node::Str(resource), Node::Str(attribute)] => Ok((resource, attribute)),
            _ => Err("Fn::GetAtt takes [Resource, Attribute]".to_owned()),
        },
        _ => Err("Fn::GetAtt takes Resource.Attribute or [Resource, Attribute]".to_owned()),
    }
}

/// The variables of the long form of `Fn::Sub`.
type SubVariables = [(String, Node)];

fn sub_arguments(arg: &Node) -> Result<(&str, &SubVariables), String> {
    match arg {
        Node::Str(template) => Ok((template, &[])),
        Node::Seq(items) => match items.as_slice() {
            [Node::Str(template), Node::Map(variables)] => Ok((template, variables)),
            _ => Err("Fn::Sub takes a string or [string, {variables}]".to_owned()),
        },
        _ => Err("Fn::Sub takes a string or [string, {variables}]".to_owned()),
    }
}

fn join_arguments(arg: &Node) -> Result<(&str, &Node), String> {
    match arg {
        Node::Seq(items) => match items.as_slice() {
            [Node::Str(delimiter), list] => Ok((delimiter, list)),
            _ => Err("Fn::Join takes [delimiter, [values]]".to_owned()),
        },
        _ => Err("Fn::Join takes [delimiter, [values]]".to_owned()),
    }
}

enum SubPiece<'s> {
    Text(&'s str),
    Var(&'s str),
}

/// Splits a `Fn::Sub` template into text and `${Var}` references; `${!Text}` is the literal
/// `${Text}`.
fn sub_pieces(template: &str) -> Result<Vec<SubPiece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("${") {
        pieces.push(SubPiece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        if let Some(literal) = after.strip_prefix('!') {
            pieces.push(SubPiece::Text("${"));
            rest = literal;
            continue;
        }
        let Some(end) = after.find('}') else {
            return Err(format!("Fn::Sub `{template}`: unterminated ${{"));
        };
        let var = after[..end].trim();
        if var.is_empty() {
            return Err(format!("Fn::Sub `{template}`: empty ${{}}"));
        }
        pieces.push(SubPiece::Var(var));
        rest = &after[end + 1..];
    }
    pieces.push(SubPiece::Text(rest));
    Ok(pieces)
}
