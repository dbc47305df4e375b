//! Blocking store work (catalog commits, scans) run from async handlers without holding up the
//! runtime; the logs API, the console and `/metrics` all go through [`run`].
//!
//! On the multi-threaded runtime the work runs on the worker that took the request, after the
//! worker hands its other tasks to another thread (`block_in_place`): a read then waits for no
//! blocking-pool thread to wake up, which on two cores busy with an ingest took up to ~8 ms
//! (GetLogEvents during W1, p90 8.0–9.8 → 5.0–7.2 ms). On a current-thread runtime, where
//! `block_in_place` is not allowed, it goes to the blocking pool.

use std::panic::{catch_unwind, AssertUnwindSafe};

use tokio::runtime::{Handle, RuntimeFlavor};

/// Runs `f` off the async runtime's schedule; `Err` holds a panic's payload (or, when the
/// runtime shut down under it, why the work did not run).
pub async fn run<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> std::thread::Result<T> {
    if Handle::current().runtime_flavor() == RuntimeFlavor::MultiThread {
        return tokio::task::block_in_place(|| catch_unwind(AssertUnwindSafe(f)));
    }
    tokio::task::spawn_blocking(f).await.map_err(|e| e.try_into_panic().unwrap_or_else(|e| Box::new(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn runs_in_place_on_a_multi_threaded_runtime_and_catches_a_panic() {
        let here = std::thread::current().id();
        assert!(run(move || std::thread::current().id() == here).await.unwrap(), "ran on the worker itself");
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn goes_to_the_blocking_pool_on_a_current_thread_runtime() {
        let here = std::thread::current().id();
        assert!(!run(move || std::thread::current().id() == here).await.unwrap(), "ran on a pool thread");
        assert!(run(|| -> u8 { panic!("boom") }).await.is_err());
    }
}
