//! Background merges: when a (group, day) partition has accumulated many parts, the smallest of
//! them are merged into one, stream by stream, with a k-way merge that holds one decoded block per
//! source part. Events of deleted streams and events past retention are dropped on the way. The new
//! part replaces the old ones in one catalog transaction, exactly like a flush: a crash leaves
//! either the old parts or the new one live, never both.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};
use std::path::Path;
use std::sync::Arc;

use crate::block::EventBlock;
use crate::part::{BlockCodec, BlockIndex, BlockSplit, Part, PartWriter};
use crate::{EventKey, GroupId, StoreError, StreamId};

/// When to merge and how much at once.
#[derive(Debug, Clone, Copy)]
pub struct MergePolicy {
    /// A partition with at least this many parts gets merged.
    pub min_parts: usize,
    /// Most parts merged at once.
    pub max_parts: usize,
    /// Most raw bytes merged at once (bigger parts are left as they are).
    pub max_raw_bytes: u64,
}

/// Picks the parts to merge in one partition: the smallest, within the policy's bounds; none
/// when the partition has fewer than `min_parts` or only one would fit.
pub fn choose(parts: &[Arc<Part>], policy: &MergePolicy) -> Vec<Arc<Part>> {
    if parts.len() < policy.min_parts {
        return Vec::new();
    }
    // Only one fits (the smallest alone is taken whatever its size): nothing to merge.
    let chosen = smallest(parts.iter(), policy);
    if chosen.len() < 2 {
        return Vec::new();
    }
    chosen
}

/// The smallest of `parts`, smallest first, as many as one merge takes (at most `max_parts`, at
/// most `max_raw_bytes` together); the smallest is taken whatever its size, so a part too big to
/// merge can still be rewritten on its own.
pub fn smallest<'a>(parts: impl Iterator<Item = &'a Arc<Part>>, policy: &MergePolicy) -> Vec<Arc<Part>> {
    let mut by_size: Vec<&Arc<Part>> = parts.collect();
    by_size.sort_by_key(|p| p.raw_bytes);
    let mut total = 0u64;
    let mut chosen = Vec::new();
    for (i, p) in by_size.into_iter().take(policy.max_parts).enumerate() {
        total = total.saturating_add(p.raw_bytes);
        if i > 0 && total > policy.max_raw_bytes {
            break;
        }
        chosen.push(p.clone());
    }
    chosen
}

/// One source part's blocks of one stream, read block by block.
struct Cursor<'p> {
    part: &'p Part,
    index: &'p BlockIndex,
    blocks: &'p [usize],
    next_block: usize,
    block: Option<EventBlock>,
    pos: usize,
}

impl Cursor<'_> {
    /// Makes the cursor point at a valid event, loading blocks as needed; false at the end.
    fn ready(&mut self) -> Result<bool, StoreError> {
        loop {
            if let Some(b) = &self.block {
                if self.pos < b.len() {
                    return Ok(true);
                }
            }
            let Some(&i) = self.blocks.get(self.next_block) else { return Ok(false) };
            self.next_block += 1;
            self.block = Some(self.part.read_block(i, &self.index[i])?);
            self.pos = 0;
        }
    }

    fn key(&self) -> EventKey {
        self.block.as_ref().map_or(EventKey::MAX, |b| b.key(self.pos))
    }
}

