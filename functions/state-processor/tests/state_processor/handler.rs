use std::sync::atomic::Ordering;

use hearth_domain::ingest::MAX_MESSAGE_BYTES;
use hearth_state_processor::{STORE_REJECTED, function_handler};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn stores_shadow_state_and_ignores_duplicates_and_reordering() {
    let world = World::default();
    let event = batch(vec![
        record("m1", &documents("lamp-1", 3, 3_000, json!({"power": "on"}))),
        record(
            "m2",
            &documents("lamp-1", 2, 2_000, json!({"power": "off"})),
        ),
        record("m3", &documents("lamp-1", 3, 3_000, json!({"power": "on"}))),
        record(
            "m4",
            &documents("lamp-1", 1, 1_000, json!({"power": "off"})),
        ),
    ]);
    let (retry, summary) = world.run(&event).await;
    assert!(retry.is_empty());
    assert_eq!(summary.devices, 1);
    let state = world.state("lamp-1").await;
    assert_eq!(version(&state), Some(3));
    assert_eq!(
        state.shadow.and_then(|s| s.reported),
        json!({"power": "on"}).as_object().cloned()
    );
    // An older message in a later batch is a no-op.
    let (retry, _) = world
        .run(&batch(vec![record(
            "m5",
            &documents("lamp-1", 2, 2_000, json!({"power": "off"})),
        )]))
        .await;
    assert!(retry.is_empty());
    assert_eq!(version(&world.state("lamp-1").await), Some(3));
}

#[tokio::test]
async fn coalesces_to_one_write_per_device() {
    let world = World::default();
    let mut records = Vec::new();
    for i in 0..10u64 {
        records.push(record(&format!("a{i}"), &telemetry("th-a", i, 1_000 + i)));
        records.push(record(&format!("b{i}"), &telemetry("th-b", i, 2_000 + i)));
    }
    let (retry, summary) = world.run(&batch(records)).await;
    assert!(retry.is_empty());
    assert_eq!(summary.devices, 2);
    assert_eq!(
        world.applies.load(Ordering::SeqCst),
        2,
        "one store call per device"
    );
    let state = world.state("th-a").await;
    assert_eq!(state.last_seen, Some(1_009));
    assert_eq!(
        state.telemetry.map(|t| t.payload.get("seq").cloned()),
        Some(Some(json!(9)))
    );
}

#[tokio::test]
async fn poison_messages_go_to_the_dead_letter_queue_and_never_fail_neighbours() {
    let world = World::default();
    let oversize = format!("{{\"pad\": \"{}\"}}", "x".repeat(MAX_MESSAGE_BYTES));
    let event = batch(vec![
        record("good-1", &telemetry("th-1", 1, 100)),
        record("bad-json", "{\"thing\": "),
        record(
            "bad-shape",
            &with_envelope(
                json!({"current": 7}),
                "lamp-1",
                "$aws/things/lamp-1/shadow/update/documents",
                5,
            ),
        ),
        record(
            "bad-topic",
            &with_envelope(json!({}), "lamp-1", "cmd/x/lamp-1/reboot", 5),
        ),
        record("bad-size", &oversize),
        record(
            "good-2",
            &documents("lamp-1", 1, 100, json!({"power": "on"})),
        ),
    ]);
    let (retry, summary) = world.run(&event).await;
    assert!(
        retry.is_empty(),
        "permanently bad messages are not retried: {retry:?}"
    );
    assert_eq!(summary.dead_lettered, 4);
    assert_eq!(
        world.reasons(),
        vec![
            ("bad-json".to_owned(), "not-json".to_owned()),
            ("bad-shape".to_owned(), "invalid-shape".to_owned()),
            ("bad-topic".to_owned(), "unknown-topic".to_owned()),
            ("bad-size".to_owned(), "oversize".to_owned()),
        ]
    );
    let letters = world.letters.letters();
    assert_eq!(
        letters[0].body, "{\"thing\": ",
        "the body is kept as received"
    );
    assert_eq!(world.state("th-1").await.last_seen, Some(100));
    assert_eq!(version(&world.state("lamp-1").await), Some(1));
}

