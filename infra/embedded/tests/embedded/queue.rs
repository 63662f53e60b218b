//! Queue semantics, with a deterministic clock (`now` in milliseconds).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hearth_embedded::{
    EmbeddedError, MAX_MESSAGE_BYTES, MessageId, Queue, QueueConfig, Receipt, Received, Redrive,
    now_ms,
};

use crate::{fresh, ok};

const VT: u64 = 30_000;

pub fn config() -> QueueConfig {
    QueueConfig {
        visibility_timeout: Duration::from_millis(VT),
        ..QueueConfig::default()
    }
}

pub fn bodies(received: &[Received]) -> Vec<String> {
    received
        .iter()
        .map(|m| ok(m.body.to_str(), "utf-8").to_owned())
        .collect()
}

pub fn receipts(received: &[Received]) -> Vec<Receipt> {
    received.iter().map(|m| m.receipt).collect()
}

pub async fn send(queue: &Queue, bodies: &[String], now: u64) -> Vec<MessageId> {
    ok(queue.send_batch(bodies, now).await, "send_batch")
}

fn numbered(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

#[tokio::test]
async fn receives_in_batches_of_at_most_max_oldest_first() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    let sent = numbered("m", 25);
    let ids = send(&queue, &sent[..10], 1_000).await;
    let more = send(&queue, &sent[10..], 1_001).await;
    assert_eq!(ids.len(), 10);
    assert!(
        ids.iter()
            .chain(&more)
            .zip(ids.iter().chain(&more).skip(1))
            .all(|(a, b)| a < b)
    );
    assert_eq!(queue.approximate_len(), 25);

    let mut got = Vec::new();
    for expected in [10, 10, 5, 0] {
        let batch = ok(queue.receive(10, 2_000), "receive");
        assert_eq!(batch.len(), expected);
        got.extend(batch);
    }
    assert_eq!(
        bodies(&got),
        sent,
        "a single sender's messages come back in order"
    );
    let first = &got[0];
    assert_eq!(first.message_id, ids[0]);
    assert_eq!(first.receipt.message_id(), ids[0]);
    assert_eq!(
        (first.receive_count, first.sent_at, first.first_received_at),
        (1, 1_000, 2_000)
    );
    assert_eq!(queue.approximate_len(), 25, "in flight still counts");
    assert_eq!(queue.approximate_in_flight(), 25);
    assert!(ok(queue.receive(0, 2_000), "receive 0").is_empty());

    assert_eq!(ok(queue.delete(&receipts(&got)), "delete"), 25);
    assert_eq!(queue.approximate_len(), 0);
    assert!(ok(queue.send_batch::<String>(&[], 3_000).await, "empty send").is_empty());
}

#[tokio::test]
async fn undeleted_messages_come_back_after_the_visibility_timeout() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    send(&queue, &numbered("m", 3), 0).await;
    let first = ok(queue.receive(10, 100), "receive");
    assert_eq!(first.len(), 3);
    // The handler processed m-0 and m-2; m-1 failed (partial batch response): not deleted.
    let done = [first[0].receipt, first[2].receipt];
    assert_eq!(ok(queue.delete(&done), "delete"), 2);

    assert!(
        ok(queue.receive(10, 100 + VT - 1), "receive").is_empty(),
        "still invisible"
    );
    let again = ok(queue.receive(10, 100 + VT), "receive");
    assert_eq!(bodies(&again), ["m-1"]);
    assert_eq!(again[0].message_id, first[1].message_id);
    assert_eq!(again[0].receive_count, 2);
    assert_eq!(again[0].first_received_at, 100);
    assert_ne!(
        again[0].receipt, first[1].receipt,
        "a new receipt per receive"
    );

    let third = ok(queue.receive(10, 100 + 2 * VT), "receive");
    assert_eq!(third[0].receive_count, 3);
    assert_eq!(ok(queue.delete(&[again[0].receipt]), "stale delete"), 0);
    assert_eq!(
        queue.approximate_len(),
        1,
        "a stale receipt deletes nothing"
    );
    assert_eq!(ok(queue.delete(&[third[0].receipt]), "delete"), 1);
    assert_eq!(queue.approximate_len(), 0);
}

