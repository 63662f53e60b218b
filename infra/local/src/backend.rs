//! The backend thread: a single-threaded Tokio runtime of its own for what happens behind the
//! broker's acknowledgement: the ingest log's committers (log → queues, [`crate::glue`]) and the
//! event sources (queues → functions, [`crate::pipeline`]). Blocking work they hand off (the
//! state processor's checkpoint) runs on that runtime's blocking pool.
//!
//! Why not the broker's runtime: a task woken from outside a runtime's worker threads (the
//! fsync thread waking a committer; a committer waking a poller) waits in the runtime's global
//! queue, and with thousands of busy connections on the same runtime that queue is served late.
//! Measured with 4000 publishing connections: each commit's wait for its fsync (1–3 ms) took
//! 500 ms to be noticed, so the committer moved 2,000 msg/s into the queue while the broker
//! acknowledged 60,000, and the functions only caught up once the publishers stopped. On a
//! runtime of its own the backend's wake-ups are served at once, and the operating system
//! shares the cores between the broker's workers and this thread, as it would between IoT Core
//! and a Lambda.
//!
//! One thread: an event source's pollers (`ScalingConfig.MaximumConcurrency`) interleave on it
//! rather than run in parallel, and a storage write that stalls stalls every committer and
//! function with it. Measured, a multi-threaded runtime here (one or two workers) was slower.

use std::thread::JoinHandle;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

/// How long [`Backend::stop`] waits for the thread.
const STOP_WAIT: Duration = Duration::from_secs(10);

/// The running backend thread. Dropping it stops the thread's runtime without waiting for it.
#[derive(Debug)]
pub struct Backend {
    handle: Handle,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Backend {
    /// Starts the thread and its runtime.
    pub fn start() -> std::io::Result<Backend> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("hearth-backend".to_owned())
            .spawn(move || {
                // Runs the spawned tasks until told to stop (or the `Backend` is dropped, which
                // closes the channel); dropping the runtime then cancels what is left.
                let _ = runtime.block_on(stopped);
            })?;
        Ok(Backend {
            handle,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where backend tasks are spawned.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Stops the runtime (tasks still running are cancelled: stop them first) and waits for
    /// its thread (which waits for blocking work in progress) for at most `STOP_WAIT`.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let Some(thread) = self.thread.take() else {
            return;
        };
        // Joining blocks: not on an async worker.
        let joined = tokio::time::timeout(
            STOP_WAIT,
            tokio::task::spawn_blocking(move || thread.join()),
        )
        .await;
        match joined {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(_))) => tracing::error!("the backend thread panicked"),
            Ok(Err(e)) => tracing::error!(error = %e, "could not wait for the backend thread"),
            Err(_) => tracing::error!(
                seconds = STOP_WAIT.as_secs(),
                "the backend thread did not stop in time; leaving it"
            ),
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tasks_run_on_the_backend_thread_and_stop_cancels_the_rest() {
        let backend = match Backend::start() {
            Ok(backend) => backend,
            Err(e) => panic!("backend: {e}"),
        };
        let name = backend
            .handle()
            .spawn(async { std::thread::current().name().map(str::to_owned) })
            .await;
        assert_eq!(name.ok().flatten().as_deref(), Some("hearth-backend"));
        let (_keep, never) = oneshot::channel::<()>();
        let pending = backend.handle().spawn(never);
        backend.stop().await;
        let Err(e) = pending.await else {
            panic!("a task still pending at stop must not complete");
        };
        assert!(e.is_cancelled(), "{e}");
    }
}
