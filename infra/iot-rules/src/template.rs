//! `template.yaml` read into a routing table: the topic rules, the SQS queues, every function
//! with its event sources, and the HTTP API routes to other AWS services, resolved as the local
//! stack sees them.
//!
//! Read: `AWS::IoT::TopicRule`, `AWS::IoT::Policy`, `AWS::SQS::Queue`, every
//! `AWS::Serverless::Function` (its binary, environment and `Events` of type `SQS`, `Schedule`,
//! `ScheduleV2`, `HttpApi` and `DynamoDB`), `AWS::Serverless::HttpApi` (its default authorizer),
//! and `AWS::ApiGatewayV2::Integration` / `AWS::ApiGatewayV2::Route` (`SQS-SendMessage`); other
//! resources are ignored. Inside the resources that are read, anything the local stack cannot
//! honour is an error naming the resource and the construct: an action other than `Sqs`, an event
//! type or property it does not emulate, a function without `Metadata.BuildProperties.Binary`, an
//! intrinsic function other than `Ref`, `Fn::GetAtt`, `Fn::Sub`, `Fn::If`, `Fn::Join` (and the
//! condition functions, in `Conditions`), a reference to nothing, a FIFO queue behind a rule or a
//! consumer.
//!
//! Resolution: parameters take their `Default` unless overridden ([`parse_with`]); pseudo
//! parameters are account `000000000000`, region `local`, partition `aws`, stack `hearth-local`;
//! `!Ref` to a queue is `local://queue/<LogicalId>`, to a table `local://table/<LogicalId>`, to a
//! topic rule its name; `!GetAtt <Queue>.Arn` is `arn:aws:sqs:local:000000000000:<LogicalId>`.
//! A resource whose `Condition` is false does not exist. `Globals.Function` is merged into each
//! function as SAM does.

mod build;
mod functions;
mod resolve;
mod yaml;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::route::RouteKey;
use crate::schedule::ScheduleExpr;
use crate::sql::{Message, Sql, SqlError, basic_ingest};

/// Why a template cannot be routed locally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// The file could not be read.
    #[error("cannot read the template {}: {source}", path.display())]
    Io {
        /// The template's path.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML.
    #[error("the template is not valid YAML: {0}")]
    Yaml(String),
    /// A problem outside the resources: parameters, conditions, transforms.
    #[error("the template is not supported: {0}")]
    Template(String),
    /// A resource the local stack reads uses something it cannot honour, or is malformed.
    #[error("resource {resource}: {message}")]
    Resource {
        /// The resource's logical id.
        resource: String,
        /// What is wrong, naming the property and construct.
        message: String,
    },
    /// A topic rule's SQL is outside the supported subset.
    #[error("topic rule {rule} (resource {resource}): {source}")]
    Sql {
        /// The rule's logical id.
        resource: String,
        /// The rule's name.
        rule: String,
        /// The SQL error.
        #[source]
        source: SqlError,
    },
}

/// Reads and parses the template at `path` with the parameters' defaults.
///
/// # Errors
/// The file cannot be read, or [`parse`] fails.
pub fn load(path: impl AsRef<Path>) -> Result<Routing, TemplateError> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| TemplateError::Io {
        path: path.to_owned(),
        source,
    })?;
    parse(&text)
}

/// Parses a template with the parameters' defaults.
///
/// # Errors
/// The template is not YAML, or something the local stack reads is unsupported or malformed.
pub fn parse(text: &str) -> Result<Routing, TemplateError> {
    parse_with(text, &BTreeMap::new())
}

/// Parses a template, giving some parameters a value (as `sam deploy --parameter-overrides`).
///
/// # Errors
/// As [`parse`]; also when an override names no parameter or a value outside the parameter's
/// `AllowedValues`.
pub fn parse_with(
    text: &str,
    overrides: &BTreeMap<String, String>,
) -> Result<Routing, TemplateError> {
    let root = yaml::parse(text)?;
    build::build(&root, overrides)
}