#[tokio::test]
async fn a_transient_store_failure_retries_every_message_merged_into_the_write() {
    let world = World::default();
    world.fail_transiently("lamp-a");
    let event = batch(vec![
        record("a1", &documents("lamp-a", 1, 100, json!({"power": "on"}))),
        record("b1", &telemetry("lamp-b", 1, 100)),
        record("a2", &telemetry("lamp-a", 2, 200)),
        record("a3", &presence("lamp-a", "connected", 1, 50, None)),
    ]);
    let (retry, summary) = world.run(&event).await;
    assert_eq!(retry, vec!["a1", "a2", "a3"]);
    assert_eq!(summary.retried, 3);
    assert_eq!(world.state("lamp-b").await.last_seen, Some(100));
    assert!(world.state("lamp-a").await.is_empty());
    assert!(world.letters.letters().is_empty());
}

#[tokio::test]
async fn a_refused_write_dead_letters_its_messages() {
    let world = World::default();
    world.reject("lamp-a");
    let event = batch(vec![
        record("a1", &telemetry("lamp-a", 1, 100)),
        record("b1", &telemetry("lamp-b", 1, 100)),
        record("a2", &telemetry("lamp-a", 2, 200)),
    ]);
    let (retry, summary) = world.run(&event).await;
    assert!(retry.is_empty());
    assert_eq!(summary.dead_lettered, 2);
    assert_eq!(
        world.reasons(),
        vec![
            ("a1".to_owned(), STORE_REJECTED.to_owned()),
            ("a2".to_owned(), STORE_REJECTED.to_owned()),
        ]
    );
    assert_eq!(world.state("lamp-b").await.last_seen, Some(100));
}

#[tokio::test]
async fn a_failed_dead_letter_is_retried_instead_of_dropped() {
    let world = World::default();
    world.fail_dead_letters();
    let event = batch(vec![
        record("bad", "nope"),
        record("good", &telemetry("th-1", 1, 100)),
    ]);
    let (retry, _) = world.run(&event).await;
    assert_eq!(retry, vec!["bad"]);
    assert_eq!(world.state("th-1").await.last_seen, Some(100));
}

#[tokio::test]
async fn a_recreated_shadow_is_accepted_within_and_across_batches() {
    let world = World::default();
    let (retry, _) = world
        .run(&batch(vec![
            record("v5", &documents("lamp-1", 5, 5_000, json!({"power": "on"}))),
            record("del", &shadow_deleted("lamp-1", 5, 6_000)),
            record(
                "new1",
                &documents("lamp-1", 1, 7_000, json!({"power": "off"})),
            ),
        ]))
        .await;
    assert!(retry.is_empty());
    let state = world.state("lamp-1").await;
    assert_eq!(version(&state), Some(1));
    assert_eq!(state.shadow_deleted_at, Some(6_000));

    let (retry, _) = world
        .run(&batch(vec![record(
            "del2",
            &shadow_deleted("lamp-1", 1, 8_000),
        )]))
        .await;
    assert!(retry.is_empty());
    assert_eq!(world.state("lamp-1").await.shadow, None);
    let (retry, _) = world
        .run(&batch(vec![
            record(
                "old",
                &documents("lamp-1", 4, 4_000, json!({"power": "on"})),
            ),
            record(
                "new",
                &documents("lamp-1", 1, 9_000, json!({"power": "on"})),
            ),
        ]))
        .await;
    assert!(retry.is_empty());
    let state = world.state("lamp-1").await;
    assert_eq!(
        state.shadow.map(|s| (s.version, s.received_at)),
        Some((1, 9_000))
    );
}

#[tokio::test]
async fn presence_is_ordered_and_duplicate_clientid_keeps_the_device_online() {
    let world = World::default();
    let (retry, _) = world
        .run(&batch(vec![
            record("c8", &presence("s-1", "connected", 8, 2_000, None)),
            record(
                "d7",
                &presence("s-1", "disconnected", 7, 2_100, Some("DUPLICATE_CLIENTID")),
            ),
            record("c7", &presence("s-1", "connected", 7, 1_000, None)),
        ]))
        .await;
    assert!(retry.is_empty());
    let conn = world.state("s-1").await.connectivity;
    assert_eq!(
        conn.as_ref().map(|c| (c.connected, c.version_number)),
        Some((true, 8))
    );

    let (retry, _) = world
        .run(&batch(vec![record(
            "d7-dup",
            &presence("s-1", "disconnected", 7, 2_100, Some("DUPLICATE_CLIENTID")),
        )]))
        .await;
    assert!(retry.is_empty());
    assert_eq!(
        world.state("s-1").await.connectivity,
        conn,
        "older session is a no-op"
    );

    let (_, _) = world
        .run(&batch(vec![record(
            "d8",
            &presence("s-1", "disconnected", 8, 3_000, Some("CONNECTION_LOST")),
        )]))
        .await;
    let conn = world.state("s-1").await.connectivity;
    assert_eq!(
        conn.map(|c| (c.connected, c.disconnect_reason)),
        Some((false, Some("CONNECTION_LOST".to_owned())))
    );
}

