//! Functions and their event sources (`SQS`, `Schedule`, `ScheduleV2`, `HttpApi`, `DynamoDB`),
//! and the HTTP API routes with an `SQS-SendMessage` integration.

use std::collections::BTreeMap;
use std::time::Duration;

use super::build::{at, int_in, property, queue_arn, seconds, u32_of};
use super::resolve::{ACCOUNT_ID, Ctx, PARTITION, QUEUE, REGION, TABLE, Val};
use super::yaml::Node;
use super::{
    Consumer, Function, FunctionEvent, HttpApiTrigger, QueueSpec, ScheduleTrigger,
    SqsSendMessageRoute, StreamTrigger, TemplateError, Trigger,
};
use crate::route::RouteKey;
use crate::schedule::ScheduleExpr;

pub(super) const HTTP_API: &str = "AWS::Serverless::HttpApi";
pub(super) const API_V2: &str = "AWS::ApiGatewayV2::Api";
pub(super) const INTEGRATION: &str = "AWS::ApiGatewayV2::Integration";
pub(super) const ROUTE: &str = "AWS::ApiGatewayV2::Route";
/// The HTTP API SAM creates for `HttpApi` events without an `ApiId`.
pub(super) const IMPLICIT_HTTP_API: &str = "ServerlessHttpApi";

const SQS_PROPERTIES: &[&str] = &[
    "Queue",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "FunctionResponseTypes",
    "ScalingConfig",
    "Enabled",
];
const SCHEDULE_PROPERTIES: &[&str] = &[
    "Schedule",
    "Input",
    "Enabled",
    "State",
    "Name",
    "Description",
];
/// `FlexibleTimeWindow` is accepted: locally a schedule fires at its exact time, one of the
/// times the window allows. The role and key properties change nothing locally.
const SCHEDULE_V2_PROPERTIES: &[&str] = &[
    "ScheduleExpression",
    "ScheduleExpressionTimezone",
    "Input",
    "State",
    "Name",
    "GroupName",
    "Description",
    "FlexibleTimeWindow",
    "RoleArn",
    "PermissionsBoundary",
    "OmitName",
    "KmsKeyArn",
];
const HTTP_API_PROPERTIES: &[&str] = &[
    "ApiId",
    "Path",
    "Method",
    "Auth",
    "PayloadFormatVersion",
    "TimeoutInMillis",
    "RouteSettings",
];
const DYNAMODB_PROPERTIES: &[&str] = &[
    "Stream",
    "StartingPosition",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "FunctionResponseTypes",
    "MaximumRetryAttempts",
    "BisectBatchOnFunctionError",
    "Enabled",
];
const EVENT_TYPES: &str = "SQS, Schedule, ScheduleV2, HttpApi, DynamoDB";

/// SAM's rule for `Globals`: mappings merge (the resource wins), lists add up (globals first),
/// anything else the resource overrides.
fn merge(global: &Node, local: &Node) -> Node {
    match (global, local) {
        (Node::Map(g), Node::Map(l)) => {
            let mut merged: Vec<(String, Node)> = g
                .iter()
                .map(|(key, value)| match local.get(key) {
                    Some(own) => (key.clone(), merge(value, own)),
                    None => (key.clone(), value.clone()),
                })
                .collect();
            merged.extend(
                l.iter()
                    .filter(|(key, _)| global.get(key).is_none())
                    .cloned(),
            );
            Node::Map(merged)
        }
        (Node::Seq(g), Node::Seq(l)) => Node::Seq(g.iter().chain(l).cloned().collect()),
        (_, local) => local.clone(),
    }
}

/// Refuses a property outside `supported`.
fn check_properties(
    settings: &Node,
    what: &str,
    kind: &str,
    supported: &[&str],
) -> Result<(), String> {
    match settings
        .entries()
        .iter()
        .find(|(key, _)| !supported.contains(&key.as_str()))
    {
        Some((key, _)) => Err(format!(
            "{what}.{key}: unsupported {kind} event property (supported: {})",
            supported.join(", ")
        )),
        None => Ok(()),
    }
}

