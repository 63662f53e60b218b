//! `Schedule` and `ScheduleV2` events: a timer per enabled schedule on the stack's clock,
//! invoking its function with EventBridge's `Scheduled Event` (or the event's `Input`).
//!
//! Every occurrence is delivered, in time order across schedules, each with its own `time`:
//! after `POST /local/clock` moves a manual clock by an hour, a `rate(1 minute)` schedule has run
//! sixty times, each seeing the clock at the end of the move (the clock does not go back). A
//! failed invocation is logged, not retried (EventBridge's retries and dead-letter settings are
//! refused by the template reader). With the system clock, a task sleeps until the next
//! occurrence; with a manual clock nothing fires until the clock is moved.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hearth_iot_rules::schedule::rfc3339;
use hearth_iot_rules::template::{ScheduleTrigger, Trigger};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, watch};
use tracing::{error, warn};

use super::registry::Registry;
use super::{Invocation, LocalFunction, Source, StackClock};

/// The most occurrences of one schedule delivered by one catch-up; later ones are skipped
/// (logged), so that a clock moved by a year does not run a `rate(1 minute)` schedule 525,600
/// times.
const MAX_CATCH_UP: usize = 10_000;

struct Timer {
    function: String,
    handler: Arc<dyn LocalFunction>,
    trigger: ScheduleTrigger,
    /// The next occurrence, ms; `None` once it never fires again.
    next: Option<u64>,
}

/// Every schedule of the template.
pub struct Scheduler {
    clock: StackClock,
    timers: Mutex<Vec<Timer>>,
}

/// The scheduled event EventBridge delivers for an occurrence at `at_ms`.
pub fn scheduled_event(trigger: &ScheduleTrigger, at_ms: u64) -> Value {
    if let Some(input) = &trigger.input {
        return input.clone();
    }
    json!({
        "version": "0",
        "id": event_id(&trigger.arn, at_ms),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "000000000000",
        "time": rfc3339(at_ms),
        "region": "local",
        "resources": [trigger.arn],
        "detail": {},
    })
}

/// A UUID-shaped id, the same for the same schedule and occurrence.
fn event_id(arn: &str, at_ms: u64) -> String {
    let digest = Sha256::new()
        .chain_update(arn.as_bytes())
        .chain_update(at_ms.to_be_bytes())
        .finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    super::uuid_text(bytes)
}

impl Scheduler {
    /// The enabled schedules of the registry's functions, counting from now.
    pub fn new(registry: &Registry, clock: StackClock) -> Self {
        let start = clock.now_ms();
        let mut timers = Vec::new();
        for hosted in registry.iter() {
            for event in &hosted.function.events {
                if let Trigger::Schedule(trigger) = &event.trigger
                    && trigger.enabled
                {
                    timers.push(Timer {
                        function: hosted.function.logical_id.clone(),
                        handler: hosted.handler.clone(),
                        next: trigger.expression.next_after(start, start),
                        trigger: trigger.clone(),
                    });
                }
            }
        }
        Self {
            clock,
            timers: Mutex::new(timers),
        }
    }

    /// How many schedules there are.
    pub async fn len(&self) -> usize {
        self.timers.lock().await.len()
    }

    /// Whether there are none.
    pub async fn is_empty(&self) -> bool {
        self.timers.lock().await.is_empty()
    }

    /// Delivers every occurrence due by the clock's now, in time order; returns how many.
    pub async fn catch_up(&self) -> usize {
        let mut timers = self.timers.lock().await;
        let now = self.clock.now_ms();
        let mut delivered = 0;
        let mut per_timer = vec![0usize; timers.len()];
        loop {
            let due = timers
                .iter()
                .enumerate()
                .filter_map(|(i, t)| t.next.filter(|n| *n <= now).map(|n| (n, i)))
                .min();
            let Some((at, i)) = due else { break };
            let timer = &mut timers[i];
            per_timer[i] += 1;
            if per_timer[i] > MAX_CATCH_UP {
                let next = timer.trigger.expression.next_after(now, at);
                warn!(function = %timer.function, schedule = %timer.trigger.name, "more than {MAX_CATCH_UP} occurrences due at once; skipping to the next one after now");
                timer.next = next;
                continue;
            }
            // The occurrence just delivered is on a rate's grid: counting from it keeps the grid.
            timer.next = timer.trigger.expression.next_after(at, at);
            let event = Invocation {
                source: Source::Schedule,
                payload: scheduled_event(&timer.trigger, at),
            };
            match timer.handler.invoke(event).await {
                Ok(_) => {
                    if let Err(e) = timer.handler.checkpoint().await {
                        error!(function = %timer.function, error = %e, "checkpoint after a scheduled event failed");
                    }
                }
                Err(e) => {
                    error!(function = %timer.function, schedule = %timer.trigger.name, error = %e, "scheduled invocation failed");
                }
            }
            delivered += 1;
        }
        delivered
    }

    /// The next occurrence of any schedule.
    async fn next_due(&self) -> Option<u64> {
        self.timers.lock().await.iter().filter_map(|t| t.next).min()
    }

    /// Fires schedules on the system clock until `shutdown` turns true. With a manual clock
    /// this only waits: `POST /local/clock` catches up.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        if self.clock.manual_clock().is_some() || self.is_empty().await {
            return;
        }
        while !*shutdown.borrow() {
            let wait = match self.next_due().await {
                Some(at) => Duration::from_millis(at.saturating_sub(self.clock.now_ms())),
                None => return,
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            self.catch_up().await;
        }
    }
}

/// `GET /local/clock` and `POST /local/clock {"advanceSeconds": n}`.
pub fn clock_router(clock: StackClock, scheduler: Arc<Scheduler>) -> Router {
    Router::new()
        .route(
            "/local/clock",
            axum::routing::get(read_clock).post(advance_clock),
        )
        .with_state((clock, scheduler))
}

fn clock_json(clock: &StackClock) -> Value {
    let now = clock.now_ms();
    json!({
        "nowMs": now,
        "now": rfc3339(now),
        "manual": clock.manual_clock().is_some(),
    })
}

async fn read_clock(State((clock, _)): State<(StackClock, Arc<Scheduler>)>) -> Json<Value> {
    Json(clock_json(&clock))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Advance {
    advance_seconds: u64,
}

/// Moves the manual clock and returns once every schedule due by then has run.
async fn advance_clock(
    State((clock, scheduler)): State<(StackClock, Arc<Scheduler>)>,
    body: axum::body::Bytes,
) -> Response {
    let Some(manual) = clock.manual_clock() else {
        return (
            StatusCode::CONFLICT,
            Json(json!({"error": "the stack runs on the system clock; start it with --manual-clock to move time"})),
        )
            .into_response();
    };
    let advance: Advance = match serde_json::from_slice(&body) {
        Ok(advance) => advance,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": format!("expected {{\"advanceSeconds\": <non-negative integer>}}: {e}")})),
            )
                .into_response();
        }
    };
    manual.advance(Duration::from_secs(advance.advance_seconds));
    let delivered = scheduler.catch_up().await;
    let mut body = clock_json(&clock);
    if let Some(object) = body.as_object_mut() {
        object.insert("scheduledInvocations".to_owned(), json!(delivered));
    }
    Json(body).into_response()
}
