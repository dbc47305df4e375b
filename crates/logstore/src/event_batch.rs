//! `EventBatch`: the events of one append, as PutLogEvents carries them: a timestamp and a message
//! each, the messages one after the other in one buffer. The write path (decode, validate, WAL,
//! memtable) then allocates per batch, never per event: a `String` per event cost one allocation
//! on a decoder thread and one free on the writer thread, which is serial.

use std::ops::Range;

/// Timestamps and messages, in order. Built by [`EventBatch::push`], from `(timestamp, message)`
/// pairs, or by a decoder that writes the messages into one buffer ([`EventBatch::from_parts`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    timestamps: Vec<i64>,
    /// Where each message starts in `text`, then where the last one ends: message `i` is
    /// `text[bounds[i]..bounds[i + 1]]`.
    bounds: Vec<usize>,
    text: String,
}

impl Default for EventBatch {
    fn default() -> EventBatch {
        EventBatch::with_capacity(0, 0)
    }
}

/// Why [`EventBatch::from_parts`] refused its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPartsError {
    /// Not one bound more than timestamps.
    CountMismatch,
    /// The bounds do not start at 0, go back, or do not end where the text does.
    BadBounds,
    /// The text is not UTF-8, or a message ends inside a character.
    NotUtf8,
}

impl EventBatch {
    pub fn with_capacity(events: usize, message_bytes: usize) -> EventBatch {
        let mut bounds = Vec::with_capacity(events + 1);
        bounds.push(0);
        EventBatch { timestamps: Vec::with_capacity(events), bounds, text: String::with_capacity(message_bytes) }
    }

    /// A batch from a decoder's parts: each event's timestamp; `bounds`, where each message
    /// starts in `text` and then where the last one ends (one more than the timestamps, the first
    /// 0, never going back); and the messages one after the other. Checked: every message must
    /// be UTF-8 on its own, not only the text as a whole.
    pub fn from_parts(timestamps: Vec<i64>, bounds: Vec<usize>, text: Vec<u8>) -> Result<EventBatch, BatchPartsError> {
        if bounds.len() != timestamps.len() + 1 {
            return Err(BatchPartsError::CountMismatch);
        }
        if bounds[0] != 0 || bounds.windows(2).any(|b| b[1] < b[0]) || bounds[bounds.len() - 1] != text.len() {
            return Err(BatchPartsError::BadBounds);
        }
        let text = String::from_utf8(text).map_err(|_| BatchPartsError::NotUtf8)?;
        // Valid as a whole, but two halves of one character may be two messages.
        if !bounds.iter().all(|&at| text.is_char_boundary(at)) {
            return Err(BatchPartsError::NotUtf8);
        }
        Ok(EventBatch { timestamps, bounds, text })
    }

    pub fn push(&mut self, timestamp: i64, message: &str) {
        self.text.push_str(message);
        self.timestamps.push(timestamp);
        self.bounds.push(self.text.len());
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Bytes of all the messages together.
    pub fn message_bytes(&self) -> usize {
        self.text.len()
    }

    /// The timestamps, in order.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Event `i`'s timestamp and message. Panics past the end, as indexing does.
    #[inline]
    pub fn get(&self, i: usize) -> (i64, &str) {
        (self.timestamps[i], &self.text[self.bounds[i]..self.bounds[i + 1]])
    }

    /// Each event's timestamp and message, in order.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (i64, &str)> + Clone + '_ {
        self.timestamps.iter().zip(self.bounds.windows(2)).map(|(&ts, b)| (ts, &self.text[b[0]..b[1]]))
    }

    /// Each message's length in bytes, in order.
    #[inline]
    pub fn message_lens(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        self.bounds.windows(2).map(|b| b[1] - b[0])
    }

    /// Keeps only the events in `range` (which must be within the batch).
    pub fn keep(&mut self, range: Range<usize>) {
        assert!(range.start <= range.end && range.end <= self.len(), "{range:?} is not within {} events", self.len());
        if range == (0..self.len()) {
            return;
        }
        let kept: EventBatch = self.iter().skip(range.start).take(range.len()).collect();
        *self = kept;
    }
}

impl<S: AsRef<str>> Extend<(i64, S)> for EventBatch {
    fn extend<I: IntoIterator<Item = (i64, S)>>(&mut self, events: I) {
        for (timestamp, message) in events {
            self.push(timestamp, message.as_ref());
        }
    }
}

