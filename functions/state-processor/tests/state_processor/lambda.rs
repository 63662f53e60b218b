//! The Lambda invocation: one CloudWatch metrics line (EMF) per invocation.

use hearth_metrics::{Emitter, QUEUE_CONSUMER};
use hearth_ports::ManualClock;
use hearth_state_processor::lambda::{self, Invocation};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

use crate::support::{World, batch, record, telemetry};

const NOW: u64 = 1_700_000_100_000;

/// The world's ports on `clock`.
fn ports<'a>(world: &'a World, clock: &'a ManualClock) -> hearth_state_processor::Ports<'a> {
    hearth_state_processor::Ports {
        clock,
        ..world.ports()
    }
}

fn emitter() -> Emitter<6> {
    Emitter::new(
        &QUEUE_CONSUMER,
        "Hearth",
        vec![lambda::FUNCTION_NAME.to_owned()],
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn sent(
    id: &str,
    body: &str,
    attribute: &str,
    at: u64,
) -> aws_lambda_events::event::sqs::SqsMessage {
    let mut message = record(id, body);
    message
        .attributes
        .insert(attribute.to_owned(), at.to_string());
    message
}

/// The one line written, parsed.
fn only_line(out: &[u8]) -> Value {
    let text = std::str::from_utf8(out).unwrap_or_else(|e| panic!("{e}"));
    let lines: Vec<&str> = text.split_terminator('\n').collect();
    assert_eq!(lines.len(), 1, "one line per invocation: {text}");
    assert!(text.ends_with('\n'));
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test]
async fn an_invocation_writes_one_line_with_its_counts_age_and_duration() {
    let world = World::default();
    world.fail_transiently("th-2");
    let clock = ManualClock::new(NOW);
    let event = LambdaEvent {
        payload: batch(vec![
            sent("ok", &telemetry("th-1", 1, 1), "SentTimestamp", NOW - 5_000),
            // Without SentTimestamp, the first receive counts.
            sent(
                "retry",
                &telemetry("th-2", 1, 1),
                "ApproximateFirstReceiveTimestamp",
                NOW - 9_000,
            ),
            sent("bad", "not json", "SentTimestamp", NOW - 1_000),
        ]),
        context: Context::default(),
    };
    let mut out = Vec::new();
    let response = lambda::invoke(ports(&world, &clock), &emitter(), &mut out, event)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(response.batch_item_failures.len(), 1);
    let line = only_line(&out);
    assert!(line["Duration"].is_number(), "{line}");
    let mut values = line.clone();
    if let Some(root) = values.as_object_mut() {
        root.remove("_aws");
        root.remove("Duration");
    }
    assert_eq!(
        values,
        json!({
            "Function": "hearth-state-processor",
            "Messages": 3.0,
            "Failures": 1.0,
            "DeadLetters": 1.0,
            "BatchSize": 3.0,
            "OldestMessageAge": 9000.0,
        })
    );
    assert_eq!(line["_aws"]["Timestamp"], NOW);
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
        json!([["Function"]])
    );
}

#[tokio::test]
async fn dead_letters_count_only_what_the_queue_accepted() {
    let world = World::default();
    world.fail_dead_letters();
    let clock = ManualClock::new(NOW);
    let event = LambdaEvent {
        payload: batch(vec![
            record("bad", "not json"),
            record("ok", &telemetry("th-1", 1, 1)),
        ]),
        context: Context::default(),
    };
    let (result, invocation) = lambda::observe(ports(&world, &clock), event).await;
    assert!(result.is_ok());
    assert_eq!(
        Invocation {
            duration_ms: 0,
            ..invocation
        },
        Invocation {
            messages: 2,
            failures: 1,
            dead_letters: 0,
            oldest_message_age_ms: 0,
            duration_ms: 0,
        },
        "no timestamps: an age of 0"
    );
}

#[tokio::test]
async fn a_failed_batch_counts_every_message_as_failed_and_still_writes_its_line() {
    let world = World::default();
    world.fail_transiently("th-1");
    let clock = ManualClock::new(NOW);
    let mut anonymous = record("x", &telemetry("th-1", 1, 1));
    anonymous.message_id = None;
    let event = LambdaEvent {
        payload: batch(vec![anonymous, record("ok", &telemetry("th-3", 1, 1))]),
        context: Context::default(),
    };
    let mut out = Vec::new();
    let result = lambda::invoke(ports(&world, &clock), &emitter(), &mut out, event).await;
    assert!(
        result.is_err(),
        "a failure without a message id fails the batch"
    );
    let line = only_line(&out);
    assert_eq!(line["Failures"], 2.0);
    assert_eq!(line["Messages"], 2.0);
}

#[test]
fn the_oldest_message_age_is_from_the_earliest_timestamp() {
    let event = batch(vec![
        sent("a", "{}", "SentTimestamp", NOW - 10),
        sent("b", "{}", "SentTimestamp", NOW - 300),
        sent("c", "{}", "SentTimestamp", NOW + 50),
    ]);
    assert_eq!(lambda::oldest_message_age(&event, NOW), 300);
    let event = batch(vec![
        sent("a", "{}", "SentTimestamp", NOW - 10),
        sent("b", "{}", "SentTimestamp", NOW - 300),
        sent("c", "{}", "ApproximateFirstReceiveTimestamp", NOW - 20),
    ]);
    assert_eq!(lambda::oldest_message_age(&event, NOW), 300);
    let mut garbled = record("g", "{}");
    garbled
        .attributes
        .insert("SentTimestamp".to_owned(), "yesterday".to_owned());
    assert_eq!(lambda::oldest_message_age(&batch(vec![garbled]), NOW), 0);
    // A clock behind the queue's is an age of 0, never an underflow.
    let ahead = batch(vec![sent("a", "{}", "SentTimestamp", NOW + 50)]);
    assert_eq!(lambda::oldest_message_age(&ahead, NOW), 0);
}
