//! Functions and what invokes them: the function registry ([`registry`]: one entry per cargo
//! binary, each wiring the Lambda's handler with the embedded adapters) and one event source per
//! trigger kind the template declares:
//!
//! - SQS: [`crate::pipeline`] polls the queue and calls [`LocalFunction::sqs`] with the typed
//!   batch (the state pipeline's hot path never goes through JSON), partial batch responses;
//! - `Schedule` / `ScheduleV2`: [`schedule`], timers on the stack's clock delivering
//!   EventBridge's `Scheduled Event` (or the event's `Input`);
//! - `HttpApi`: [`http_api`], the template's HTTP API routes served from the local listener as
//!   API Gateway payload 2.0 requests (the JWT authorizer's claims from a development token), and
//!   the routes with an `SQS-SendMessage` integration, which send to the local queue;
//! - direct invokes: [`invoke`], the Lambda Invoke API's `POST
//!   /2015-03-31/functions/{name}/invocations` (as `aws lambda invoke --endpoint-url` or Alexa
//!   call a function);
//! - `DynamoDB` streams: read from the template and registered with their function
//!   ([`Trigger::DynamoDb`](hearth_iot_rules::template::Trigger)); the event source is not
//!   emulated yet (the embedded store has no change feed), so a template with one is refused at
//!   start rather than silently never invoking it.
//!
//! Every event but an SQS batch reaches the function as the JSON Lambda would deliver
//! ([`Invocation`]); the function answers with the JSON Lambda would return.

pub mod functions;
pub mod http_api;
pub mod invoke;
pub mod registry;
pub mod schedule;

use std::sync::Arc;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use hearth_ports::Clock;
use serde_json::Value;

/// What delivered an event: the function may read the payload as that event's type. A direct
/// invoke carries whatever the caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// An SQS batch (`SqsEvent`).
    Sqs,
    /// An EventBridge scheduled event, or a schedule's `Input`.
    Schedule,
    /// An API Gateway HTTP API request, payload format 2.0.
    HttpApi,
    /// A DynamoDB stream batch.
    DynamoDb,
    /// A direct invoke (Lambda's Invoke API) with any JSON payload.
    Direct,
}

/// One event for a function, in the JSON shape Lambda delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// Who sent it.
    pub source: Source,
    /// The event.
    pub payload: Value,
}

/// Why an invocation failed: Lambda's `errorType` and `errorMessage`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{error_type}: {message}")]
pub struct InvokeError {
    /// `errorType` (e.g. `Retryable`, `InvalidEvent`).
    pub error_type: String,
    /// `errorMessage`.
    pub message: String,
}

impl InvokeError {
    /// An error of `error_type`.
    pub fn new(error_type: &str, message: impl Into<String>) -> Self {
        Self {
            error_type: error_type.to_owned(),
            message: message.into(),
        }
    }

    /// The payload is not the event the function takes.
    pub fn invalid_event(e: impl std::fmt::Display) -> Self {
        Self::new(
            "InvalidEvent",
            format!("the event is not what the function takes: {e}"),
        )
    }
}

/// A function the local stack hosts: the Lambda's handler with local adapters.
#[async_trait]
pub trait LocalFunction: Send + Sync {
    /// Handles one event as the Lambda would; the JSON result.
    async fn invoke(&self, event: Invocation) -> Result<Value, InvokeError>;

    /// Handles an SQS batch, typed. The default goes through [`LocalFunction::invoke`] as
    /// JSON; a function on a hot path takes the batch as it is.
    async fn sqs(&self, event: &SqsEvent) -> Result<SqsBatchResponse, InvokeError> {
        let payload = serde_json::to_value(event).map_err(InvokeError::invalid_event)?;
        let result = self
            .invoke(Invocation {
                source: Source::Sqs,
                payload,
            })
            .await?;
        serde_json::from_value(result).map_err(|e| {
            InvokeError::new("InvalidResponse", format!("not an SQS batch response: {e}"))
        })
    }

    /// Makes the effects of the batches handled so far durable; an event source deletes their
    /// messages only after it succeeds. The default: nothing is deferred.
    async fn checkpoint(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The stack's notion of "now" for functions and schedules: the system clock, or a manual one
/// that `POST /local/clock` moves.
#[derive(Clone)]
pub struct StackClock {
    clock: Arc<dyn Clock>,
    manual: Option<Arc<hearth_ports::ManualClock>>,
}

impl StackClock {
    /// The operating system's clock.
    pub fn system() -> Self {
        Self {
            clock: Arc::new(hearth_ports::SystemClock),
            manual: None,
        }
    }

    /// A manual clock, standing at the system clock's time until moved.
    pub fn manual() -> Self {
        let manual = Arc::new(hearth_ports::ManualClock::starting_now());
        Self {
            clock: manual.clone(),
            manual: Some(manual),
        }
    }

    /// The clock, for functions' ports.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// Now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The manual clock, if the stack runs on one.
    pub fn manual_clock(&self) -> Option<&hearth_ports::ManualClock> {
        self.manual.as_deref()
    }
}

impl std::fmt::Debug for StackClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StackClock")
            .field("now_ms", &self.now_ms())
            .field("manual", &self.manual.is_some())
            .finish()
    }
}

/// 16 bytes written as a UUID (`8-4-4-4-12` lowercase hex), the shape of Lambda's request ids
/// and EventBridge's event ids.
fn uuid_text(bytes: [u8; 16]) -> String {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}
