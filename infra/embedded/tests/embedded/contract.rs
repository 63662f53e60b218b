//! The ports' contract suites on the embedded adapters.

use hearth_ports::contract;

use crate::{fresh, ok};

#[tokio::test]
async fn state_store_passes_the_contract() {
    let (_dir, db) = fresh();
    contract::state_store(&db.state_store(), "emb").await;
}

#[tokio::test]
async fn state_store_with_deferred_writes_passes_the_contract() {
    let (_dir, db) = fresh();
    let store = db.deferred_state_store();
    contract::state_store(&store, "deferred").await;
    // What it deferred is then written by a checkpoint.
    assert!(ok(store.checkpoint(), "checkpoint") > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_store_passes_the_contract_on_a_multi_threaded_runtime() {
    let (_dir, db) = fresh();
    let store = db.state_store();
    let runs = (0..4).map(|i| {
        let store = store.clone();
        tokio::spawn(async move { contract::state_store(&store, &format!("mt{i}")).await })
    });
    for run in runs {
        ok(run.await, "contract run");
    }
}

#[tokio::test]
async fn registry_passes_the_contract() {
    let (_dir, db) = fresh();
    contract::registry(&db.registry(), "emb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_passes_the_contract() {
    let (dir, db) = fresh();
    let registry = db.registry();
    contract::enrollment(&registry, &registry, "emb", contract::Races::Concurrent).await;
    // The claim index and serials survive a reopen: a released device is claimable again.
    drop((registry, db));
    let db = match hearth_embedded::Db::open(dir.path()) {
        Ok(db) => db,
        Err(e) => panic!("reopen: {e}"),
    };
    let registry = db.registry();
    contract::enrollment_after_reopen(&registry, &registry, "emb").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invitations_pass_the_contract() {
    let (_dir, db) = fresh();
    let registry = db.registry();
    contract::invitations(&registry, &registry, "emb", contract::Races::Concurrent).await;
}

#[tokio::test]
async fn registry_and_state_are_separate() {
    let (_dir, db) = fresh();
    contract::registry_and_state_are_separate(&db.registry(), &db.state_store(), "emb").await;
}

#[tokio::test]
async fn dead_letters_pass_the_contract() {
    let (_dir, db) = fresh();
    let sink = db.dead_letters();
    let sent = contract::dead_letters(&sink).await;
    assert_eq!(ok(sink.letters(), "letters"), sent);
}
