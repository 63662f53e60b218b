//! Everything written survives closing and reopening the database.

use std::time::Duration;

use hearth_domain::device::{Device, DeviceId, DeviceType, Household, HouseholdId, ProductId};
use hearth_domain::projection::DeviceState;
use hearth_embedded::{Db, EmbeddedError, QueueConfig, Redrive};
use hearth_ports::{DeadLetter, DeadLetterSink, DeviceRegistry, StateStore};

use crate::queue::{bodies, config, send};
use crate::shadows::shadow;
use crate::{ok, open, tempdir};

fn queues(db: &Db) -> (hearth_embedded::Queue, hearth_embedded::Queue) {
    let dlq = ok(db.queue("dlq", QueueConfig::default()), "dlq");
    let redrive = QueueConfig {
        redrive: Some(Redrive {
            dead_letter_queue: "dlq".to_owned(),
            max_receive_count: 3,
        }),
        ..config()
    };
    (ok(db.queue("state", redrive), "queue"), dlq)
}

#[tokio::test]
async fn everything_survives_a_reopen() {
    let dir = tempdir();
    let thing = ok(DeviceId::parse("lamp-1"), "id");
    let home = ok(HouseholdId::parse("home"), "id");
    let device = Device {
        id: thing.clone(),
        product: ok(ProductId::parse("lamp-x"), "id"),
        household: Some(home.clone()),
        name: "Porch".to_owned(),
        device_type: DeviceType::Light,
        created_at: 1,
        serial: None,
        maker: None,
        claimed_at: None,
        claim_code_hash: None,
    };
    let letter = DeadLetter {
        message_id: "m-1".to_owned(),
        body: "not json".to_owned(),
        reason: "not-json".to_owned(),
        detail: "expected value".to_owned(),
    };
    let seen = DeviceState {
        last_seen: Some(42),
        ..DeviceState::default()
    };
    let last_id = {
        let db = open(dir.path());
        ok(db.state_store().apply(&thing, &seen).await, "apply");
        let registry = db.registry();
        ok(registry.put_device(&device).await, "put_device");
        let household = Household {
            id: home.clone(),
            name: "Home".to_owned(),
        };
        ok(registry.put_household(&household).await, "put_household");
        assert!(
            db.dead_letters()
                .send(std::slice::from_ref(&letter))
                .await
                .iter()
                .all(Result::is_ok)
        );
        ok(db.shadows().put("lamp-1", &shadow(3, "on")).await, "shadow");

        let (queue, dlq) = queues(&db);
        let sent: Vec<String> = ["deleted", "in-flight", "received-twice", "dead"]
            .map(str::to_owned)
            .to_vec();
        send(&queue, &sent, 0).await;
        let got = ok(queue.receive(10, 0), "receive");
        assert_eq!(bodies(&got), sent);
        ok(queue.delete(&[got[0].receipt]), "delete");
        assert!(queue.change_visibility(&got[1].receipt, Duration::from_secs(600), 0));
        let again = ok(queue.receive(10, 30_000), "receive");
        assert_eq!(bodies(&again), ["received-twice", "dead"]);
        // "dead" is received a third time, then moves to the dead-letter queue.
        assert!(queue.change_visibility(&again[1].receipt, Duration::ZERO, 30_000));
        let third = ok(queue.receive(10, 30_000), "receive");
        assert_eq!(
            (bodies(&third), third[0].receive_count),
            (vec!["dead".to_owned()], 3)
        );
        assert!(queue.change_visibility(&third[0].receipt, Duration::ZERO, 30_000));
        assert!(ok(queue.receive(10, 30_000), "receive").is_empty());
        assert_eq!(dlq.approximate_len(), 1);
        let ids = send(&queue, &["waiting".to_owned()], 30_000).await;
        ids.last().copied()
    };

    let db = open(dir.path());
    assert_eq!(
        ok(db.state_store().get_state(&thing).await, "get_state"),
        Some(seen)
    );
    assert_eq!(
        ok(db.registry().get_device(&thing).await, "get_device"),
        Some(device.clone())
    );
    let page = ok(
        db.registry().household_devices(&home, 10, None).await,
        "list",
    );
    assert_eq!(page.items, vec![device]);
    assert_eq!(
        ok(db.registry().get_household(&home).await, "household").map(|h| h.name),
        Some("Home".to_owned())
    );
    assert_eq!(ok(db.dead_letters().letters(), "letters"), vec![letter]);
    assert_eq!(
        ok(db.shadows().get("lamp-1").await, "shadow"),
        Some(shadow(3, "on"))
    );

    let (queue, dlq) = queues(&db);
    assert_eq!(
        queue.approximate_len(),
        3,
        "deleted and moved messages stay gone"
    );
    let back = ok(queue.receive(10, 40_000), "receive after reopen");
    assert_eq!(
        bodies(&back),
        ["in-flight", "received-twice", "waiting"],
        "in flight at the close: visible at once"
    );
    let counts: Vec<(u32, u64)> = back
        .iter()
        .map(|m| (m.receive_count, m.first_received_at))
        .collect();
    // A first receive is not written; later ones are.
    assert_eq!(counts, [(1, 40_000), (3, 0), (1, 40_000)]);
    let dead = ok(dlq.receive(10, 40_000), "dlq");
    assert_eq!(bodies(&dead), ["dead"]);

    let fresh_ids = send(&queue, &["after".to_owned()], 0).await;
    assert!(fresh_ids.first() > last_id.as_ref(), "ids are never reused");
}

#[test]
fn a_second_process_cannot_open_the_database() {
    let dir = tempdir();
    let _db = open(dir.path());
    assert!(matches!(
        Db::open(dir.path()),
        Err(EmbeddedError::Locked { .. })
    ));
}

#[tokio::test]
async fn documents_are_namespaced_atomic_and_survive_a_reopen() {
    let dir = tempdir();
    {
        let db = open(dir.path());
        let iot = db.documents("iot");
        let other = db.documents("iot-x");
        ok(
            iot.write(
                &[("t\u{1}a", &1_u32), ("t\u{1}b", &2), ("c\u{1}z", &9)],
                &[],
            ),
            "write",
        );
        ok(other.write(&[("t\u{1}a", &100_u32)], &[]), "write");
        ok(
            iot.write(&[("t\u{1}c", &3_u32)], &["t\u{1}b"]),
            "write and remove",
        );
    }
    let db = open(dir.path());
    let iot = db.documents("iot");
    assert_eq!(ok(iot.get::<u32>("t\u{1}a"), "get"), Some(1));
    assert_eq!(ok(iot.get::<u32>("t\u{1}b"), "get"), None);
    let things: Vec<(String, u32)> = ok(iot.scan("t\u{1}"), "scan");
    assert_eq!(
        things,
        vec![("t\u{1}a".to_owned(), 1), ("t\u{1}c".to_owned(), 3)]
    );
    let other: Vec<(String, u32)> = ok(db.documents("iot-x").scan(""), "scan");
    assert_eq!(other, vec![("t\u{1}a".to_owned(), 100)]);
}
