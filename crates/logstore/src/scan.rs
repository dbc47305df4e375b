//! The scan: merges candidate blocks (from parts and memtables) into one key-ordered page without
//! reading more than it must. Blocks are visited in order of their smallest key (largest, when
//! reading backward); an event is emitted once no unvisited block can hold a smaller key (the
//! "watermark"), so a page stops as soon as it is full and the resume bound is exact.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use crate::block::EventBlock;
use crate::part::Part;
use crate::{Direction, EventKey, ScanPage, ScanRequest, StoreError, StoredEvent, StreamId};

pub enum BlockSource {
    Part(Arc<Part>, usize),
    Memory(Arc<EventBlock>),
}

pub struct Candidate {
    pub min: EventKey,
    pub max: EventKey,
    pub source: BlockSource,
}

impl Candidate {
    fn load(&self) -> Result<(Arc<EventBlock>, u64), StoreError> {
        match &self.source {
            BlockSource::Part(part, i) => {
                let block = part.read_block(*i)?;
                let raw = block.raw_bytes() as u64;
                Ok((Arc::new(block), raw))
            }
            BlockSource::Memory(block) => {
                let raw = block.raw_bytes() as u64;
                if block.is_sorted() {
                    Ok((block.clone(), raw))
                } else {
                    Ok((Arc::new((**block).clone().into_sorted()), raw))
                }
            }
        }
    }
}

/// The resolved bounds of a scan.
pub struct Bounds {
    /// Inclusive lower timestamp (start time, or the retention cut-off if later).
    pub low_ts: i64,
    /// Exclusive upper timestamp.
    pub high_ts: i64,
}

impl Bounds {
    /// Forward scans read keys >= this.
    pub fn lower_key(&self, req: &ScanRequest<'_>) -> EventKey {
        let start = EventKey { timestamp: self.low_ts, seq: 0 };
        match (req.direction, req.bound) {
            (Direction::Forward, Some(b)) => b.max(start),
            _ => start,
        }
    }

    /// Backward scans read keys < this.
    pub fn upper_key(&self, req: &ScanRequest<'_>) -> EventKey {
        let end = EventKey { timestamp: self.high_ts, seq: 0 };
        match (req.direction, req.bound) {
            (Direction::Backward, Some(b)) => b.min(end),
            _ => end,
        }
    }

    /// Whether a block with this key range can hold an event of the scan.
    pub fn overlaps(&self, req: &ScanRequest<'_>, min: EventKey, max: EventKey) -> bool {
        if max.timestamp < self.low_ts || min.timestamp >= self.high_ts {
            return false;
        }
        match req.direction {
            Direction::Forward => max >= self.lower_key(req),
            Direction::Backward => min < self.upper_key(req),
        }
    }
}

struct Pending {
    key: EventKey,
    stream_id: StreamId,
    ingestion_time: i64,
    message: String,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

/// Fills a page under the request's limits.
struct PageBuilder<'r, 'a> {
    req: &'r ScanRequest<'a>,
    names: &'r HashMap<StreamId, Arc<str>>,
    events: Vec<StoredEvent>,
    bytes: usize,
}

impl PageBuilder<'_, '_> {
    /// Adds the event, or returns false when the page is full (the event is not added).
    fn push(&mut self, p: Pending) -> bool {
        if self.events.len() >= self.req.limit {
            return false;
        }
        let name = self.names.get(&p.stream_id).cloned().unwrap_or_else(|| Arc::from(""));
        let cost = (self.req.event_cost)(&name, &p.message);
        if !self.events.is_empty() && self.bytes + cost > self.req.max_bytes {
            return false;
        }
        self.bytes += cost;
        self.events.push(StoredEvent {
            stream_name: name,
            key: p.key,
            ingestion_time: p.ingestion_time,
            message: p.message,
        });
        true
    }
}

pub fn run(
    req: &ScanRequest<'_>,
    bounds: &Bounds,
    names: &HashMap<StreamId, Arc<str>>,
    mut candidates: Vec<Candidate>,
) -> Result<ScanPage, StoreError> {
    let mut page = PageBuilder { req, names, events: Vec::new(), bytes: 0 };
    let mut scanned = 0u64;
    let matches = |msg: &str| req.predicate.is_none_or(|p| p(msg));
    match req.direction {
        Direction::Forward => {
            let lower = bounds.lower_key(req);
            candidates.sort_by_key(|c| c.min);
            let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
            for i in 0..candidates.len() {
                let (block, raw) = candidates[i].load()?;
                scanned += raw;
                let start = block.keys().partition_point(|k| *k < lower);
                for j in start..block.len() {
                    let key = block.key(j);
                    if key.timestamp >= bounds.high_ts {
                        break;
                    }
                    let msg = block.message(j);
                    if matches(msg) {
                        heap.push(Reverse(Pending {
                            key,
                            stream_id: block.stream_id,
                            ingestion_time: block.ingestion_time(j),
                            message: msg.to_owned(),
                        }));
                    }
                }
                let watermark = candidates.get(i + 1).map_or(EventKey::MAX, |c| c.min);
                while heap.peek().is_some_and(|p| p.0.key < watermark) {
                    let Reverse(p) = heap.pop().expect("peeked");
                    let key = p.key;
                    if !page.push(p) {
                        return Ok(ScanPage { events: page.events, resume: Some(key), scanned_bytes: scanned });
                    }
                }
                if scanned >= req.scan_budget_bytes && i + 1 < candidates.len() && watermark > lower {
                    return Ok(ScanPage { events: page.events, resume: Some(watermark), scanned_bytes: scanned });
                }
            }
            while let Some(Reverse(p)) = heap.pop() {
                let key = p.key;
                if !page.push(p) {
                    return Ok(ScanPage { events: page.events, resume: Some(key), scanned_bytes: scanned });
                }
            }
        }
        Direction::Backward => {
            let upper = bounds.upper_key(req);
            candidates.sort_by_key(|c| Reverse(c.max));
            let mut heap: BinaryHeap<Pending> = BinaryHeap::new();
            let finish = |mut events: Vec<StoredEvent>, resume: Option<EventKey>, scanned: u64| {
                events.reverse();
                Ok(ScanPage { events, resume, scanned_bytes: scanned })
            };
            for i in 0..candidates.len() {
                let (block, raw) = candidates[i].load()?;
                scanned += raw;
                let end = block.keys().partition_point(|k| *k < upper);
                for j in (0..end).rev() {
                    let key = block.key(j);
                    if key.timestamp < bounds.low_ts {
                        break;
                    }
                    let msg = block.message(j);
                    if matches(msg) {
                        heap.push(Pending {
                            key,
                            stream_id: block.stream_id,
                            ingestion_time: block.ingestion_time(j),
                            message: msg.to_owned(),
                        });
                    }
                }
                let watermark = candidates.get(i + 1).map_or(EventKey::MIN, |c| c.max);
                while heap.peek().is_some_and(|p| p.key > watermark) {
                    let p = heap.pop().expect("peeked");
                    let key = p.key;
                    if !page.push(p) {
                        return finish(page.events, Some(key.successor()), scanned);
                    }
                }
                if scanned >= req.scan_budget_bytes && i + 1 < candidates.len() && watermark.successor() < upper {
                    return finish(page.events, Some(watermark.successor()), scanned);
                }
            }
            while let Some(p) = heap.pop() {
                let key = p.key;
                if !page.push(p) {
                    return finish(page.events, Some(key.successor()), scanned);
                }
            }
            return finish(page.events, None, scanned);
        }
    }
    Ok(ScanPage { events: page.events, resume: None, scanned_bytes: scanned })
}