#[tokio::test]
async fn too_many_receives_move_a_message_to_the_dead_letter_queue() {
    let (_dir, db) = fresh();
    let dlq = ok(db.queue("state-dlq", QueueConfig::default()), "dlq");
    let redrive = QueueConfig {
        redrive: Some(Redrive {
            dead_letter_queue: "state-dlq".to_owned(),
            max_receive_count: 2,
        }),
        ..config()
    };
    let queue = ok(db.queue("state", redrive), "queue");
    let ids = send(&queue, &["poison".to_owned(), "fine".to_owned()], 5).await;

    let mut now = 10;
    for count in 1..=2 {
        let got = ok(queue.receive(10, now), "receive");
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|m| m.receive_count == count));
        if count == 2 {
            ok(queue.delete(&[got[1].receipt]), "delete fine");
        }
        now += VT;
    }
    assert!(
        ok(queue.receive(10, now), "receive").is_empty(),
        "moved, not delivered"
    );
    assert_eq!(queue.approximate_len(), 0);
    assert_eq!(dlq.approximate_len(), 1);
    let dead = ok(dlq.receive(10, now), "dlq receive");
    assert_eq!(bodies(&dead), ["poison"]);
    assert_eq!(dead[0].message_id, ids[0], "the message keeps its id");
    assert_eq!(dead[0].sent_at, 5, "and its send time");
    assert_eq!(
        dead[0].receive_count, 1,
        "counted afresh in the dead-letter queue"
    );
}

#[tokio::test]
async fn deletes_are_idempotent_and_ignore_unknown_receipts() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    send(&queue, &numbered("m", 2), 0).await;
    let got = ok(queue.receive(10, 0), "receive");
    let receipt = got[0].receipt;
    assert_eq!(ok(queue.delete(&[receipt, receipt]), "delete"), 1);
    assert_eq!(ok(queue.delete(&[receipt]), "delete again"), 0);
    let unknown: Receipt = ok("00000000000000ff0000000000000001".parse(), "parse");
    assert_eq!(ok(queue.delete(&[unknown]), "unknown"), 0);
    assert_eq!(queue.approximate_len(), 1);
    assert_eq!(ok(queue.delete(&[]), "nothing"), 0);

    // Receipts and ids round-trip through text (the Lambda event carries them as strings).
    assert_eq!(
        ok(receipt.to_string().parse::<Receipt>(), "receipt"),
        receipt
    );
    let id = got[1].message_id;
    assert_eq!(ok(id.to_string().parse::<MessageId>(), "id"), id);
    assert!("not-a-receipt".parse::<Receipt>().is_err());
    assert!("0123".parse::<MessageId>().is_err());
}

#[tokio::test]
async fn visibility_can_be_extended_or_ended() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    send(&queue, &numbered("m", 2), 0).await;
    let got = ok(queue.receive(10, 0), "receive");
    assert!(queue.change_visibility(&got[0].receipt, Duration::from_millis(2 * VT), 10));
    assert!(queue.change_visibility(&got[1].receipt, Duration::ZERO, 10));
    let back = ok(queue.receive(10, 20), "receive");
    assert_eq!(bodies(&back), ["m-1"], "visibility ended at once");
    assert!(
        !queue.change_visibility(&got[1].receipt, Duration::ZERO, 20),
        "stale receipt"
    );
    assert!(
        ok(queue.receive(10, VT + 5), "receive").is_empty(),
        "m-0 was extended"
    );
    assert_eq!(ok(queue.delete(&receipts(&back)), "delete"), 1);
    let later = ok(queue.receive(10, 10 + 2 * VT), "receive");
    assert_eq!(bodies(&later), ["m-0"]);
}

#[tokio::test]
async fn a_send_cancelled_after_its_commit_still_delivers() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    // Polled once: committed, then (unless the fsync thread was quicker) dropped while waiting
    // for the fsync.
    let _cancelled = tokio::time::timeout(Duration::ZERO, queue.send_batch(&["late"], 0)).await;
    ok(db.persist().await, "persist");
    assert_eq!(bodies(&ok(queue.receive(10, 1), "receive")), ["late"]);
}

