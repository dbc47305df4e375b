//! Scan cursors: what one page of a forward scan leaves for the next page of the same query, so
//! that paging through a group decodes each block once instead of once per page that overlaps it.
//!
//! A cursor holds the part blocks a page decoded in full ("consumed") and those blocks' matches at
//! or beyond the page's resume bound. The next page skips consumed blocks and starts its merge
//! from those matches; everything else (memtable blocks, blocks not reached, blocks whose matches
//! were capped) is read as if there were no cursor. A cursor is only an accelerator: it is used
//! when the request is the same query of the same group at exactly the saved bound and every
//! consumed part is still live (a merge or retention replaced none of them); otherwise, or once
//! evicted (bounded bytes, a few minutes' life), the page is computed from the key alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::scan::CarriedState;
use crate::{EventKey, GroupId};

/// Cursors held at once, whatever their size.
const MAX_CURSORS: usize = 256;
/// How long an unused cursor is kept.
const CURSOR_LIFETIME: Duration = Duration::from_secs(180);

/// One saved page end.
pub(crate) struct ScanCursor {
    /// The caller's fingerprint of the query (pattern, streams, time range).
    pub query: u64,
    pub group_id: GroupId,
    pub state: CarriedState,
}

impl ScanCursor {
    /// Whether this cursor continues exactly this request.
    pub fn continues(&self, query: u64, group_id: GroupId, bound: Option<EventKey>) -> bool {
        self.query == query && self.group_id == group_id && bound == Some(self.state.resume)
    }
}

/// The cursors of recent pages, oldest evicted first when over their byte budget.
pub(crate) struct CursorCache {
    capacity_bytes: usize,
    next_id: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, (Instant, ScanCursor)>,
    bytes: usize,
}

impl CursorCache {
    pub fn new(capacity_bytes: usize) -> CursorCache {
        // Ids start at a per-process value so that a token from before a restart rarely names a
        // cursor of this process (and when it does, the cursor is only used if it continues the
        // very same query at the very same bound, which makes it correct anyway).
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            .rotate_left(17);
        CursorCache { capacity_bytes, next_id: AtomicU64::new(seed | 1), inner: Mutex::new(Inner::default()) }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    /// Removes and returns a cursor (each is used once: the next page saves a new one).
    pub fn take(&self, id: u64) -> Option<ScanCursor> {
        let mut inner = self.inner.lock();
        let (saved_at, cursor) = inner.entries.remove(&id)?;
        inner.bytes -= cursor.state.bytes;
        (saved_at.elapsed() < CURSOR_LIFETIME).then_some(cursor)
    }

    /// Keeps a cursor and returns its id, or None when it is larger than half the budget. Older
    /// cursors make room (expired ones first, then the oldest); the new one always stays.
    pub fn insert(&self, cursor: ScanCursor) -> Option<u64> {
        if cursor.state.bytes > self.capacity_bytes / 2 {
            return None;
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut inner = self.inner.lock();
        let now = Instant::now();
        inner.bytes += cursor.state.bytes;
        inner.entries.insert(id, (now, cursor));
        // Expired first, then the oldest, until within budget.
        let expired: Vec<u64> = inner
            .entries
            .iter()
            .filter(|(_, (t, _))| now.duration_since(*t) >= CURSOR_LIFETIME)
            .map(|(k, _)| *k)
            .collect();
        for k in expired {
            if let Some((_, c)) = inner.entries.remove(&k) {
                inner.bytes -= c.state.bytes;
            }
        }
        while inner.bytes > self.capacity_bytes || inner.entries.len() > MAX_CURSORS {
            let Some(oldest) = inner.entries.iter().min_by_key(|(_, (t, _))| *t).map(|(k, _)| *k) else { break };
            if let Some((_, c)) = inner.entries.remove(&oldest) {
                inner.bytes -= c.state.bytes;
            }
        }
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(bytes: usize) -> ScanCursor {
        ScanCursor { query: 1, group_id: 2, state: CarriedState::empty_for_tests(EventKey::MIN, bytes) }
    }

    #[test]
    fn cursors_are_taken_once() {
        let cache = CursorCache::new(1000);
        let id = cache.insert(cursor(10)).unwrap();
        assert_eq!(cache.bytes(), 10);
        assert!(cache.take(id).is_some());
        assert!(cache.take(id).is_none());
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn the_oldest_go_first_when_over_budget() {
        let cache = CursorCache::new(1000);
        let a = cache.insert(cursor(400)).unwrap();
        let b = cache.insert(cursor(400)).unwrap();
        let c = cache.insert(cursor(400)).unwrap();
        assert!(cache.take(a).is_none(), "evicted");
        assert!(cache.take(b).is_some() && cache.take(c).is_some());
        assert!(cache.insert(cursor(600)).is_none(), "larger than half the budget: not kept");
        assert_eq!(cache.bytes(), 0);
    }

    #[test]
    fn continues_only_the_same_query_group_and_bound() {
        let c = cursor(1);
        assert!(c.continues(1, 2, Some(EventKey::MIN)));
        assert!(!c.continues(9, 2, Some(EventKey::MIN)));
        assert!(!c.continues(1, 9, Some(EventKey::MIN)));
        assert!(!c.continues(1, 2, Some(EventKey::MAX)));
        assert!(!c.continues(1, 2, None));
    }
}
