//! Queue throughput with fsync on (every acknowledged send is durable), on a fresh database in
//! a temporary directory:
//!
//! ```text
//! cargo run --release -p hearth-embedded --example queue_bench -- [messages=400000] [senders=8]
//!     [batch=100] [size=240] [consumers=2] [single=256]
//! ```
//!
//! 1. `send`: `senders` tasks send batches of `batch` messages of `size` bytes (then the
//!    database is closed and reopened with that backlog);
//! 2. `receive+delete`: `consumers` tasks receive 100 at a time and delete them;
//! 3. `send, 1 per call`: `single` tasks each send one message per call (a broker acknowledging
//!    each QoS 1 PUBLISH on its own): group commit is all that batches them;
//! 4. `pipeline`: senders and consumers at once, the consumers also writing each batch's devices'
//!    state (one `StateStore::apply` per device and batch, as the state processor does).

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hearth_domain::device::DeviceId;
use hearth_domain::projection::DeviceState;
use hearth_embedded::{Db, Queue, QueueConfig, now_ms};
use hearth_ports::StateStore;

#[derive(Debug, Clone, Copy)]
struct Args {
    messages: usize,
    senders: usize,
    batch: usize,
    size: usize,
    consumers: usize,
    single: usize,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        messages: 400_000,
        senders: 8,
        batch: 100,
        size: 240,
        consumers: 2,
        single: 256,
    };
    for arg in std::env::args().skip(1) {
        let (key, value) = arg
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {arg:?}"))?;
        let value: usize = value.parse().map_err(|e| format!("{key}: {e}"))?;
        match key {
            "messages" => args.messages = value,
            "senders" => args.senders = value.max(1),
            "batch" => args.batch = value.max(1),
            "size" => args.size = value,
            "consumers" => args.consumers = value.max(1),
            "single" => args.single = value.max(1),
            _ => return Err(format!("unknown argument {key}")),
        }
    }
    Ok(args)
}

/// The process's resident memory (Linux), in MiB.
fn rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn report(
    what: &str,
    messages: usize,
    elapsed: Duration,
) -> Result<(), Box<dyn std::error::Error>> {
    let rate = messages as f64 / elapsed.as_secs_f64();
    let rss = rss_mib().map_or_else(|| "?".to_owned(), |m| m.to_string());
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{what:<32} {messages:>9} messages in {:>7.3} s: {rate:>8.0} messages/s (RSS {rss} MiB)",
        elapsed.as_secs_f64()
    )?;
    Ok(())
}

fn body(i: usize, size: usize) -> String {
    let mut body = format!("{{\"thing\":\"dev-{}\",\"seq\":{i},\"pad\":\"", i % 10_000);
    while body.len() + 2 < size {
        body.push('x');
    }
    body.push_str("\"}");
    body
}

/// `senders` tasks share `messages`, `batch` per call.
async fn send_all(queue: &Queue, args: Args, senders: usize, batch: usize) -> Result<(), String> {
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..senders)
        .map(|_| {
            let queue = queue.clone();
            let next = Arc::clone(&next);
            tokio::spawn(async move {
                loop {
                    let start = next.fetch_add(batch, Ordering::Relaxed);
                    if start >= args.messages {
                        return Ok::<(), String>(());
                    }
                    let end = (start + batch).min(args.messages);
                    let bodies: Vec<String> = (start..end).map(|i| body(i, args.size)).collect();
                    queue
                        .send_batch(&bodies, now_ms())
                        .await
                        .map_err(|e| e.to_string())?;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

/// `consumers` tasks receive and delete until `total` messages are gone; with `store`, each
/// batch's devices are written once each.
async fn consume_all(
    queue: &Queue,
    consumers: usize,
    total: usize,
    store: Option<Arc<dyn StateStore>>,
) -> Result<(), String> {
    let done = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..consumers)
        .map(|_| {
            let queue = queue.clone();
            let done = Arc::clone(&done);
            let store = store.clone();
            tokio::spawn(async move {
                while done.load(Ordering::Relaxed) < total {
                    let now = now_ms();
                    let batch = queue.receive(100, now).map_err(|e| e.to_string())?;
                    if batch.is_empty() {
                        queue.wait(Duration::from_millis(20)).await;
                        continue;
                    }
                    if let Some(store) = &store {
                        let mut devices: HashMap<&str, u64> = HashMap::new();
                        for m in &batch {
                            let text = m.body.to_str().map_err(|e| e.to_string())?;
                            let thing = text
                                .get(10..)
                                .and_then(|t| t.split('"').next())
                                .unwrap_or("unknown");
                            devices.insert(thing, m.sent_at);
                        }
                        for (thing, seen) in devices {
                            let thing = DeviceId::parse(thing).map_err(|e| e.to_string())?;
                            let update = DeviceState {
                                last_seen: Some(seen),
                                ..DeviceState::default()
                            };
                            store
                                .apply(&thing, &update)
                                .await
                                .map_err(|e| e.to_string())?;
                        }
                    }
                    let receipts: Vec<_> = batch.iter().map(|m| m.receipt).collect();
                    let deleted = queue.delete(&receipts).map_err(|e| e.to_string())?;
                    done.fetch_add(deleted, Ordering::Relaxed);
                }
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "{args:?}, fsync on every acknowledged send, 2 runtime threads"
        )?;
    }
    runtime.block_on(async {
        let db = Db::open(dir.path())?;
        let queue = db.queue("bench", QueueConfig::default())?;
        let started = Instant::now();
        send_all(&queue, args, args.senders, args.batch).await?;
        report(
            &format!("send ({}x batch {})", args.senders, args.batch),
            args.messages,
            started.elapsed(),
        )?;

        drop((queue, db));
        let started = Instant::now();
        let db = Db::open(dir.path())?;
        let queue = db.queue("bench", QueueConfig::default())?;
        report(
            "reopen with that backlog",
            queue.approximate_len(),
            started.elapsed(),
        )?;

        let started = Instant::now();
        consume_all(&queue, args.consumers, args.messages, None).await?;
        report("receive+delete (100)", args.messages, started.elapsed())?;

        let single = Args {
            messages: args.messages / 4,
            ..args
        };
        let started = Instant::now();
        send_all(&queue, single, args.single, 1).await?;
        report(
            &format!("send, 1 per call ({}x)", args.single),
            single.messages,
            started.elapsed(),
        )?;
        consume_all(&queue, args.consumers, single.messages, None).await?;

        let pipeline = db.queue("pipeline", QueueConfig::default())?;
        let store: Arc<dyn StateStore> = Arc::new(db.state_store());
        let started = Instant::now();
        let (sent, consumed) = tokio::join!(
            send_all(&pipeline, args, args.senders, args.batch),
            consume_all(&pipeline, args.consumers, args.messages, Some(store)),
        );
        sent?;
        consumed?;
        report(
            "pipeline (send+recv+state+del)",
            args.messages,
            started.elapsed(),
        )?;
        Ok::<(), Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