/// The routing table: every topic rule, queue and SQS consumer of the template.
#[derive(Debug, Clone)]
pub struct Routing {
    rules: Vec<TopicRule>,
    queues: BTreeMap<String, QueueSpec>,
    consumers: Vec<Consumer>,
    functions: Vec<Function>,
    sqs_routes: Vec<SqsSendMessageRoute>,
    by_name: HashMap<String, usize>,
    /// Indexes of the enabled rules.
    enabled: Vec<usize>,
    /// The `AWS::IoT::Policy` documents, by `PolicyName`.
    policies: BTreeMap<String, crate::policy::Policy>,
}

/// An `AWS::IoT::TopicRule`.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TopicRule {
    /// The resource's logical id.
    pub logical_id: String,
    /// The resolved `RuleName` (the logical id when it has none).
    pub name: String,
    /// `RuleDisabled`: a disabled rule routes nothing.
    pub disabled: bool,
    /// The parsed `Sql`.
    pub sql: Sql,
    /// The `Actions`, all `Sqs`.
    pub actions: Vec<SqsAction>,
    /// The `ErrorAction`: where AWS IoT reports a failed action (not a failed SQL evaluation).
    pub error_action: Option<SqsAction>,
}

/// An `Sqs` rule action.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqsAction {
    /// The logical id of the target queue (`QueueUrl: !Ref <Queue>`).
    pub queue: String,
    /// `UseBase64`: the message body is the rule's output in base64.
    pub use_base64: bool,
}

/// An `AWS::SQS::Queue`, with SQS's defaults for what the template leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueueSpec {
    /// `VisibilityTimeout` (default 30 s).
    pub visibility_timeout: Duration,
    /// `MessageRetentionPeriod` (default 4 days).
    pub message_retention: Duration,
    /// `DelaySeconds` (default 0).
    pub delay: Duration,
    /// `RedrivePolicy`.
    pub redrive: Option<Redrive>,
    /// `FifoQueue`.
    pub fifo: bool,
}

/// A queue's `RedrivePolicy`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Redrive {
    /// The logical id of the dead-letter queue (`deadLetterTargetArn: !GetAtt <Queue>.Arn`).
    pub dead_letter_queue: String,
    /// `maxReceiveCount`: receives after which a message moves to the dead-letter queue.
    pub max_receive_count: u32,
}

/// An `SQS` event of an `AWS::Serverless::Function`: the function consumes a queue.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Consumer {
    /// The function's logical id.
    pub function: String,
    /// The event's name under `Events`.
    pub event: String,
    /// The cargo binary (and package) of the function: `Metadata.BuildProperties.Binary`.
    pub binary: String,
    /// The logical id of the queue (`Queue: !GetAtt <Queue>.Arn`).
    pub queue: String,
    /// `Enabled` (default true).
    pub enabled: bool,
    /// `BatchSize` (default 10).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `ScalingConfig.MaximumConcurrency`.
    pub maximum_concurrency: Option<u32>,
    /// The function's `Timeout`, else `Globals.Function.Timeout`, else 3 s.
    pub timeout: Duration,
    /// The function's `Environment.Variables` (merged with the globals'), resolved.
    pub environment: BTreeMap<String, String>,
}

/// An `AWS::Serverless::Function` that exists (no `Condition`, or a true one).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Function {
    /// The logical id.
    pub logical_id: String,
    /// `FunctionName`, when the template sets one.
    pub name: Option<String>,
    /// The cargo binary: `Metadata.BuildProperties.Binary` (what `sam build` with
    /// `rust-cargolambda` builds).
    pub binary: String,
    /// `Timeout`, else `Globals.Function.Timeout`, else 3 s.
    pub timeout: Duration,
    /// `Environment.Variables` (merged with the globals'), resolved.
    pub environment: BTreeMap<String, String>,
    /// The `Events`, in template order.
    pub events: Vec<FunctionEvent>,
}

/// One entry of a function's `Events`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct FunctionEvent {
    /// The event's name under `Events`.
    pub name: String,
    /// What invokes the function.
    pub trigger: Trigger,
}

/// An event source of a function, by `Type`.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Trigger {
    /// `SQS`: batches from a queue (the settings are in [`Routing::consumers`]).
    Sqs {
        /// The queue's logical id.
        queue: String,
    },
    /// `Schedule` (an EventBridge rule) or `ScheduleV2` (EventBridge Scheduler).
    Schedule(ScheduleTrigger),
    /// `HttpApi`: a route of an HTTP API, payload format 2.0.
    HttpApi(HttpApiTrigger),
    /// `DynamoDB`: the stream of a table of the template.
    DynamoDb(StreamTrigger),
}

