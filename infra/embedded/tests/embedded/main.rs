//! Integration tests of `hearth-embedded`: the ports' contract suites, queue semantics,
//! durability across reopening and across `SIGKILL`.

mod contract;
mod crash;
mod durability;
mod queue;
mod shadows;

use std::fmt::Display;
use std::path::Path;

use hearth_embedded::Db;
use tempfile::TempDir;

fn ok<T, E: Display>(result: Result<T, E>, what: &str) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!("{what} failed: {e}"),
    }
}

fn tempdir() -> TempDir {
    ok(tempfile::tempdir(), "tempdir")
}

fn open(dir: &Path) -> Db {
    ok(Db::open(dir), "Db::open")
}

/// A fresh database in a new directory (keep the directory alive as long as the database).
fn fresh() -> (TempDir, Db) {
    let dir = tempdir();
    let db = open(dir.path());
    (dir, db)
}