impl<S: AsRef<str>> FromIterator<(i64, S)> for EventBatch {
    fn from_iter<I: IntoIterator<Item = (i64, S)>>(events: I) -> EventBatch {
        let mut batch = EventBatch::default();
        batch.extend(events);
        batch
    }
}

impl From<Vec<(i64, String)>> for EventBatch {
    /// Sized for the events at once.
    fn from(events: Vec<(i64, String)>) -> EventBatch {
        let mut batch = EventBatch::with_capacity(events.len(), events.iter().map(|(_, m)| m.len()).sum());
        batch.extend(events);
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_are_checked_message_by_message() {
        let ok = EventBatch::from_parts(vec![1, 2, 3], vec![0, 2, 2, 5], b"ab\xc3\xa9c".to_vec()).unwrap();
        assert_eq!(ok.iter().collect::<Vec<_>>(), vec![(1, "ab"), (2, ""), (3, "éc")]);
        assert_eq!(ok.message_lens().collect::<Vec<_>>(), vec![2, 0, 3]);
        // "é" split between two messages: the text is UTF-8, the messages are not.
        let split = EventBatch::from_parts(vec![1, 2], vec![0, 3, 5], b"ab\xc3\xa9c".to_vec());
        assert_eq!(split, Err(BatchPartsError::NotUtf8));
        assert_eq!(EventBatch::from_parts(vec![1], vec![0, 2], b"a\xff".to_vec()), Err(BatchPartsError::NotUtf8));
        assert_eq!(EventBatch::from_parts(vec![1, 2], vec![0, 2], b"ab".to_vec()), Err(BatchPartsError::CountMismatch));
        assert_eq!(EventBatch::from_parts(vec![1], vec![], vec![]), Err(BatchPartsError::CountMismatch));
        assert_eq!(EventBatch::from_parts(vec![1, 2], vec![0, 2, 1], b"ab".to_vec()), Err(BatchPartsError::BadBounds));
        assert_eq!(EventBatch::from_parts(vec![1], vec![0, 3], b"ab".to_vec()), Err(BatchPartsError::BadBounds));
        assert_eq!(EventBatch::from_parts(vec![1], vec![0, 1], b"ab".to_vec()), Err(BatchPartsError::BadBounds));
        assert_eq!(EventBatch::from_parts(vec![1], vec![1, 2], b"ab".to_vec()), Err(BatchPartsError::BadBounds));
        assert_eq!(EventBatch::from_parts(vec![], vec![0], b"ab".to_vec()), Err(BatchPartsError::BadBounds));
        assert_eq!(EventBatch::from_parts(vec![], vec![0], vec![]), Ok(EventBatch::default()));
    }

    proptest! {
        #[test]
        fn a_batch_holds_what_was_pushed(
            events in proptest::collection::vec((any::<i64>(), "\\PC{0,12}"), 0..40),
            a in 0usize..41,
            b in 0usize..41,
        ) {
            let batch: EventBatch = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
            prop_assert_eq!(batch.len(), events.len());
            prop_assert_eq!(batch.message_bytes(), events.iter().map(|(_, m)| m.len()).sum::<usize>());
            let got: Vec<(i64, String)> = batch.iter().map(|(t, m)| (t, m.to_owned())).collect();
            prop_assert_eq!(&got, &events);
            for (i, (t, m)) in events.iter().enumerate() {
                prop_assert_eq!(batch.get(i), (*t, m.as_str()));
            }
            prop_assert_eq!(&EventBatch::from(events.clone()), &batch);
            let bounds: Vec<usize> = std::iter::once(0)
                .chain(batch.iter().scan(0, |end, (_, m)| { *end += m.len(); Some(*end) }))
                .collect();
            let parts = EventBatch::from_parts(
                batch.timestamps().to_vec(), bounds, batch.iter().flat_map(|(_, m)| m.bytes()).collect());
            prop_assert_eq!(batch.message_lens().collect::<Vec<_>>(), events.iter().map(|(_, m)| m.len()).collect::<Vec<_>>());
            prop_assert_eq!(parts.as_ref(), Ok(&batch));

            let (lo, hi) = (a.min(b).min(events.len()), a.max(b).min(events.len()));
            let mut kept = batch.clone();
            kept.keep(lo..hi);
            prop_assert_eq!(kept, events[lo..hi].iter().map(|(t, m)| (*t, m.as_str())).collect::<EventBatch>());
        }
    }
}
