//! The state processor: a Lambda on the state queue that advances the device state projection.
//!
//! It consumes SQS batches of shadow `update/documents` and `delete/accepted` messages, device
//! telemetry and presence events, each carrying the envelope the topic rules add (see
//! [`hearth_domain::ingest`]). For every batch it:
//!
//! 1. parses each message; a permanently bad one (not JSON, wrong shape, oversize, unknown
//!    topic) is sent to the dead-letter queue with its reason and is not retried;
//! 2. coalesces the good ones per device into one partial state (the same forward-only merge
//!    the store applies), so a device gets at most one store write per batch;
//! 3. applies each device's state concurrently; a transient failure reports every message merged
//!    into that write as failed, a permanent refusal dead-letters them;
//! 4. returns an SQS partial batch response listing only the messages to retry.
//!
//! A bad message never fails its neighbours, and nothing is dropped silently: every message is
//! stored, ignored with a logged reason (presence of a client that is not a thing), dead-lettered
//! or retried.
//!
//! The handler takes its ports as `&dyn` traits and knows no AWS SDK; `main.rs` wires the AWS
//! adapters, and the local stack wires its embedded ones to the same [`handle`].

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use futures_util::StreamExt;
use futures_util::stream;
use hearth_domain::device::DeviceId;
use hearth_domain::ingest::{self, Parsed};
use hearth_domain::projection::DeviceState;
use hearth_ports::{Clock, DeadLetter, DeadLetterSink, StateStore};
use lambda_runtime::{Diagnostic, LambdaEvent};
use tracing::{debug, error, info, warn};

#[cfg(feature = "lambda")]
pub mod lambda;

/// How many device writes run at once.
pub const WRITE_CONCURRENCY: usize = 32;

/// Reason code on the dead-letter queue for messages whose write the store refused.
pub const STORE_REJECTED: &str = "store-rejected";
/// Reason code for a record with no body.
pub const MISSING_BODY: &str = "missing-body";

/// The ports the handler needs.
#[derive(Clone, Copy)]
pub struct Ports<'a> {
    /// Where device state is projected.
    pub store: &'a dyn StateStore,
    /// Where permanently bad messages go.
    pub dead_letters: &'a dyn DeadLetterSink,
    /// The time, against which the invocation's deadline is read.
    pub clock: &'a dyn Clock,
}

/// A failure of the whole batch (every message will be retried).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Messages failed but have no message id, so they cannot be reported one by one.
    #[error("{count} failed message(s) have no message id; retrying the whole batch")]
    UnidentifiableFailures {
        /// How many.
        count: usize,
    },
}

impl From<BatchError> for Diagnostic {
    fn from(error: BatchError) -> Diagnostic {
        Diagnostic {
            error_type: "Retryable".to_owned(),
            error_message: error.to_string(),
        }
    }
}

/// What happened to a batch, for the summary log line and for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    /// Records in the batch.
    pub records: usize,
    /// Devices written (one store call each).
    pub devices: usize,
    /// Messages sent to the dead-letter queue.
    pub dead_lettered: usize,
    /// Well-formed messages that concern no device.
    pub ignored: usize,
    /// Messages reported for retry.
    pub retried: usize,
}

/// The Lambda entry point: [`handle`] on the event's payload.
pub async fn function_handler(
    ports: Ports<'_>,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, BatchError> {
    let now = ports.clock.now_ms();
    debug!(
        deadline_ms = event.context.deadline,
        now_ms = now,
        "invocation time budget"
    );
    let deadline = write_deadline(event.context.deadline, now);
    handle_until(ports, &event.payload, deadline)
        .await
        .map(|(response, _)| response)
}

/// Time kept back from the invocation's deadline to report the batch response.
pub const DEADLINE_MARGIN: Duration = Duration::from_secs(2);

/// When writes must stop: the invocation deadline (milliseconds since the epoch) less
/// [`DEADLINE_MARGIN`]; `None` when the context carries no usable deadline (none, or one that is
/// not in the future — cargo-lambda's emulator sends the timeout itself, e.g. `600000`, where
/// Lambda sends an epoch time).
pub fn write_deadline(deadline_ms: u64, now_ms: u64) -> Option<tokio::time::Instant> {
    if deadline_ms <= now_ms {
        return None;
    }
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    Some(tokio::time::Instant::now() + left.saturating_sub(DEADLINE_MARGIN))
}

/// Processes one SQS batch with no time limit; returns the partial batch response and a summary.
pub async fn handle(
    ports: Ports<'_>,
    event: &SqsEvent,
) -> Result<(SqsBatchResponse, Summary), BatchError> {
    handle_until(ports, event, None).await
}