fn report_batch_item_failures(
    ctx: &Ctx<'_>,
    types: Option<Val>,
    what: &str,
) -> Result<bool, String> {
    let mut report = false;
    if let Some(types) = types {
        for value in types.list(what)? {
            match ctx.text(value)?.as_str() {
                "ReportBatchItemFailures" => report = true,
                other => return Err(format!("{what}: unsupported response type {other}")),
            }
        }
    }
    Ok(report)
}

/// A function of the template and its SQS consumers.
pub(super) fn function(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
    globals: Option<&Node>,
    id: &str,
    node: &Node,
) -> Result<(Function, Vec<Consumer>), String> {
    let own = node.get("Properties");
    let empty = Node::Map(Vec::new());
    let properties = match globals {
        Some(globals) => merge(globals, own.unwrap_or(&empty)),
        None => own.cloned().unwrap_or(empty),
    };
    ctx.validate(&properties)?;

    let binary = match node
        .get("Metadata")
        .and_then(|m| m.get("BuildProperties"))
        .and_then(|b| b.get("Binary"))
    {
        Some(Node::Str(binary)) if !binary.is_empty() => binary.clone(),
        _ => {
            return Err(
                "a function needs Metadata.BuildProperties.Binary (its cargo binary, which the \
                 local stack looks up in its function registry)"
                    .to_owned(),
            );
        }
    };
    let name = property(ctx, Some(&properties), "FunctionName")?
        .map(|v| ctx.text(&v))
        .transpose()?;
    let timeout = seconds(int_in(
        property(ctx, Some(&properties), "Timeout")?.as_ref(),
        "Timeout",
        1..=900,
        3,
    )?);
    let mut environment = BTreeMap::new();
    if let Some(variables) = properties
        .get("Environment")
        .and_then(|e| e.get("Variables"))
    {
        let variables = ctx
            .resolve(variables)
            .map_err(|m| format!("Environment.Variables: {m}"))?;
        for (name, value) in variables.map("Environment.Variables")? {
            let value = ctx
                .text(value)
                .map_err(|m| format!("Environment.Variables.{name}: {m}"))?;
            environment.insert(name.clone(), value);
        }
    }

    let mut events = Vec::new();
    let mut consumers = Vec::new();
    for (event, definition) in properties
        .get("Events")
        .map(Node::entries)
        .unwrap_or_default()
    {
        let ty = definition.get("Type").and_then(Node::as_str).unwrap_or("");
        let empty = Node::Map(Vec::new());
        let settings = definition.get("Properties").unwrap_or(&empty);
        let what = format!("Events.{event}.Properties");
        let trigger = match ty {
            "SQS" => {
                let consumer = sqs(ctx, queues, settings, &what)?;
                let queue = consumer.queue.clone();
                consumers.push(Consumer {
                    function: id.to_owned(),
                    event: event.clone(),
                    binary: binary.clone(),
                    timeout,
                    environment: environment.clone(),
                    ..consumer
                });
                Trigger::Sqs { queue }
            }
            "Schedule" | "ScheduleV2" => Trigger::Schedule(schedule(
                ctx,
                settings,
                &what,
                ty == "ScheduleV2",
                id,
                event,
            )?),
            "HttpApi" => Trigger::HttpApi(http_api(ctx, settings, &what)?),
            "DynamoDB" => Trigger::DynamoDb(dynamodb(ctx, settings, &what)?),
            other => {
                return Err(format!(
                    "Events.{event}: event type `{other}` is not emulated locally (supported: \
                     {EVENT_TYPES})"
                ));
            }
        };
        events.push(FunctionEvent {
            name: event.clone(),
            trigger,
        });
    }
    Ok((
        Function {
            logical_id: id.to_owned(),
            name,
            binary,
            timeout,
            environment,
            events,
        },
        consumers,
    ))
}

