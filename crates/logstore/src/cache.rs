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
/// The memory of the pages it lets go holds the next pages read. A search over more blooms than
/// the cache holds (W3's 10 GB have 130 MB of them, the cache 32 MiB) reads every page again;
/// with fresh memory for each, which the kernel faults in, clears and later unmaps, that took a
/// quarter of a unique-token search's time.
pub struct BloomPageCache {
    pages: LruCache<Vec<u8>>,
    spare: Mutex<Vec<Vec<u8>>>,
}

/// Pages let go and kept for the next reads, at most (memory beyond the cache's own bound).
const SPARE_BLOOM_PAGES: usize = 4;

impl BloomPageCache {
    pub fn new(capacity_bytes: usize) -> BloomPageCache {
        BloomPageCache { pages: LruCache::new(capacity_bytes), spare: Mutex::new(Vec::new()) }
    }

    /// Bytes held now.
    pub fn bytes(&self) -> usize {
        self.pages.bytes()
    }

    pub fn get(&self, key: Key) -> Option<Arc<Vec<u8>>> {
        self.pages.get(key)
    }

    /// Reads page `key`, `len` bytes, with `read` (into a page let go, when there is one) and
    /// keeps it; `None` when `read` fails. The page is the first `len` bytes of what is returned:
    /// read into the memory of a longer page, it keeps that length (the bytes past `len` are the
    /// other page's, which no reader indexes), so that memory is not zeroed again (a section's
    /// short last page, reused for a full one, had zeroed the rest: 5 % of a rare word's search).
    pub fn read(
        &self,
        key: Key,
        len: usize,
        read: impl FnOnce(&mut [u8]) -> std::io::Result<()>,
    ) -> Option<Arc<Vec<u8>>> {
        let mut page = self.spare.lock().pop().unwrap_or_default();
        if page.len() < len {
            page.resize(len, 0);
        }
        if read(&mut page[..len]).is_err() {
            self.keep_spare(page);
            return None;
        }
        let page = Arc::new(page);
        for let_go in self.pages.insert(key, page.clone()) {
            // Pages another scan still reads are freed when it is done with them.
            if let Ok(memory) = Arc::try_unwrap(let_go) {
                self.keep_spare(memory);
            }
        }
        Some(page)
    }

    fn keep_spare(&self, page: Vec<u8>) {
        let mut spare = self.spare.lock();
        if spare.len() < SPARE_BLOOM_PAGES {
            spare.push(page);
        }
    }
}
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

    /// Keeps `value` (unless it weighs more than a quarter of the cache), and returns the values
    /// evicted to make room for it, for the caller to drop (outside the cache's lock) or reuse.
    pub fn insert(&self, key: Key, value: Arc<V>) -> Vec<Arc<V>> {
        let size = value.weight();
        let mut evicted = Vec::new();
        if size > self.capacity_bytes / 4 {
            return evicted;
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
            if let Some((value, _)) = inner.entries.remove(&victim) {
                inner.bytes -= value.weight();
                evicted.push(value);
            }
        }
        evicted
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

    /// A bloom page the cache lets go holds the next page read, unless a scan still holds it;
    /// every page read holds what its read wrote, whatever page it reuses.
    #[test]
    fn bloom_pages_let_go_hold_the_next_pages_read() {
        let cache = BloomPageCache::new(4 * (100 + 64));
        let fill = |byte: u8| {
            move |page: &mut [u8]| -> std::io::Result<()> {
                page.fill(byte);
                Ok(())
            }
        };
        let first = cache.read((1, 0), 100, fill(1)).unwrap();
        let first_at = first.as_ptr();
        drop(first);
        let second_at = cache.read((1, 1), 100, fill(2)).unwrap().as_ptr();
        for i in 2..4 {
            cache.read((1, i), 100, fill(1 + i as u8)).unwrap();
        }
        // A fifth page evicts the first, whose memory then holds the sixth (shorter: the last
        // page of a section).
        let fifth = cache.read((1, 4), 100, fill(5)).unwrap();
        assert!(cache.get((1, 0)).is_none());
        let sixth = cache.read((1, 5), 60, fill(6)).unwrap();
        assert_eq!(sixth.as_ptr(), first_at, "the evicted page's memory was used again");
        assert_eq!((&sixth[..60], sixth.len()), (&[6u8; 60][..], 100), "read into its start, not cut");
        assert!(cache.get((1, 1)).is_none(), "the sixth evicted the second");
        // A page still held elsewhere when it is let go is not reused: the seventh read evicts
        // the third page (held here), whose bytes stay as they were, and goes into the second's
        // memory (let go, unheld, by the sixth).
        let third = cache.get((1, 2)).unwrap();
        for i in 3..6 {
            cache.get((1, i)).unwrap();
        }
        let seventh = cache.read((1, 6), 100, fill(7)).unwrap();
        assert!(cache.get((1, 2)).is_none());
        assert_eq!(seventh.as_ptr(), second_at);
        assert_eq!((&third[..], &seventh[..], &fifth[..]), (&[3u8; 100][..], &[7u8; 100][..], &[5u8; 100][..]));
        // A failed read keeps nothing.
        assert!(cache.read((1, 7), 100, |_| Err(std::io::Error::other("unreadable"))).is_none());
        assert!(cache.get((1, 7)).is_none());
    }
}