/// Processes one SQS batch, finishing by `deadline`: writes not done by then are abandoned and
/// their messages reported for retry (so a slow or throttled store fails only what it did not
/// finish, never the whole batch).
pub async fn handle_until(
    ports: Ports<'_>,
    event: &SqsEvent,
    deadline: Option<tokio::time::Instant>,
) -> Result<(SqsBatchResponse, Summary), BatchError> {
    let records = &event.records;
    let mut summary = Summary {
        records: records.len(),
        ..Summary::default()
    };
    let mut retry: BTreeSet<usize> = BTreeSet::new();
    let mut letters: Vec<(usize, DeadLetter)> = Vec::new();
    // Devices in first-seen order, each with its coalesced update and the messages in it.
    let mut index: HashMap<DeviceId, usize> = HashMap::new();
    let mut groups: Vec<(DeviceId, DeviceState, Vec<usize>)> = Vec::new();

    for (i, record) in records.iter().enumerate() {
        let message_id = record.message_id.as_deref().unwrap_or("");
        let Some(body) = record.body.as_deref() else {
            warn!(message_id, reason = MISSING_BODY, "record has no body");
            letters.push((
                i,
                letter(message_id, "", MISSING_BODY, "record has no body"),
            ));
            continue;
        };
        match ingest::parse(body) {
            Ok(Parsed::Message(message)) => {
                let thing = message.thing().clone();
                let update = message.into_update();
                match index.entry(thing) {
                    Entry::Occupied(slot) => {
                        let (_, coalesced, members) = &mut groups[*slot.get()];
                        coalesced.merge(&update);
                        members.push(i);
                    }
                    Entry::Vacant(slot) => {
                        // A message's own update is what merging it into nothing gives (the
                        // domain tests check it): the first one of a device is taken as is.
                        groups.push((slot.key().clone(), update, vec![i]));
                        slot.insert(groups.len() - 1);
                    }
                }
            }
            Ok(Parsed::Ignored(why)) => {
                info!(message_id, why, "message ignored");
                summary.ignored += 1;
            }
            Err(e) => {
                warn!(message_id, reason = e.reason(), error = %e, error_type = "InvalidMessage", "permanently bad message");
                letters.push((i, letter(message_id, body, e.reason(), &e.to_string())));
            }
        }
    }

    // Permanently bad messages first: their fate must not depend on how the writes go.
    send_letters(ports, &letters, &mut retry, &mut summary).await;
    letters.clear();

    summary.devices = groups.len();
    let mut pending: Vec<Option<Vec<usize>>> = groups
        .iter()
        .map(|(_, _, members)| Some(members.clone()))
        .collect();
    let mut writes = stream::iter(groups.into_iter().enumerate())
        .map(|(g, (thing, update, members))| async move {
            let result = ports.store.apply(&thing, &update).await;
            (g, thing, members, result)
        })
        .buffer_unordered(WRITE_CONCURRENCY);
    let mut finished = Vec::new();
    loop {
        let next = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, writes.next()).await {
                Ok(next) => next,
                Err(_) => {
                    warn!("out of time: the unfinished writes' messages will be retried");
                    break;
                }
            },
            None => writes.next().await,
        };
        match next {
            Some(write) => finished.push(write),
            None => break,
        }
    }
    drop(writes);
    for (g, thing, members, result) in finished {
        if let Some(slot) = pending.get_mut(g) {
            *slot = None;
        }
        match result {
            Ok(changes) => debug!(%thing, ?changes, messages = members.len(), "state applied"),
            Err(e) if e.is_retryable() => {
                warn!(%thing, error = %e, error_type = "Retryable", messages = members.len(), "state write failed; retrying its messages");
                retry.extend(members);
            }
            Err(e) => {
                error!(%thing, error = %e, error_type = "StoreRejected", messages = members.len(), "store refused the write; dead-lettering its messages");
                for i in members {
                    let record = &records[i];
                    letters.push((
                        i,
                        letter(
                            record.message_id.as_deref().unwrap_or(""),
                            record.body.as_deref().unwrap_or(""),
                            STORE_REJECTED,
                            &e.to_string(),
                        ),
                    ));
                }
            }
        }
    }
    for members in pending.into_iter().flatten() {
        retry.extend(members);
    }

    // Messages the store refused.
    send_letters(ports, &letters, &mut retry, &mut summary).await;

    let mut response = SqsBatchResponse::default();
    let mut unidentifiable = 0;
    for i in retry {
        match records[i].message_id.as_deref() {
            Some(id) if !id.is_empty() => response.add_failure(id),
            _ => unidentifiable += 1,
        }
    }
    summary.retried = response.batch_item_failures.len();
    if unidentifiable > 0 {
        return Err(BatchError::UnidentifiableFailures {
            count: unidentifiable,
        });
    }
    info!(
        records = summary.records,
        devices = summary.devices,
        dead_lettered = summary.dead_lettered,
        ignored = summary.ignored,
        retried = summary.retried,
        "batch processed"
    );
    Ok((response, summary))
}

/// Sends dead letters; a letter that could not be sent leaves its message for retry.
async fn send_letters(
    ports: Ports<'_>,
    letters: &[(usize, DeadLetter)],
    retry: &mut BTreeSet<usize>,
    summary: &mut Summary,
) {
    if letters.is_empty() {
        return;
    }
    let batch: Vec<DeadLetter> = letters.iter().map(|(_, l)| l.clone()).collect();
    let results = ports.dead_letters.send(&batch).await;
    for (n, (i, _)) in letters.iter().enumerate() {
        match results.get(n) {
            Some(Ok(())) => summary.dead_lettered += 1,
            Some(Err(e)) => {
                warn!(error = %e, "dead-lettering failed; retrying the message");
                retry.insert(*i);
            }
            None => {
                warn!("dead-letter sink returned too few results; retrying the message");
                retry.insert(*i);
            }
        }
    }
}

fn letter(message_id: &str, body: &str, reason: &str, detail: &str) -> DeadLetter {
    DeadLetter {
        message_id: message_id.to_owned(),
        body: body.to_owned(),
        reason: reason.to_owned(),
        detail: detail.to_owned(),
    }
}