/// A `Schedule` or `ScheduleV2` event.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScheduleTrigger {
    /// `Name`, else `<Function><Event>`.
    pub name: String,
    /// The rule's (or schedule's) ARN, as the event's `resources` names it.
    pub arn: String,
    /// `Schedule` / `ScheduleExpression`.
    pub expression: ScheduleExpr,
    /// `Input`: the JSON delivered instead of the scheduled event.
    pub input: Option<serde_json::Value>,
    /// `Enabled`, or `State: ENABLED` (default true).
    pub enabled: bool,
    /// `ScheduleV2` (EventBridge Scheduler) rather than an EventBridge rule.
    pub scheduler: bool,
}

/// An `HttpApi` event: a route of an HTTP API to the function.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpApiTrigger {
    /// The API's logical id (`ApiId: !Ref <HttpApi>`, else SAM's implicit `ServerlessHttpApi`).
    pub api: String,
    /// `Method` and `Path` (`$default` when both are absent).
    pub route: RouteKey,
    /// The authorizer: `Auth.Authorizer`, else the API's `Auth.DefaultAuthorizer`; `None` for
    /// `NONE` or no authorizer.
    pub authorizer: Option<String>,
}

/// A `DynamoDB` event: the stream of a table of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StreamTrigger {
    /// The table's logical id (`Stream: !GetAtt <Table>.StreamArn`).
    pub table: String,
    /// The table's `StreamSpecification.StreamViewType`.
    pub view_type: String,
    /// `StartingPosition`: `TRIM_HORIZON` or `LATEST`.
    pub starting_position: String,
    /// `BatchSize` (default 100).
    pub batch_size: u32,
    /// `MaximumBatchingWindowInSeconds` (default 0).
    pub batching_window: Duration,
    /// `FunctionResponseTypes` has `ReportBatchItemFailures`.
    pub report_batch_item_failures: bool,
    /// `MaximumRetryAttempts` (default -1: until the record expires).
    pub maximum_retry_attempts: i64,
    /// `BisectBatchOnFunctionError`.
    pub bisect_batch_on_function_error: bool,
    /// `Enabled` (default true).
    pub enabled: bool,
}

/// An HTTP API route whose integration sends the request to a queue
/// (`AWS::ApiGatewayV2::Integration` of type `AWS_PROXY`, subtype `SQS-SendMessage`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SqsSendMessageRoute {
    /// The `AWS::ApiGatewayV2::Route`'s logical id.
    pub route_id: String,
    /// The integration's logical id.
    pub integration: String,
    /// The API's logical id (`ApiId`).
    pub api: String,
    /// `RouteKey`.
    pub route: RouteKey,
    /// `AuthorizationType` (`NONE`, `JWT`, ...).
    pub authorization_type: String,
    /// The queue's logical id (`RequestParameters.QueueUrl: !Ref <Queue>`).
    pub queue: String,
    /// The other `RequestParameters` (`MessageBody`, `MessageAttributes`, ...): mapping
    /// expressions such as `$request.body` or `${context.authorizer.claims.sub}`, unevaluated.
    pub parameters: BTreeMap<String, String>,
}

impl Routing {
    /// Every function of the template that exists, in template order.
    #[must_use]
    pub fn functions(&self) -> &[Function] {
        &self.functions
    }

    /// The HTTP API routes that send to a queue (`SQS-SendMessage` integrations).
    #[must_use]
    pub fn sqs_send_message_routes(&self) -> &[SqsSendMessageRoute] {
        &self.sqs_routes
    }

    /// The topic rules, in template order.
    #[must_use]
    pub fn rules(&self) -> &[TopicRule] {
        &self.rules
    }

    /// The rule named `name` (its `RuleName`).
    #[must_use]
    pub fn rule(&self, name: &str) -> Option<&TopicRule> {
        self.by_name.get(name).map(|&i| &self.rules[i])
    }

