//! From the template tree to the routing table.

use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::functions;
use super::resolve::{Ctx, IOT_POLICY, QUEUE, TOPIC_RULE, Val};
use super::yaml::Node;
use super::{QueueSpec, Redrive, Routing, SqsAction, TemplateError, TopicRule};
use crate::sql::Sql;

pub(super) const FUNCTION: &str = "AWS::Serverless::Function";
const SAM_TRANSFORM: &str = "AWS::Serverless-2016-10-31";
const SQL_VERSION: &str = "2016-03-23";

pub(super) fn build(
    root: &Node,
    overrides: &BTreeMap<String, String>,
) -> Result<Routing, TemplateError> {
    if !matches!(root, Node::Map(_)) {
        return Err(TemplateError::Template(
            "the template is not a mapping".to_owned(),
        ));
    }
    check_transform(root.get("Transform"))?;
    let ctx = Ctx::new(root, overrides)?;

    let mut queues = BTreeMap::new();
    for (id, resource) in &ctx.resources {
        if resource.ty == QUEUE && resource.created {
            let spec = queue(&ctx, id, resource.node).map_err(|m| at(id, m))?;
            queues.insert((*id).to_owned(), spec);
        }
    }
    for (id, spec) in &queues {
        if let Some(redrive) = &spec.redrive {
            let fifo = queues.get(&redrive.dead_letter_queue).map(|q| q.fifo);
            if fifo != Some(spec.fifo) {
                return Err(at(
                    id,
                    format!(
                        "the dead-letter queue {} must be a {} queue of this template, like the \
                         queue itself",
                        redrive.dead_letter_queue,
                        if spec.fifo { "FIFO" } else { "standard" }
                    ),
                ));
            }
        }
    }

    let globals = root.get("Globals").and_then(|g| g.get("Function"));
    let mut rules = Vec::new();
    let mut consumers = Vec::new();
    let mut functions = Vec::new();
    let mut policies = BTreeMap::new();
    for (id, resource) in &ctx.resources {
        if !resource.created {
            continue;
        }
        match resource.ty {
            IOT_POLICY => {
                let (name, policy) = iot_policy(&ctx, id, resource.node).map_err(|m| at(id, m))?;
                if policies.insert(name.clone(), policy).is_some() {
                    return Err(at(id, format!("PolicyName {name} is used twice")));
                }
            }
            TOPIC_RULE => rules.push(rule(&ctx, &queues, id, resource.node)?),
            FUNCTION => {
                let (function, sqs) =
                    functions::function(&ctx, &queues, globals, id, resource.node)
                        .map_err(|m| at(id, m))?;
                consumers.extend(sqs);
                functions.push(function);
            }
            _ => {}
        }
    }

    let mut by_name = HashMap::with_capacity(rules.len());
    for (i, rule) in rules.iter().enumerate() {
        if let Some(previous) = by_name.insert(rule.name.clone(), i) {
            return Err(at(
                &rule.logical_id,
                format!(
                    "RuleName {} is also the name of {}",
                    rule.name, rules[previous].logical_id
                ),
            ));
        }
    }
    let enabled = (0..rules.len()).filter(|&i| !rules[i].disabled).collect();
    let sqs_routes = functions::sqs_send_message_routes(&ctx, &queues)?;
    Ok(Routing {
        rules,
        queues,
        consumers,
        functions,
        sqs_routes,
        by_name,
        enabled,
        policies,
    })
}

/// An `AWS::IoT::Policy`: its name and its document, evaluated by [`crate::policy`].
fn iot_policy(
    ctx: &Ctx<'_>,
    id: &str,
    node: &Node,
) -> Result<(String, crate::policy::Policy), String> {
    let properties = node.get("Properties");
    let name = match property(ctx, properties, "PolicyName")? {
        Some(name) => ctx.text(&name)?,
        None => id.to_owned(),
    };
    let document = property(ctx, properties, "PolicyDocument")?
        .ok_or_else(|| "PolicyDocument is missing".to_owned())?;
    let document = match document {
        // CloudFormation also takes the document as a JSON string.
        Val::Str(text) => {
            serde_json::from_str(&text).map_err(|e| format!("PolicyDocument is not JSON: {e}"))?
        }
        other => ctx.json(&other)?,
    };
    let policy = crate::policy::Policy::from_json(&document).map_err(|e| e.to_string())?;
    Ok((name, policy))
}

