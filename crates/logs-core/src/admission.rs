//! Admission of PutLogEvents batches: when the store is behind (its flusher or its group commit
//! cannot keep up), a request waits a little for room instead of being refused at once, and one
//! that cannot get room is refused before its body is decoded. Both save work: a refused batch is
//! sent again by its client, and decoding it first would spend CPU the flusher needs.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use lookout_logstore::LogStore;

use crate::LogsError;

/// How long a batch may wait for room, and how many bytes of batches may wait at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionPolicy {
    /// Longest a batch waits for the store's room before ThrottlingException.
    pub patience: Duration,
    /// Request bytes that may wait at once (they hold their bodies); beyond, ThrottlingException
    /// without waiting.
    pub max_waiting_bytes: usize,
}

impl Default for AdmissionPolicy {
    fn default() -> Self {
        // A flush of a full memtable takes about a second on a busy machine; clients time out
        // requests after tens of seconds.
        AdmissionPolicy { patience: Duration::from_secs(2), max_waiting_bytes: 64 << 20 }
    }
}

/// Throttling as AWS words it (clients retry it).
pub(crate) fn throttled() -> LogsError {
    LogsError::Throttling("Rate exceeded".into())
}

/// The requests waiting for room, and what admission did since start (for `/metrics`).
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    /// Bytes of requests waiting now.
    bytes: AtomicUsize,
    /// Batches that found no room and waited.
    waited: AtomicU64,
    /// Batches answered ThrottlingException.
    throttled: AtomicU64,
}

/// Batches that found no room since start: how many waited, and how many were then throttled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AdmissionCounts {
    pub waited: u64,
    pub throttled: u64,
}

impl Waiting {
    pub(crate) fn counts(&self) -> AdmissionCounts {
        AdmissionCounts {
            waited: self.waited.load(Ordering::Relaxed),
            throttled: self.throttled.load(Ordering::Relaxed),
        }
    }
}

/// A request's share of `Waiting`, given back when it stops waiting.
struct WaitingShare<'a> {
    waiting: &'a Waiting,
    bytes: usize,
}

impl Drop for WaitingShare<'_> {
    fn drop(&mut self) {
        self.waiting.bytes.fetch_sub(self.bytes, Ordering::Relaxed);
    }
}

/// Returns once `store` has room for `bytes` more, or ThrottlingException after the policy's
/// patience (or at once when too many bytes already wait).
pub(crate) async fn admit(
    store: &dyn LogStore,
    policy: &AdmissionPolicy,
    waiting: &Waiting,
    bytes: usize,
) -> Result<(), LogsError> {
    if store.has_room(bytes) {
        return Ok(());
    }
    let _share = WaitingShare { waiting, bytes };
    if waiting.bytes.fetch_add(bytes, Ordering::Relaxed) + bytes > policy.max_waiting_bytes {
        waiting.throttled.fetch_add(1, Ordering::Relaxed);
        return Err(throttled());
    }
    waiting.waited.fetch_add(1, Ordering::Relaxed);
    let deadline = tokio::time::Instant::now() + policy.patience;
    loop {
        // Registered before the check, so that room freed between the check and the wait
        // still wakes this request.
        let freed = store.room_freed().notified();
        let mut freed = std::pin::pin!(freed);
        freed.as_mut().enable();
        if store.has_room(bytes) {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, freed).await.is_err() {
            waiting.throttled.fetch_add(1, Ordering::Relaxed);
            return Err(throttled());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use lookout_logstore::testsuite::{stall_flushes, StalledFlushes};
    use lookout_logstore::{EmbeddedStore, LogStore, StoreConfig};

    use super::*;

    /// A real store whose flusher is stalled (until the guard is dropped) and that is over its
    /// unflushed limit (200 bytes acknowledged, 100 allowed).
    fn store_without_room(dir: &std::path::Path) -> (Arc<EmbeddedStore>, StalledFlushes) {
        let mut config = StoreConfig::new(dir);
        config.max_unflushed_bytes = 100;
        let store = Arc::new(EmbeddedStore::open(config).unwrap());
        lookout_logstore::testsuite::group(store.as_ref(), "g");
        store.create_stream("g", "s", 0).unwrap();
        let stalled = stall_flushes(dir);
        let t = lookout_logstore::testsuite::now_ms();
        store
            .append("g", "s", crate::EventBatch::from(vec![(t, "x".repeat(200))]), t)
            .unwrap()
            .blocking_recv()
            .unwrap()
            .unwrap();
        assert!(!store.has_room(10));
        (store, stalled)
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
    }

    const PATIENT: AdmissionPolicy = AdmissionPolicy { patience: Duration::from_secs(60), max_waiting_bytes: 1000 };

    #[test]
    fn a_store_with_room_admits_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap();
        let waiting = Waiting::default();
        runtime().block_on(admit(&store, &PATIENT, &waiting, 10)).unwrap();
        assert_eq!(waiting.counts(), AdmissionCounts::default());
    }

    #[test]
    fn a_batch_waits_until_a_flush_makes_room() {
        let dir = tempfile::tempdir().unwrap();
        let (store, stalled) = store_without_room(dir.path());
        let unstalled = Arc::new(AtomicBool::new(false));
        let unstaller = {
            let unstalled = unstalled.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                unstalled.store(true, Ordering::SeqCst);
                drop(stalled); // the flusher's next retry succeeds
            })
        };
        let waiting = Waiting::default();
        runtime().block_on(admit(store.as_ref(), &PATIENT, &waiting, 10)).unwrap();
        // Admitted only once the retried flush had freed the room.
        assert!(unstalled.load(Ordering::SeqCst));
        assert!(store.has_room(10));
        unstaller.join().unwrap();
        assert_eq!(waiting.bytes.load(Ordering::SeqCst), 0, "the waiting share is given back");
        assert_eq!(waiting.counts(), AdmissionCounts { waited: 1, throttled: 0 });
    }

    #[test]
    fn a_batch_is_throttled_when_its_patience_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _stalled) = store_without_room(dir.path());
        let policy = AdmissionPolicy { patience: Duration::from_millis(50), ..PATIENT };
        let waiting = Waiting::default();
        let got = runtime().block_on(admit(store.as_ref(), &policy, &waiting, 10));
        assert_eq!(got, Err(LogsError::Throttling("Rate exceeded".into())));
        assert_eq!(waiting.bytes.load(Ordering::SeqCst), 0);
        assert_eq!(waiting.counts(), AdmissionCounts { waited: 1, throttled: 1 });
    }

    #[test]
    fn a_batch_is_throttled_at_once_when_too_many_bytes_wait() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _stalled) = store_without_room(dir.path());
        let waiting = Waiting::default();
        waiting.bytes.store(900, Ordering::SeqCst); // others wait already
        let rt = runtime();
        // Patience is a minute: only the bound on waiting bytes can end this quickly.
        let got = rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(30), admit(store.as_ref(), &PATIENT, &waiting, 101)).await
        });
        assert_eq!(got, Ok(Err(LogsError::Throttling("Rate exceeded".into()))));
        assert_eq!(waiting.bytes.load(Ordering::SeqCst), 900);
        assert_eq!(waiting.counts(), AdmissionCounts { waited: 0, throttled: 1 });
    }
}
