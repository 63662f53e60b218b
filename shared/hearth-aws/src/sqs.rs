//! The dead-letter sink on SQS.
//!
//! Letters are sent with `SendMessageBatch` (up to 10 a call) to the source queue's redrive DLQ,
//! the original body unchanged and the reason in message attributes:
//!
//! | attribute | value |
//! |---|---|
//! | `hearth.reason` | stable reason code (`not-json`, `invalid-shape`, `store-rejected`, ...) |
//! | `hearth.detail` | human-readable explanation (at most 1,024 characters) |
//! | `hearth.source-message-id` | the message id on the source queue |
//! | `hearth.truncated` | `true` when the body had to be cut to fit SQS's size limit |

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{MessageAttributeValue, SendMessageBatchRequestEntry};
use hearth_ports::{DeadLetter, DeadLetterSink, StoreError};

use crate::classify;

/// SQS's largest message (body and attributes), in bytes.
const MAX_SQS_MESSAGE_BYTES: usize = 256 * 1024;
/// Room kept for the attributes when a body must be cut.
const ATTRIBUTE_ALLOWANCE: usize = 2 * 1024;
const MAX_DETAIL_CHARS: usize = 1024;
const BATCH: usize = 10;
const PERMANENT: &[&str] = &[
    "InvalidMessageContents",
    "AWS.SimpleQueueService.BatchRequestTooLong",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// The [`DeadLetterSink`] on an SQS queue.
#[derive(Debug, Clone)]
pub struct SqsDeadLetterSink {
    client: Client,
    queue_url: String,
}

impl SqsDeadLetterSink {
    /// A sink sending to `queue_url`, with a client built from `config`.
    pub fn new(config: &aws_config::SdkConfig, queue_url: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), queue_url)
    }

    /// A sink sending to `queue_url` with an existing client.
    pub fn from_client(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    async fn send_chunk(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        let entries: Result<Vec<_>, _> = letters.iter().enumerate().map(entry).collect();
        let entries = match entries {
            Ok(entries) => entries,
            Err(e) => {
                let error = StoreError::Rejected(format!("cannot build dead letter: {e}"));
                return letters.iter().map(|_| Err(error.clone())).collect();
            }
        };
        let output = match self
            .client
            .send_message_batch()
            .queue_url(&self.queue_url)
            .set_entries(Some(entries))
            .send()
            .await
        {
            Ok(output) => output,
            Err(e) => {
                let error = classify(&e, PERMANENT);
                return letters.iter().map(|_| Err(error.clone())).collect();
            }
        };
        let mut results: Vec<Result<(), StoreError>> = letters.iter().map(|_| Ok(())).collect();
        for failed in output.failed() {
            let Some(slot) = failed
                .id()
                .parse::<usize>()
                .ok()
                .and_then(|i| results.get_mut(i))
            else {
                continue;
            };
            let detail = format!(
                "{}: {}",
                failed.code(),
                failed.message().unwrap_or("no message")
            );
            *slot = Err(if failed.sender_fault() {
                StoreError::Rejected(detail)
            } else {
                StoreError::Transient(detail)
            });
        }
        results
    }
}

/// The end of the batch starting at `start`: at most ten letters whose bodies (as sent) and
/// attributes fit one request, since SQS limits the batch's total size as well as each message's.
fn chunk_end(letters: &[DeadLetter], start: usize) -> usize {
    let mut total = 0;
    let mut end = start;
    while end < letters.len() && end - start < BATCH {
        let size = letters[end]
            .body
            .len()
            .min(MAX_SQS_MESSAGE_BYTES - ATTRIBUTE_ALLOWANCE)
            + ATTRIBUTE_ALLOWANCE;
        if end > start && total + size > MAX_SQS_MESSAGE_BYTES {
            break;
        }
        total += size;
        end += 1;
    }
    end
}

fn attribute(value: &str) -> Result<MessageAttributeValue, aws_sdk_sqs::error::BuildError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
}

fn entry(
    (index, letter): (usize, &DeadLetter),
) -> Result<SendMessageBatchRequestEntry, aws_sdk_sqs::error::BuildError> {
    let limit = MAX_SQS_MESSAGE_BYTES - ATTRIBUTE_ALLOWANCE;
    let truncated = letter.body.len() > limit;
    let body = if truncated {
        let mut end = limit;
        while !letter.body.is_char_boundary(end) {
            end -= 1;
        }
        &letter.body[..end]
    } else {
        letter.body.as_str()
    };
    let detail: String = letter.detail.chars().take(MAX_DETAIL_CHARS).collect();
    let mut builder = SendMessageBatchRequestEntry::builder()
        .id(index.to_string())
        // SQS refuses an empty body: a letter always says something.
        .message_body(if body.is_empty() {
            "(empty body)"
        } else {
            body
        })
        .message_attributes("hearth.reason", attribute(&letter.reason)?)
        .message_attributes("hearth.source-message-id", attribute(&letter.message_id)?);
    if !detail.is_empty() {
        builder = builder.message_attributes("hearth.detail", attribute(&detail)?);
    }
    if truncated {
        builder = builder.message_attributes("hearth.truncated", attribute("true")?);
    }
    builder.build()
}

#[async_trait]
impl DeadLetterSink for SqsDeadLetterSink {
    async fn send(&self, letters: &[DeadLetter]) -> Vec<Result<(), StoreError>> {
        let mut results = Vec::with_capacity(letters.len());
        let mut start = 0;
        while start < letters.len() {
            let end = chunk_end(letters, start);
            results.extend(self.send_chunk(&letters[start..end]).await);
            start = end;
        }
        results
    }
}