/// An event source's `BatchSize` (1–10,000; `default_batch` when absent) and
/// `MaximumBatchingWindowInSeconds` (0–300; 0), as Lambda's event source mappings take them.
fn batching(
    get: &impl Fn(&str) -> Result<Option<Val>, String>,
    key: &impl Fn(&str) -> String,
    default_batch: i64,
) -> Result<(u32, Duration), String> {
    let batch_size = int_in(
        get("BatchSize")?.as_ref(),
        &key("BatchSize"),
        1..=10_000,
        default_batch,
    )?;
    let window = int_in(
        get("MaximumBatchingWindowInSeconds")?.as_ref(),
        &key("MaximumBatchingWindowInSeconds"),
        0..=300,
        0,
    )?;
    Ok((u32_of(batch_size), seconds(window)))
}

fn sqs(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
    settings: &Node,
    what: &str,
) -> Result<Consumer, String> {
    check_properties(settings, what, "SQS", SQS_PROPERTIES)?;
    let key = |k: &str| format!("{what}.{k}");
    let get = |k: &str| property(ctx, Some(settings), k).map_err(|m| format!("{what}.{m}"));
    let Some(queue_value) = get("Queue")? else {
        return Err(format!("{} is missing", key("Queue")));
    };
    let queue = queue_arn(&queue_value, &key("Queue"), Some(queues), ctx)?;
    if queues.get(&queue).is_some_and(|q| q.fifo) {
        return Err(format!(
            "{}: FIFO queue {queue} with a consumer is not supported locally",
            key("Queue")
        ));
    }
    let (batch_size, batching_window) = batching(&get, &key, 10)?;
    let report = report_batch_item_failures(
        ctx,
        get("FunctionResponseTypes")?,
        &key("FunctionResponseTypes"),
    )?;
    let maximum_concurrency = match get("ScalingConfig")? {
        None => None,
        Some(scaling) => {
            let entries = scaling.map(&key("ScalingConfig"))?;
            if let Some((k, _)) = entries.iter().find(|(k, _)| k != "MaximumConcurrency") {
                return Err(format!("{}.{k}: unsupported", key("ScalingConfig")));
            }
            match scaling.get("MaximumConcurrency") {
                None => None,
                Some(value) => Some(u32_of(int_in(
                    Some(value),
                    &key("ScalingConfig.MaximumConcurrency"),
                    2..=1000,
                    2,
                )?)),
            }
        }
    };
    let enabled = match get("Enabled")? {
        Some(value) => value.boolean(&key("Enabled"))?,
        None => true,
    };
    Ok(Consumer {
        function: String::new(),
        event: String::new(),
        binary: String::new(),
        queue,
        enabled,
        batch_size,
        batching_window,
        report_batch_item_failures: report,
        maximum_concurrency,
        timeout: Duration::ZERO,
        environment: BTreeMap::new(),
    })
}

fn schedule(
    ctx: &Ctx<'_>,
    settings: &Node,
    what: &str,
    scheduler: bool,
    function: &str,
    event: &str,
) -> Result<ScheduleTrigger, String> {
    let (kind, supported, expression_key) = if scheduler {
        ("ScheduleV2", SCHEDULE_V2_PROPERTIES, "ScheduleExpression")
    } else {
        ("Schedule", SCHEDULE_PROPERTIES, "Schedule")
    };
    check_properties(settings, what, kind, supported)?;
    let key = |k: &str| format!("{what}.{k}");
    let get = |k: &str| property(ctx, Some(settings), k).map_err(|m| format!("{what}.{m}"));
    let Some(expression) = get(expression_key)? else {
        return Err(format!("{} is missing", key(expression_key)));
    };
    let expression = ScheduleExpr::parse(&ctx.text(&expression)?)
        .map_err(|m| format!("{}: {m}", key(expression_key)))?;
    if matches!(expression, ScheduleExpr::At(_)) && !scheduler {
        return Err(format!(
            "{}: at(...) is for ScheduleV2 (EventBridge Scheduler) only",
            key(expression_key)
        ));
    }
    if let Some(zone) = get("ScheduleExpressionTimezone")? {
        let zone = ctx.text(&zone)?;
        if !matches!(zone.as_str(), "UTC" | "Etc/UTC" | "GMT") {
            return Err(format!(
                "{}: {zone}: only UTC is emulated locally",
                key("ScheduleExpressionTimezone")
            ));
        }
    }
    let input = match get("Input")? {
        None => None,
        Some(text) => Some(
            serde_json::from_str(&ctx.text(&text)?)
                .map_err(|e| format!("{}: not JSON: {e}", key("Input")))?,
        ),
    };
    let mut enabled = match get("Enabled")? {
        Some(value) => value.boolean(&key("Enabled"))?,
        None => true,
    };
    if let Some(state) = get("State")? {
        match ctx.text(&state)?.as_str() {
            "ENABLED" => {}
            "DISABLED" => enabled = false,
            other => return Err(format!("{}: `{other}` (ENABLED or DISABLED)", key("State"))),
        }
    }
    let name = match get("Name")? {
        Some(name) => ctx.text(&name)?,
        None => format!("{function}{event}"),
    };
    let arn = if scheduler {
        let group = match get("GroupName")? {
            Some(group) => ctx.text(&group)?,
            None => "default".to_owned(),
        };
        format!("arn:{PARTITION}:scheduler:{REGION}:{ACCOUNT_ID}:schedule/{group}/{name}")
    } else {
        format!("arn:{PARTITION}:events:{REGION}:{ACCOUNT_ID}:rule/{name}")
    };
    Ok(ScheduleTrigger {
        name,
        arn,
        expression,
        input,
        enabled,
        scheduler,
    })
}