/// Writes the merge of `sources` (one group, one day) as part `id` in `dir`. `live` says which
/// streams still exist; events older than `cutoff` are dropped; blocks are compressed with
/// `codec` (and cut as `split` says, when it is LZ4). Returns None when nothing is left.
#[allow(clippy::too_many_arguments)]
pub fn write_merged(
    dir: &Path,
    id: u64,
    group_id: GroupId,
    day: i64,
    sources: &[Arc<Part>],
    live: &dyn Fn(StreamId) -> bool,
    cutoff: i64,
    codec: BlockCodec,
    split: BlockSplit,
) -> Result<Option<std::path::PathBuf>, StoreError> {
    let indexes: Vec<Arc<BlockIndex>> = sources.iter().map(|p| p.block_index(None)).collect::<Result<_, _>>()?;
    // Per part, the blocks of each stream (already in key order within a part).
    let layouts: Vec<HashMap<StreamId, Vec<usize>>> = indexes
        .iter()
        .map(|index| {
            let mut m: HashMap<StreamId, Vec<usize>> = HashMap::new();
            for (i, b) in index.iter().enumerate() {
                m.entry(b.stream_id).or_default().push(i);
            }
            m
        })
        .collect();
    let streams: BTreeSet<StreamId> = layouts.iter().flat_map(|m| m.keys().copied()).filter(|s| live(*s)).collect();
    let mut writer = PartWriter::create_with_codec(dir, id, group_id, day, codec)?;
    writer.set_block_split(split);
    let mut written = 0usize;
    for stream in streams {
        let mut cursors: Vec<Cursor<'_>> = sources
            .iter()
            .zip(&indexes)
            .zip(&layouts)
            .filter_map(|((part, index), m)| {
                m.get(&stream).map(|blocks| Cursor { part, index, blocks, next_block: 0, block: None, pos: 0 })
            })
            .collect();
        let mut heap = BinaryHeap::new();
        for (i, c) in cursors.iter_mut().enumerate() {
            if c.ready()? {
                heap.push(Reverse((c.key(), i)));
            }
        }
        while let Some(Reverse((key, i))) = heap.pop() {
            let c = &mut cursors[i];
            if key.timestamp >= cutoff {
                let b = c.block.as_ref().expect("a ready cursor has a block");
                writer.push(stream, key, b.ingestion_time(c.pos), b.message(c.pos))?;
                written += 1;
            }
            c.pos += 1;
            if c.ready()? {
                heap.push(Reverse((c.key(), i)));
            }
        }
    }
    if written == 0 {
        drop(writer);
        let _ = std::fs::remove_file(dir.join(format!("{}.tmp", Part::file_name(id))));
        return Ok(None);
    }
    writer.finish().map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(dir: &Path, id: u64, runs: &[(StreamId, &[(i64, u64)])]) -> Arc<Part> {
        let mut w = PartWriter::create(dir, id, 1, 0).unwrap();
        for (stream, events) in runs {
            w.write_stream_run(
                *stream,
                events.iter().map(|(ts, seq)| (EventKey { timestamp: *ts, seq: *seq }, 0, "m")),
            )
            .unwrap();
        }
        Arc::new(Part::open(&w.finish().unwrap(), id).unwrap())
    }

    #[test]
    fn merges_streams_in_key_order_and_drops_the_dead_and_the_expired() {
        let dir = tempfile::tempdir().unwrap();
        let a = part(dir.path(), 1, &[(1, &[(1, 1), (5, 5)]), (2, &[(2, 2)])]);
        let b = part(dir.path(), 2, &[(1, &[(3, 3), (9, 9)]), (3, &[(4, 4)])]);
        let path = write_merged(dir.path(), 3, 1, 0, &[a, b], &|s| s != 3, 2, BlockCodec::Zstd(7), BlockSplit::RECENT)
            .unwrap()
            .unwrap();
        let merged = Part::open(&path, 3).unwrap();
        assert_eq!(merged.codec, BlockCodec::Zstd(7), "the codec is recorded in the footer");
        let mut seen = Vec::new();
        for (i, m) in merged.block_index(None).unwrap().iter().enumerate() {
            let block = merged.read_block(i, m).unwrap();
            for j in 0..block.len() {
                seen.push((m.stream_id, block.key(j).timestamp));
            }
        }
        assert_eq!(seen, vec![(1, 3), (1, 5), (1, 9), (2, 2)], "stream 3 is dead, ts 1 is expired");
    }

    #[test]
    fn chooses_the_smallest_parts_within_bounds() {
        let dir = tempfile::tempdir().unwrap();
        let parts: Vec<_> = (0..5).map(|i| part(dir.path(), 10 + i, &[(1, &[(1, 1)])])).collect();
        let policy = MergePolicy { min_parts: 4, max_parts: 3, max_raw_bytes: u64::MAX };
        assert_eq!(choose(&parts, &policy).len(), 3);
        assert!(choose(&parts[..3], &policy).is_empty());
    }
}