#[tokio::test]
async fn presence_of_clients_that_are_not_things_is_ignored() {
    let world = World::default();
    let body = with_envelope(
        json!({"clientId": "console#1", "timestamp": 1, "eventType": "connected", "versionNumber": 0}),
        "console#1",
        "$aws/events/presence/connected/console#1",
        2,
    );
    let (retry, summary) = world.run(&batch(vec![record("p", &body)])).await;
    assert!(retry.is_empty());
    assert_eq!(summary.ignored, 1);
    assert_eq!(summary.dead_lettered, 0);
    assert_eq!(world.applies.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn a_failure_without_a_message_id_fails_the_whole_batch() {
    let world = World::default();
    world.fail_transiently("th-1");
    let mut anonymous = record("", &telemetry("th-1", 1, 1));
    anonymous.message_id = None;
    let result = hearth_state_processor::handle(world.ports(), &batch(vec![anonymous])).await;
    let diagnostic = result.map(|_| ()).map_err(lambda_runtime::Diagnostic::from);
    assert!(
        matches!(diagnostic, Err(ref d) if d.error_type == "Retryable"),
        "{diagnostic:?}"
    );
}

#[tokio::test]
async fn the_lambda_entry_point_returns_a_partial_batch_response() {
    let world = World::default();
    world.fail_transiently("th-2");
    let event = LambdaEvent {
        payload: batch(vec![
            record("ok", &telemetry("th-1", 1, 1)),
            record("retry", &telemetry("th-2", 1, 1)),
        ]),
        context: Context::default(),
    };
    let response = function_handler(world.ports(), event).await;
    let json = response.map(|r| serde_json::to_value(r).ok());
    assert_eq!(
        json.ok().flatten(),
        Some(json!({"batchItemFailures": [{"itemIdentifier": "retry"}]}))
    );
}

#[tokio::test]
async fn a_hanging_write_fails_only_its_own_messages_at_the_deadline() {
    let world = World::default();
    world.hang("stuck");
    let event = batch(vec![
        record("s1", &telemetry("stuck", 1, 100)),
        record("bad", "not json"),
        record("ok", &telemetry("fine", 1, 100)),
        record("s2", &telemetry("stuck", 2, 200)),
    ]);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(200);
    let (response, summary) =
        match hearth_state_processor::handle_until(world.ports(), &event, Some(deadline)).await {
            Ok(done) => done,
            Err(e) => panic!("batch failed: {e}"),
        };
    let retried: Vec<String> = response
        .batch_item_failures
        .into_iter()
        .map(|f| f.item_identifier)
        .collect();
    assert_eq!(retried, vec!["s1", "s2"]);
    assert_eq!(
        summary.dead_lettered, 1,
        "the poison message is dead-lettered all the same"
    );
    assert_eq!(world.state("fine").await.last_seen, Some(100));
}

#[test]
fn the_write_deadline_keeps_a_margin_before_the_invocation_deadline() {
    use hearth_state_processor::{DEADLINE_MARGIN, write_deadline};
    assert!(
        write_deadline(0, 1_000).is_none(),
        "no deadline in the context"
    );
    assert!(
        write_deadline(600_000, 1_795_529_443_517).is_none(),
        "a deadline that is not an epoch time in the future is ignored"
    );
    let deadline = write_deadline(21_000, 1_000);
    let now = tokio::time::Instant::now();
    let left = deadline.map_or(std::time::Duration::ZERO, |d| {
        d.saturating_duration_since(now)
    });
    assert!(left <= std::time::Duration::from_secs(20) - DEADLINE_MARGIN);
    assert!(left >= std::time::Duration::from_secs(17));
}