    /// The queues by logical id.
    #[must_use]
    pub fn queues(&self) -> &BTreeMap<String, QueueSpec> {
        &self.queues
    }

    /// The IoT policies, by `PolicyName`.
    #[must_use]
    pub fn policies(&self) -> &BTreeMap<String, crate::policy::Policy> {
        &self.policies
    }

    /// The `AWS::IoT::Policy` named `name` (its `PolicyName`, else its logical id).
    pub fn policy(&self, name: &str) -> Option<&crate::policy::Policy> {
        self.policies.get(name)
    }

    /// `arn:<partition>:iot:<region>:<account>` as the template's ARNs resolve locally: the
    /// prefix of the resources the policies name.
    pub fn arn_prefix(&self) -> String {
        resolve::iot_arn_prefix()
    }

    /// The SQS consumers, in template order.
    #[must_use]
    pub fn consumers(&self) -> &[Consumer] {
        &self.consumers
    }

    /// Routes one message through every enabled rule: the messages to send, as (queue logical
    /// id, body), in rule and action order.
    ///
    /// A Basic Ingest topic (`$aws/rules/<rule name>/...`) reaches only the rule of that name, if
    /// it exists and is enabled; any other topic reaches every enabled rule whose FROM filter
    /// matches it. The payload is parsed at most once, however many rules match.
    #[must_use]
    pub fn route(
        &self,
        topic: &str,
        payload: &[u8],
        client_id: &str,
        now_ms: u64,
    ) -> Vec<(&str, Vec<u8>)> {
        let mut out = Vec::new();
        if let Some((name, _)) = basic_ingest(topic) {
            if let Some(rule) = self.rule(name)
                && let Some(rule_topic) = rule.accepts(topic)
            {
                let message = Message::new(rule_topic, payload, client_id, now_ms);
                if let Some(body) = rule.sql.evaluate(&message) {
                    rule.deliver(body, &mut out);
                }
            }
            return out;
        }
        let message = Message::new(topic, payload, client_id, now_ms);
        for &i in &self.enabled {
            let rule = &self.rules[i];
            if rule.accepts(topic).is_some()
                && let Some(body) = rule.sql.evaluate(&message)
            {
                rule.deliver(body, &mut out);
            }
        }
        out
    }
}

impl TopicRule {
    /// Runs this rule on one message: `None` when the rule is disabled, the topic is neither
    /// matched by FROM nor a Basic Ingest topic for this rule, or WHERE is not true (or the SQL
    /// fails, see [`crate::sql`]); otherwise the rule's output, which every action sends.
    #[must_use]
    pub fn route(
        &self,
        topic: &str,
        payload: &[u8],
        client_id: &str,
        now_ms: u64,
    ) -> Option<Vec<u8>> {
        let rule_topic = self.accepts(topic)?;
        self.sql
            .evaluate(&Message::new(rule_topic, payload, client_id, now_ms))
    }

    /// Whether this rule takes a message on `topic`, and the topic as its SQL sees it: a Basic
    /// Ingest topic for this rule (prefix removed), or a topic its FROM filter matches.
    fn accepts<'t>(&self, topic: &'t str) -> Option<&'t str> {
        if self.disabled {
            return None;
        }
        match basic_ingest(topic) {
            Some((name, rule_topic)) => (name == self.name).then_some(rule_topic),
            None => self.sql.topic_filter().matches(topic).then_some(topic),
        }
    }

    fn deliver<'r>(&'r self, body: Vec<u8>, out: &mut Vec<(&'r str, Vec<u8>)>) {
        let Some((last, others)) = self.actions.split_last() else {
            return;
        };
        for action in others {
            out.push((action.queue.as_str(), action.body(body.clone())));
        }
        out.push((last.queue.as_str(), last.body(body)));
    }
}

impl SqsAction {
    fn body(&self, output: Vec<u8>) -> Vec<u8> {
        if self.use_base64 {
            base64(&output)
        } else {
            output
        }
    }
}

/// Standard base64 with padding (RFC 4648 §4), as the SQS action's `UseBase64` sends.
fn base64(input: &[u8]) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| ALPHABET[usize::try_from((n >> shift) & 63).unwrap_or(0)];
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { b'=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { b'=' });
    }
    out
}