pub(super) fn at(resource: &str, message: String) -> TemplateError {
    TemplateError::Resource {
        resource: resource.to_owned(),
        message,
    }
}

fn check_transform(transform: Option<&Node>) -> Result<(), TemplateError> {
    let names: Vec<&Node> = match transform {
        None => return Ok(()),
        Some(Node::Seq(items)) => items.iter().collect(),
        Some(node) => vec![node],
    };
    for name in names {
        if name.as_str() != Some(SAM_TRANSFORM) {
            return Err(TemplateError::Template(format!(
                "unsupported Transform {name:?} (only {SAM_TRANSFORM} is supported)"
            )));
        }
    }
    Ok(())
}

/// A resolved property of `properties`, `None` when absent or `AWS::NoValue`.
pub(super) fn property(
    ctx: &Ctx<'_>,
    properties: Option<&Node>,
    key: &str,
) -> Result<Option<Val>, String> {
    match properties.and_then(|p| p.get(key)) {
        None => Ok(None),
        Some(node) => match ctx.resolve(node).map_err(|m| format!("{key}: {m}"))? {
            Val::NoValue => Ok(None),
            value => Ok(Some(value)),
        },
    }
}

pub(super) fn int_in(
    value: Option<&Val>,
    what: &str,
    range: RangeInclusive<i64>,
    default: i64,
) -> Result<i64, String> {
    let Some(value) = value else {
        return Ok(default);
    };
    let n = value.int(what)?;
    if !range.contains(&n) {
        return Err(format!(
            "{what} {n} is out of range ({} to {})",
            range.start(),
            range.end()
        ));
    }
    Ok(n)
}

pub(super) fn seconds(n: i64) -> Duration {
    Duration::from_secs(n.unsigned_abs())
}

