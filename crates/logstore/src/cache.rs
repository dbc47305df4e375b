//! Bounded caches, least recently used out first, keyed by (part id, number within the part): part
//! ids are never reused within a process, so entries of deleted parts can only age out, never be
//! wrong. `BlockCache` keeps decoded part blocks, so that paging through a group (each page
//! revisits the blocks that straddle its boundary) and polling readers do not decompress the same
//! blocks again and again; `BloomPageCache` keeps pages of parts' bloom sections, so that a scan
//! tests thousands of blocks' blooms with a few reads instead of one read per block;
//! `BlockIndexCache` keeps parts' block indexes (key (part id, 0)), which are not kept with the
//! open parts, so that the memory they take is bounded however much is stored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::block::EventBlock;
use crate::part::{BlockIndex, BlockMeta};

type Key = (u64, u32);

/// Memory a cached value holds, as the cache counts it.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for EventBlock {
    fn weight(&self) -> usize {
        self.raw_bytes() + self.len() * 32 + 64
    }
}

impl Weigh for Vec<u8> {
    fn weight(&self) -> usize {
        self.len() + 64
    }
}

impl Weigh for BlockIndex {
    fn weight(&self) -> usize {
        self.len() * std::mem::size_of::<BlockMeta>() + 64
    }
}

pub struct LruCache<V> {
    capacity_bytes: usize,
    inner: Mutex<Inner<V>>,
}

/// Decoded part blocks by (part id, block index).
pub type BlockCache = LruCache<EventBlock>;
/// Pages of part files' bloom sections by (part id, page number): see `Part::block_may_contain`.
pub type BloomPageCache = LruCache<Vec<u8>>;
/// Parts' block indexes by (part id, 0): see `Part::block_index`.
pub type BlockIndexCache = LruCache<BlockIndex>;

/// What reads keep for the next reads.
pub struct ReadCaches {
    pub blocks: BlockCache,
    pub bloom_pages: BloomPageCache,
    pub block_indexes: BlockIndexCache,
}

struct Inner<V> {
    entries: HashMap<Key, (Arc<V>, u64)>,
    by_age: BTreeMap<u64, Key>,
    tick: u64,
    bytes: usize,
}

impl<V: Weigh> LruCache<V> {
    pub fn new(capacity_bytes: usize) -> LruCache<V> {
        let inner = Inner { entries: HashMap::new(), by_age: BTreeMap::new(), tick: 0, bytes: 0 };
        LruCache { capacity_bytes, inner: Mutex::new(inner) }
    }

    /// Bytes it may hold.
    pub fn capacity(&self) -> usize {
        self.capacity_bytes
    }

    /// Bytes held now (by the same estimate that bounds the cache).
    pub fn bytes(&self) -> usize {
        self.inner.lock().bytes
    }

    pub fn get(&self, key: Key) -> Option<Arc<V>> {
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let (value, age) = inner.entries.get_mut(&key)?;
        let (value, old) = (value.clone(), std::mem::replace(age, tick));
        inner.by_age.remove(&old);
        inner.by_age.insert(tick, key);
        Some(value)
    }

    /// Whether `key` is held (without making it younger).
    pub fn contains(&self, key: Key) -> bool {
        self.inner.lock().entries.contains_key(&key)
    }

    pub fn insert(&self, key: Key, value: Arc<V>) {
        let size = value.weight();
        if size > self.capacity_bytes / 4 {
            return;
        }
        let mut inner = self.inner.lock();
        inner.tick += 1;
        let tick = inner.tick;
        if let Some((old, old_age)) = inner.entries.insert(key, (value, tick)) {
            inner.by_age.remove(&old_age);
            inner.bytes -= old.weight();
        }
        inner.by_age.insert(tick, key);
        inner.bytes += size;
        while inner.bytes > self.capacity_bytes {
            let Some((_, victim)) = inner.by_age.pop_first() else { break };
            if let Some((evicted, _)) = inner.entries.remove(&victim) {
                inner.bytes -= evicted.weight();
            }
        }
    }

    #[cfg(test)]
    fn held_bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::EventKey;

    fn block(n: usize) -> Arc<EventBlock> {
        let mut b = EventBlock::new(1);
        for i in 0..n {
            b.push(EventKey { timestamp: i as i64, seq: i as u64 }, 0, "0123456789");
        }
        Arc::new(b)
    }

    #[test]
    fn evicts_least_recently_used_within_capacity() {
        let cache = BlockCache::new(4 * block(10).weight());
        for i in 0..4 {
            cache.insert((1, i), block(10));
        }
        assert!(cache.get((1, 0)).is_some()); // 0 is now the most recent
        cache.insert((1, 9), block(10));
        assert!(cache.get((1, 1)).is_none(), "the least recently used went first");
        assert!(cache.get((1, 0)).is_some());
        assert!(cache.held_bytes() <= 4 * block(10).weight());
    }
}
