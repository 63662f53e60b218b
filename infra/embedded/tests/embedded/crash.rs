//! A real crash: a child process (this test binary, re-executed) sends batches from several
//! tasks and prints each acknowledged batch; the parent SIGKILLs it mid-stream, reopens the
//! database and finds every acknowledged message, body intact. Three rounds on one database.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use hearth_embedded::{Db, MessageId, Queue, QueueConfig};

use crate::ok;

const CHILD: &str = "HEARTH_EMBEDDED_CRASH_CHILD";
const SENDERS: usize = 4;
const BATCH: usize = 50;

fn queue(db: &Db) -> Queue {
    ok(db.queue("crash", QueueConfig::default()), "queue")
}

fn body(round: usize, sender: usize, batch: usize, i: usize) -> String {
    format!("r{round}-s{sender}-b{batch}-{i}-{}", "x".repeat(180))
}

/// The child (this test re-executed with `CHILD` set to the database directory): sends until
/// killed.
fn crash_child(dir: &str) {
    let round: usize = ok(
        ok(std::env::var("HEARTH_EMBEDDED_CRASH_ROUND"), "round").parse(),
        "round",
    );
    let runtime = ok(
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build(),
        "runtime",
    );
    runtime.block_on(async move {
        let db = ok(Db::open(dir), "open");
        let queue = queue(&db);
        let senders = (0..SENDERS).map(|s| {
            let queue = queue.clone();
            tokio::spawn(async move {
                for b in 0.. {
                    let bodies: Vec<String> = (0..BATCH).map(|i| body(round, s, b, i)).collect();
                    let ids = ok(queue.send_batch(&bodies, 0).await, "send");
                    let line = format!("ack {s} {b} {} {}\n", ids[0], ids.len());
                    let mut out = std::io::stdout().lock();
                    ok(
                        out.write_all(line.as_bytes()).and_then(|()| out.flush()),
                        "print",
                    );
                }
            })
        });
        for sender in senders {
            ok(sender.await, "sender");
        }
    });
}

struct Ack {
    round: usize,
    sender: usize,
    batch: usize,
    first: MessageId,
    count: usize,
}

fn parse(line: &str, round: usize) -> Option<Ack> {
    let mut parts = line.strip_prefix("ack ")?.split_whitespace();
    Some(Ack {
        round,
        sender: parts.next()?.parse().ok()?,
        batch: parts.next()?.parse().ok()?,
        first: parts.next()?.parse().ok()?,
        count: parts.next()?.parse().ok()?,
    })
}

#[test]
fn acknowledged_sends_survive_sigkill() {
    if let Ok(dir) = std::env::var(CHILD) {
        crash_child(&dir);
        return;
    }
    let dir = crate::tempdir();
    let exe = ok(std::env::current_exe(), "current_exe");
    let mut acked: Vec<Ack> = Vec::new();
    for round in 0..3 {
        let mut child = ok(
            Command::new(&exe)
                .args([
                    "crash::acknowledged_sends_survive_sigkill",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD, dir.path())
                .env("HEARTH_EMBEDDED_CRASH_ROUND", round.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn(),
            "spawn child",
        );
        let Some(stdout) = child.stdout.take() else {
            panic!("no stdout");
        };
        let (lines, received) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut stdout = BufReader::new(stdout);
            let mut line = String::new();
            // Only complete lines: a line cut by the kill was never fully acknowledged.
            while stdout.read_line(&mut line).is_ok_and(|n| n > 0) {
                if line.ends_with('\n') && lines.send(line.clone()).is_err() {
                    break;
                }
                line.clear();
            }
        });
        let wanted = 20 + 15 * round;
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut round_acks = 0;
        while round_acks < wanted {
            let left = deadline.saturating_duration_since(Instant::now());
            match received.recv_timeout(left) {
                Ok(line) => {
                    if let Some(ack) = parse(&line, round) {
                        acked.push(ack);
                        round_acks += 1;
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    panic!("round {round}: child stopped acknowledging after {round_acks}: {e}");
                }
            }
        }
        ok(child.kill(), "SIGKILL");
        ok(child.wait(), "wait");
        ok(reader.join().map_err(|_| "reader panicked"), "reader");
        acked.extend(received.try_iter().filter_map(|l| parse(&l, round)));

        let db = crate::open(dir.path());
        let stored: HashMap<MessageId, String> = ok(queue(&db).receive(usize::MAX, 1), "receive")
            .into_iter()
            .map(|m| (m.message_id, ok(m.body.to_str(), "utf-8").to_owned()))
            .collect();
        let mut checked = 0;
        for ack in &acked {
            for i in 0..ack.count {
                let id: MessageId =
                    ok(format!("{:016x}", ack.first.get() + i as u64).parse(), "id");
                assert_eq!(
                    stored.get(&id),
                    Some(&body(ack.round, ack.sender, ack.batch, i)),
                    "round {round}: acknowledged message {id} lost"
                );
                checked += 1;
            }
        }
        assert!(
            checked >= (wanted) * BATCH,
            "round {round}: only {checked} checked"
        );
    }
}