/// The logical id of an HTTP API of this template named by `value` (`!Ref <Api>`).
fn api_id(ctx: &Ctx<'_>, value: &Val, what: &str) -> Result<String, String> {
    match value {
        Val::Ref(id)
            if ctx
                .resource(id)
                .is_some_and(|r| r.ty == HTTP_API || r.ty == API_V2) =>
        {
            Ok(id.clone())
        }
        _ => Err(format!(
            "{what} must be `!Ref <Api>` of an {HTTP_API} or {API_V2} of this template"
        )),
    }
}

fn http_api(ctx: &Ctx<'_>, settings: &Node, what: &str) -> Result<HttpApiTrigger, String> {
    check_properties(settings, what, "HttpApi", HTTP_API_PROPERTIES)?;
    let key = |k: &str| format!("{what}.{k}");
    let get = |k: &str| property(ctx, Some(settings), k).map_err(|m| format!("{what}.{m}"));
    let api = match get("ApiId")? {
        Some(value) => api_id(ctx, &value, &key("ApiId"))?,
        None => IMPLICIT_HTTP_API.to_owned(),
    };
    if let Some(version) = get("PayloadFormatVersion")?
        && ctx.text(&version)? != "2.0"
    {
        return Err(format!(
            "{}: only payload format 2.0 is emulated locally",
            key("PayloadFormatVersion")
        ));
    }
    let method = get("Method")?.map(|m| ctx.text(&m)).transpose()?;
    let path = get("Path")?.map(|p| ctx.text(&p)).transpose()?;
    let route = match (method, path) {
        (None, None) => RouteKey::new("ANY", "$default"),
        (method, Some(path)) => RouteKey::new(method.as_deref().unwrap_or("ANY"), &path),
        (Some(_), None) => return Err(format!("{} is missing", key("Path"))),
    }
    .map_err(|m| format!("{what}: {m}"))?;
    let authorizer = match get("Auth")?
        .as_ref()
        .and_then(|auth| auth.get("Authorizer"))
    {
        Some(name) => Some(ctx.text(name)?),
        None => default_authorizer(ctx, &api)?,
    };
    Ok(HttpApiTrigger {
        api,
        route,
        authorizer: authorizer.filter(|a| a != "NONE"),
    })
}

/// The `Auth.DefaultAuthorizer` of a SAM HTTP API.
fn default_authorizer(ctx: &Ctx<'_>, api: &str) -> Result<Option<String>, String> {
    let Some(resource) = ctx.resource(api).filter(|r| r.ty == HTTP_API) else {
        return Ok(None);
    };
    match resource
        .node
        .get("Properties")
        .and_then(|p| p.get("Auth"))
        .and_then(|a| a.get("DefaultAuthorizer"))
    {
        Some(node) => ctx
            .resolve(node)
            .and_then(|v| ctx.text(&v))
            .map(Some)
            .map_err(|m| format!("{api}.Auth.DefaultAuthorizer: {m}")),
        None => Ok(None),
    }
}

