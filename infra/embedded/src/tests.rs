//! Unit tests of the internals the integration tests cannot see.

use crate::Db;
use crate::sync::active_journal;

#[tokio::test]
async fn the_sync_thread_finds_the_active_journal() {
    // The fsync thread syncs fjall's active journal file itself (see `sync`); if fjall's
    // layout changed it would fall back to a locked fsync: catch that here.
    let dir = match tempfile::tempdir() {
        Ok(dir) => dir,
        Err(e) => panic!("tempdir: {e}"),
    };
    let db = match Db::open(dir.path()) {
        Ok(db) => db,
        Err(e) => panic!("open: {e}"),
    };
    match active_journal(db.path()) {
        Ok(Some(_)) => {}
        other => panic!("no active journal in {}: {other:?}", db.path().display()),
    }
    if let Err(e) = db.persist().await {
        panic!("persist: {e}");
    }
}

fn ok<T, E: std::fmt::Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

#[tokio::test]
async fn bodies_beyond_the_memory_budget_are_read_back_from_disk() {
    use crate::{QueueConfig, Received, Redrive};
    use std::time::Duration;

    // 640 KiB of bodies: more than the 64 KiB kept in memory under `cfg(test)`.
    let dir = ok(tempfile::tempdir(), "tempdir");
    let db = ok(Db::open(dir.path()), "open");
    let dlq = ok(db.queue("big-dlq", QueueConfig::default()), "dlq");
    let config = QueueConfig {
        visibility_timeout: Duration::from_millis(10),
        redrive: Some(Redrive {
            dead_letter_queue: "big-dlq".to_owned(),
            max_receive_count: 1,
        }),
        ..QueueConfig::default()
    };
    let queue = ok(db.queue("big", config), "queue");
    let body = |i: usize| format!("{i:04}{}", "x".repeat(8 * 1024));
    for chunk in 0..8 {
        let batch: Vec<String> = (chunk * 10..chunk * 10 + 10).map(body).collect();
        ok(queue.send_batch(&batch, 0).await, "send");
    }
    let check = |got: &[Received], from: usize| {
        let expected: Vec<String> = (from..from + got.len()).map(body).collect();
        let bodies: Vec<&str> = got.iter().map(|m| ok(m.body.to_str(), "utf-8")).collect();
        assert_eq!(bodies, expected);
    };
    let got = ok(queue.receive(80, 1), "receive");
    assert_eq!(got.len(), 80);
    check(&got, 0);
    // Everything moves to the dead-letter queue on its next receive, resident or not.
    assert!(ok(queue.receive(80, 20), "receive").is_empty());
    assert_eq!(dlq.approximate_len(), 80);
    let dead = ok(dlq.receive(40, 20), "dlq");
    check(&dead, 0);
    let receipts: Vec<_> = dead.iter().map(|m| m.receipt).collect();
    assert_eq!(ok(dlq.delete(&receipts), "delete"), 40);
    drop((queue, dlq, db));

    let db = ok(Db::open(dir.path()), "reopen");
    let dlq = ok(db.queue("big-dlq", QueueConfig::default()), "dlq");
    let rest = ok(dlq.receive(80, 30), "dlq after reopen");
    check(&rest, 40);
}

#[tokio::test]
async fn the_state_cache_evicts_and_always_agrees_with_the_database() {
    use hearth_domain::device::DeviceId;
    use hearth_domain::ingest::{Parsed, parse};
    use hearth_ports::StateStore;

    // 2 cached projections per stripe under `cfg(test)`: 2,000 devices over 256 stripes evict
    // constantly, so updates land both on cached and on evicted (re-read) projections.
    let dir = ok(tempfile::tempdir(), "tempdir");
    let db = ok(Db::open(dir.path()), "open");
    let store = db.state_store();
    let update = |thing: &str, seq: u64| {
        let envelope = format!(
            r#"{{"thing":"{thing}","topic":"dt/p/{thing}/telemetry","received_at":{seq},"seq":{seq}}}"#
        );
        match ok(parse(&envelope), "envelope") {
            Parsed::Message(message) => message.to_update(),
            Parsed::Ignored(why) => panic!("ignored: {why}"),
        }
    };
    let id = |n: usize| ok(DeviceId::parse(format!("dev-{n}")), "id");
    for round in 1..=3_u64 {
        for n in 0..2_000 {
            ok(
                store
                    .apply(&id(n), &update(&format!("dev-{n}"), round))
                    .await,
                "apply",
            );
        }
    }
    // An older message changes nothing, cached or not.
    ok(store.apply(&id(7), &update("dev-7", 1)).await, "apply");
    let seq = |state: Option<hearth_domain::projection::DeviceState>| {
        state
            .and_then(|s| s.telemetry)
            .and_then(|t| t.payload.get("seq").and_then(|v| v.as_u64()))
    };
    for n in [0, 7, 999, 1_999] {
        assert_eq!(
            seq(ok(store.get_state(&id(n)).await, "get")),
            Some(3),
            "dev-{n}"
        );
    }
    drop((store, db));
    // What the database holds (no cache after reopening) is the same.
    let db = ok(Db::open(dir.path()), "reopen");
    let store = db.state_store();
    for n in 0..2_000 {
        assert_eq!(
            seq(ok(store.get_state(&id(n)).await, "get")),
            Some(3),
            "dev-{n}"
        );
    }
}