#[tokio::test]
async fn messages_past_their_retention_are_dropped() {
    let (_dir, db) = fresh();
    let short = QueueConfig {
        retention: Duration::from_secs(60),
        ..config()
    };
    let queue = ok(db.queue("state", short), "queue");
    send(&queue, &["old".to_owned()], 0).await;
    send(&queue, &["new".to_owned()], 30_000).await;
    let got = ok(queue.receive(10, 60_000), "receive");
    assert_eq!(bodies(&got), ["new"]);
    assert_eq!(queue.approximate_len(), 1);
}

#[tokio::test]
async fn queue_configuration_is_checked() {
    let (_dir, db) = fresh();
    let missing = QueueConfig {
        redrive: Some(Redrive {
            dead_letter_queue: "nowhere".to_owned(),
            max_receive_count: 5,
        }),
        ..QueueConfig::default()
    };
    assert!(matches!(
        db.queue("state", missing),
        Err(EmbeddedError::UnknownQueue(_))
    ));
    for bad in ["", "has space", "slash/y", &"x".repeat(81)] {
        assert!(matches!(
            db.queue(bad, QueueConfig::default()),
            Err(EmbeddedError::InvalidQueueName(_))
        ));
    }
    let queue = ok(db.queue("state", config()), "queue");
    let again = ok(db.queue("state", config()), "same queue again");
    send(&queue, &["x".to_owned()], 0).await;
    assert_eq!(again.approximate_len(), 1, "one queue behind both handles");
    let other = QueueConfig {
        visibility_timeout: Duration::from_secs(5),
        ..config()
    };
    assert!(matches!(
        db.queue("state", other),
        Err(EmbeddedError::QueueConfigConflict(_))
    ));
    let big = vec![b'x'; MAX_MESSAGE_BYTES + 1];
    assert!(matches!(
        queue.send_batch(&[big], 0).await,
        Err(EmbeddedError::MessageTooLarge { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_get_unique_ids_and_lose_nothing() {
    let (_dir, db) = fresh();
    let queue = ok(db.queue("state", config()), "queue");
    let senders = (0..8).map(|s| {
        let queue = queue.clone();
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for b in 0..25 {
                let batch: Vec<String> = (0..40).map(|i| format!("s{s}-b{b}-{i}")).collect();
                ids.extend(ok(queue.send_batch(&batch, 0).await, "send"));
            }
            ids
        })
    });
    let mut all = HashSet::new();
    for sender in senders {
        for id in ok(sender.await, "sender") {
            assert!(all.insert(id), "duplicate id {id}");
        }
    }
    assert_eq!(all.len(), 8 * 25 * 40);
    assert_eq!(queue.approximate_len(), all.len());
    let got = ok(queue.receive(usize::MAX, 1), "receive");
    assert_eq!(
        got.iter().map(|m| m.message_id).collect::<HashSet<_>>(),
        all
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_consumers_wake_on_sends_and_on_expiring_visibility() {
    let (_dir, db) = fresh();
    let short = QueueConfig {
        visibility_timeout: Duration::from_millis(150),
        ..QueueConfig::default()
    };
    let queue = ok(db.queue("state", short), "queue");

    let waiter = {
        let queue = queue.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            queue.wait(Duration::from_secs(20)).await;
            started.elapsed()
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    send(&queue, &["hello".to_owned()], now_ms()).await;
    let waited = ok(waiter.await, "waiter");
    assert!(
        waited < Duration::from_secs(5),
        "woke on the send after {waited:?}"
    );

    let started = Instant::now();
    queue.wait(Duration::from_secs(20)).await;
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "a visible message: at once"
    );

    assert_eq!(ok(queue.receive(10, now_ms()), "receive").len(), 1);
    let started = Instant::now();
    queue.wait(Duration::from_secs(20)).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "woke when the visibility ended, {waited:?}"
    );
    assert_eq!(ok(queue.receive(10, now_ms()), "receive again").len(), 1);

    let started = Instant::now();
    queue.wait(Duration::from_millis(50)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(50),
        "nothing to wait for: the timeout"
    );
}