fn dynamodb(ctx: &Ctx<'_>, settings: &Node, what: &str) -> Result<StreamTrigger, String> {
    check_properties(settings, what, "DynamoDB", DYNAMODB_PROPERTIES)?;
    let key = |k: &str| format!("{what}.{k}");
    let get = |k: &str| property(ctx, Some(settings), k).map_err(|m| format!("{what}.{m}"));
    let table = match get("Stream")? {
        Some(Val::GetAtt(id, attribute))
            if attribute == "StreamArn" && ctx.resource(&id).is_some_and(|r| r.ty == TABLE) =>
        {
            id
        }
        _ => {
            return Err(format!(
                "{} must be `!GetAtt <Table>.StreamArn` of an {TABLE} of this template",
                key("Stream")
            ));
        }
    };
    let view_type = ctx
        .resource(&table)
        .and_then(|r| r.node.get("Properties"))
        .and_then(|p| p.get("StreamSpecification"))
        .and_then(|s| s.get("StreamViewType"))
        .map(|node| ctx.resolve(node).and_then(|v| ctx.text(&v)))
        .transpose()?
        .ok_or_else(|| {
            format!(
                "{}: table {table} has no StreamSpecification.StreamViewType",
                key("Stream")
            )
        })?;
    let starting_position = match get("StartingPosition")? {
        Some(value) => ctx.text(&value)?,
        None => return Err(format!("{} is missing", key("StartingPosition"))),
    };
    if !matches!(starting_position.as_str(), "TRIM_HORIZON" | "LATEST") {
        return Err(format!(
            "{}: `{starting_position}` (TRIM_HORIZON or LATEST)",
            key("StartingPosition")
        ));
    }
    let (batch_size, batching_window) = batching(&get, &key, 100)?;
    let maximum_retry_attempts = int_in(
        get("MaximumRetryAttempts")?.as_ref(),
        &key("MaximumRetryAttempts"),
        -1..=10_000,
        -1,
    )?;
    let flag = |k: &str, default: bool| -> Result<bool, String> {
        match get(k)? {
            Some(value) => value.boolean(&key(k)),
            None => Ok(default),
        }
    };
    Ok(StreamTrigger {
        table,
        view_type,
        starting_position,
        batch_size,
        batching_window,
        report_batch_item_failures: report_batch_item_failures(
            ctx,
            get("FunctionResponseTypes")?,
            &key("FunctionResponseTypes"),
        )?,
        maximum_retry_attempts,
        bisect_batch_on_function_error: flag("BisectBatchOnFunctionError", false)?,
        enabled: flag("Enabled", true)?,
    })
}

/// An `SQS-SendMessage` integration: its API, queue and other request parameters.
struct Integration {
    api: String,
    queue: String,
    parameters: BTreeMap<String, String>,
}

