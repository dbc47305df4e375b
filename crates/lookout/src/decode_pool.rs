//! `DecodePool`: threads below the process's priority that turn PutLogEvents bodies into events.
//!
//! Decoding a batch (up to 1 MiB of JSON) is the costliest step of a write that runs outside the
//! store. On the async workers, 32 clients' batches would queue every other request behind them:
//! a GetLogEvents waited for the batches ahead of it to be decoded before its own I/O ran. Here
//! the async workers stay free for every request's I/O, and the scheduler weighs reads (at the
//! process's priority) above decoding (nice [`DECODE_NICE`]), as it already weighs them above
//! flushes. A nice value only weighs the CPU share: decoding still gets a busy machine's slices.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc, Mutex};

/// The nice value of the decoding threads (the store's flusher has the same).
pub const DECODE_NICE: i32 = 5;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of named threads taking jobs from one queue. Dropping the pool ends them once the
/// jobs already queued are done.
#[derive(Clone)]
pub struct DecodePool {
    jobs: mpsc::Sender<Job>,
}

impl DecodePool {
    /// One thread per core.
    pub fn start() -> std::io::Result<DecodePool> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        DecodePool::with_threads(threads, DECODE_NICE)
    }

    pub fn with_threads(threads: usize, nice: i32) -> std::io::Result<DecodePool> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            std::thread::Builder::new().name(format!("ingest-decode-{i}")).spawn(move || {
                // Linux gives each thread its own nice value; failing only costs reads latency.
                if let Err(e) = rustix::process::setpriority_process(None, nice) {
                    tracing::debug!(error = %e, nice, "cannot lower the decoding threads' priority");
                }
                loop {
                    let job = match queue.lock() {
                        Ok(queue) => queue.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    // A panicking job loses its answer (its caller sees `None`), not the thread.
                    if catch_unwind(AssertUnwindSafe(job)).is_err() {
                        tracing::error!("a PutLogEvents decoding job panicked");
                    }
                }
            })?;
        }
        Ok(DecodePool { jobs })
    }

    /// Runs `f` on a pool thread; `None` if it panicked.
    pub async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = answer.send(f());
        });
        self.jobs.send(job).ok()?;
        answered.await.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn jobs_run_on_the_named_threads_and_a_panic_loses_only_its_answer() {
        let pool = DecodePool::with_threads(1, 0).unwrap();
        let name = pool.run(|| std::thread::current().name().map(str::to_owned)).await.unwrap();
        assert_eq!(name.as_deref(), Some("ingest-decode-0"));
        let panicked: Option<()> = pool.run(|| panic!("bad batch")).await;
        assert_eq!(panicked, None);
        // The only thread survived the panic.
        assert_eq!(pool.run(|| 2 + 2).await, Some(4));
        let answers = futures_join_all(&pool).await;
        assert_eq!(answers, (0..50).collect::<Vec<_>>());
    }

    async fn futures_join_all(pool: &DecodePool) -> Vec<i32> {
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let pool = pool.clone();
                tokio::spawn(async move { pool.run(move || i).await })
            })
            .collect();
        let mut out = Vec::new();
        for h in handles {
            out.push(h.await.unwrap().unwrap());
        }
        out
    }
}