pub(super) fn u32_of(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The logical id of a queue of this template named by `!GetAtt Queue.Arn`.
pub(super) fn queue_arn(
    value: &Val,
    what: &str,
    queues: Option<&BTreeMap<String, QueueSpec>>,
    ctx: &Ctx<'_>,
) -> Result<String, String> {
    match value {
        Val::GetAtt(id, attribute) if attribute == "Arn" => {
            let is_queue = match queues {
                Some(queues) => queues.contains_key(id),
                None => ctx.resource(id).is_some_and(|r| r.ty == QUEUE),
            };
            if is_queue {
                Ok(id.clone())
            } else {
                Err(format!("{what}: {id} is not an {QUEUE} of this template"))
            }
        }
        _ => Err(format!(
            "{what} must be `!GetAtt <Queue>.Arn` of an {QUEUE} of this template"
        )),
    }
}

fn queue(ctx: &Ctx<'_>, id: &str, node: &Node) -> Result<QueueSpec, String> {
    let properties = node.get("Properties");
    if let Some(properties) = properties {
        ctx.validate(properties)?;
    }
    let get = |key| property(ctx, properties, key);
    let visibility_timeout = int_in(
        get("VisibilityTimeout")?.as_ref(),
        "VisibilityTimeout",
        0..=43_200,
        30,
    )?;
    let message_retention = int_in(
        get("MessageRetentionPeriod")?.as_ref(),
        "MessageRetentionPeriod",
        60..=1_209_600,
        345_600,
    )?;
    let delay = int_in(get("DelaySeconds")?.as_ref(), "DelaySeconds", 0..=900, 0)?;
    let fifo = match get("FifoQueue")? {
        Some(value) => value.boolean("FifoQueue")?,
        None => false,
    };
    let redrive = match get("RedrivePolicy")? {
        None => None,
        Some(policy) => {
            policy.map("RedrivePolicy")?;
            let Some(target) = policy.get("deadLetterTargetArn") else {
                return Err("RedrivePolicy has no deadLetterTargetArn".to_owned());
            };
            let dead_letter_queue =
                queue_arn(target, "RedrivePolicy.deadLetterTargetArn", None, ctx)?;
            if dead_letter_queue == id {
                return Err("RedrivePolicy: a queue cannot be its own dead-letter queue".to_owned());
            }
            let Some(count) = policy.get("maxReceiveCount") else {
                return Err("RedrivePolicy has no maxReceiveCount".to_owned());
            };
            let max_receive_count =
                int_in(Some(count), "RedrivePolicy.maxReceiveCount", 1..=1000, 1)?;
            Some(Redrive {
                dead_letter_queue,
                max_receive_count: u32_of(max_receive_count),
            })
        }
    };
    Ok(QueueSpec {
        visibility_timeout: seconds(visibility_timeout),
        message_retention: seconds(message_retention),
        delay: seconds(delay),
        redrive,
        fifo,
    })
}

fn rule(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
    id: &str,
    node: &Node,
) -> Result<TopicRule, TemplateError> {
    let fail = |m: String| at(id, m);
    let Some(properties) = node.get("Properties") else {
        return Err(fail("a topic rule needs Properties".to_owned()));
    };
    ctx.validate(properties).map_err(fail)?;
    let name = ctx
        .rule_name(id)
        .map_err(|m| fail(format!("RuleName: {m}")))?;
    let Some(payload) = property(ctx, Some(properties), "TopicRulePayload").map_err(fail)? else {
        return Err(fail("a topic rule needs a TopicRulePayload".to_owned()));
    };
    payload.map("TopicRulePayload").map_err(fail)?;
    let text = |key: &str| -> Result<Option<String>, TemplateError> {
        payload
            .get(key)
            .map(|v| {
                ctx.text(v)
                    .map_err(|m| fail(format!("TopicRulePayload.{key}: {m}")))
            })
            .transpose()
    };
    match text("AwsIotSqlVersion")? {
        Some(version) if version == SQL_VERSION => {}
        Some(version) => {
            return Err(fail(format!(
                "unsupported AwsIotSqlVersion {version} (only {SQL_VERSION} is supported)"
            )));
        }
        None => {
            return Err(fail(format!(
                "TopicRulePayload needs AwsIotSqlVersion: {SQL_VERSION} (AWS IoT would use \
                 2015-10-08, which this stack does not implement)"
            )));
        }
    }
    let Some(sql) = text("Sql")? else {
        return Err(fail("TopicRulePayload has no Sql".to_owned()));
    };
    let sql = Sql::parse(&sql).map_err(|source| TemplateError::Sql {
        resource: id.to_owned(),
        rule: name.clone(),
        source,
    })?;
    let disabled = match payload.get("RuleDisabled") {
        Some(value) => value
            .boolean("TopicRulePayload.RuleDisabled")
            .map_err(fail)?,
        None => false,
    };
    let mut actions = Vec::new();
    if let Some(list) = payload.get("Actions") {
        for action in list.list("TopicRulePayload.Actions").map_err(fail)? {
            actions.push(sqs_action(ctx, queues, action, "Actions").map_err(fail)?);
        }
    }
    let error_action = payload
        .get("ErrorAction")
        .map(|action| sqs_action(ctx, queues, action, "ErrorAction").map_err(fail))
        .transpose()?;
    Ok(TopicRule {
        logical_id: id.to_owned(),
        name,
        disabled,
        sql,
        actions,
        error_action,
    })
}

fn sqs_action(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
    action: &Val,
    what: &str,
) -> Result<SqsAction, String> {
    let [(kind, settings)] = action.map(what)? else {
        return Err(format!(
            "{what}: each action is a mapping with one action type"
        ));
    };
    if kind != "Sqs" {
        return Err(format!(
            "{what}: unsupported action type {kind} (only Sqs actions are supported locally)"
        ));
    }
    settings.map(&format!("{what}.Sqs"))?;
    let queue = match settings.get("QueueUrl") {
        Some(Val::Ref(queue)) if queues.contains_key(queue) => queue.clone(),
        Some(Val::Ref(other)) if ctx.resource(other).is_some_and(|r| r.ty == QUEUE) => {
            return Err(format!("{what}.Sqs.QueueUrl: queue {other} is not created"));
        }
        _ => {
            return Err(format!(
                "{what}.Sqs.QueueUrl must be `!Ref <Queue>` of an {QUEUE} of this template"
            ));
        }
    };
    if queues.get(&queue).is_some_and(|q| q.fifo) {
        return Err(format!(
            "{what}.Sqs: FIFO queue {queue} is not supported (the AWS IoT SQS action does not \
             support FIFO queues)"
        ));
    }
    let use_base64 = match settings.get("UseBase64") {
        Some(value) => value.boolean(&format!("{what}.Sqs.UseBase64"))?,
        None => false,
    };
    Ok(SqsAction { queue, use_base64 })
}