fn integration(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
    node: &Node,
) -> Result<Integration, String> {
    let properties = node.get("Properties");
    if let Some(properties) = properties {
        ctx.validate(properties)?;
    }
    let get = |k: &str| property(ctx, properties, k);
    let text = |k: &str| -> Result<Option<String>, String> {
        get(k)?
            .map(|v| ctx.text(&v).map_err(|m| format!("{k}: {m}")))
            .transpose()
    };
    let ty = text("IntegrationType")?.unwrap_or_default();
    let subtype = text("IntegrationSubtype")?.unwrap_or_default();
    if ty != "AWS_PROXY" || subtype != "SQS-SendMessage" {
        return Err(format!(
            "integration type {ty} {subtype} is not emulated locally (only AWS_PROXY \
             SQS-SendMessage; a route to a function is an HttpApi event of the function)"
        ));
    }
    let api = match get("ApiId")? {
        Some(value) => api_id(ctx, &value, "ApiId")?,
        None => return Err("ApiId is missing".to_owned()),
    };
    let Some(parameters) = get("RequestParameters")? else {
        return Err("RequestParameters is missing".to_owned());
    };
    let mut mapped = BTreeMap::new();
    for (name, value) in parameters.map("RequestParameters")? {
        let value = ctx
            .text(value)
            .map_err(|m| format!("RequestParameters.{name}: {m}"))?;
        mapped.insert(name.clone(), value);
    }
    let queue = match mapped.remove("QueueUrl") {
        Some(url) => match url.strip_prefix("local://queue/") {
            Some(queue) if queues.contains_key(queue) => queue.to_owned(),
            _ => {
                return Err(format!(
                    "RequestParameters.QueueUrl {url} must be `!Ref <Queue>` of an {QUEUE} of \
                     this template"
                ));
            }
        },
        None => return Err("RequestParameters.QueueUrl is missing".to_owned()),
    };
    if queues.get(&queue).is_some_and(|q| q.fifo) {
        return Err(format!(
            "RequestParameters.QueueUrl: FIFO queue {queue} is not supported locally"
        ));
    }
    if !mapped.contains_key("MessageBody") {
        return Err("RequestParameters.MessageBody is missing".to_owned());
    }
    const SUPPORTED: &[&str] = &["MessageBody", "MessageAttributes", "DelaySeconds", "Region"];
    if let Some(other) = mapped.keys().find(|k| !SUPPORTED.contains(&k.as_str())) {
        return Err(format!(
            "RequestParameters.{other} is not emulated locally (supported: QueueUrl, {})",
            SUPPORTED.join(", ")
        ));
    }
    Ok(Integration {
        api,
        queue,
        parameters: mapped,
    })
}

/// The `AWS::ApiGatewayV2::Route`s to `SQS-SendMessage` integrations (every integration and
/// route that exists is checked).
pub(super) fn sqs_send_message_routes(
    ctx: &Ctx<'_>,
    queues: &BTreeMap<String, QueueSpec>,
) -> Result<Vec<SqsSendMessageRoute>, TemplateError> {
    let mut integrations = BTreeMap::new();
    for (id, resource) in &ctx.resources {
        if resource.created && resource.ty == INTEGRATION {
            integrations.insert(
                *id,
                integration(ctx, queues, resource.node).map_err(|m| at(id, m))?,
            );
        }
    }
    let mut routes = Vec::new();
    for (id, resource) in &ctx.resources {
        if !resource.created || resource.ty != ROUTE {
            continue;
        }
        let fail = |m: String| at(id, m);
        let properties = resource.node.get("Properties");
        if let Some(properties) = properties {
            ctx.validate(properties).map_err(fail)?;
        }
        let get = |k: &str| property(ctx, properties, k).map_err(fail);
        let text = |k: &str| -> Result<Option<String>, TemplateError> {
            get(k)?
                .map(|v| ctx.text(&v).map_err(|m| fail(format!("{k}: {m}"))))
                .transpose()
        };
        let api = match get("ApiId")? {
            Some(value) => api_id(ctx, &value, "ApiId").map_err(fail)?,
            None => return Err(fail("ApiId is missing".to_owned())),
        };
        let route = RouteKey::parse(&text("RouteKey")?.unwrap_or_default())
            .map_err(|m| fail(format!("RouteKey: {m}")))?;
        let target = text("Target")?.unwrap_or_default();
        let Some((integration_id, integration)) = target
            .strip_prefix("integrations/")
            .and_then(|t| integrations.get_key_value(t))
        else {
            return Err(fail(format!(
                "Target `{target}` must be `integrations/<Integration>` of an {INTEGRATION} of \
                 this template"
            )));
        };
        if integration.api != api {
            return Err(fail(format!(
                "the route is on API {api} but its integration {integration_id} on {}",
                integration.api
            )));
        }
        routes.push(SqsSendMessageRoute {
            route_id: (*id).to_owned(),
            integration: (*integration_id).to_owned(),
            api,
            route,
            authorization_type: text("AuthorizationType")?.unwrap_or_else(|| "NONE".to_owned()),
            queue: integration.queue.clone(),
            parameters: integration.parameters.clone(),
        });
    }
    Ok(routes)
}
