//! The in-memory index: queued entries sorted by seq, and entries in flight (taken, not yet
//! committed).
//!
//! Invariants:
//! - `queue` is strictly increasing by seq;
//! - a seq is in at most one of `queue` and `in_flight`;
//! - every entry is live: its PUT record is on disk and no applied TAKE record names it.
//!
//! Why rollback keeps the queue sorted cheaply: a never-taken entry in the queue was behind
//! every entry taken before it (takes pop the head) and every later put has a larger seq, so a
//! rolled-back entry is smaller than every never-taken entry. It can only be out of order with
//! other rolled-back entries at the head (two takers rolling back in the opposite order of their
//! takes), so rollback binary-searches its place and inserts near the front: a plain prepend in
//! the common single-taker case, O(k log n + k·p) with p the few rolled-back entries ahead of it
//! otherwise.

use std::collections::{BTreeMap, VecDeque};

/// Where one payload lives. 24 bytes, so 1,000,000 queued entries take 24 MB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Sequence number (commit order).
    pub(crate) seq: u64,
    /// Segment id.
    pub(crate) segment: u64,
    /// Offset of the payload bytes in the segment (segments never exceed 4 GiB, see
    /// `record::MAX_RECORD_LEN` and the `max_file_size` clamp).
    pub(crate) offset: u32,
    /// Payload length.
    pub(crate) len: u32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 24);

/// Queue + in-flight set; see the module docs for the invariants.
#[derive(Debug, Default)]
pub(crate) struct Queue {
    queue: VecDeque<Entry>,
    /// Keyed by seq; ordered so a checkpoint can read it in seq ranges.
    in_flight: BTreeMap<u64, Entry>,
}

impl Queue {
    /// A queue holding `entries`, which must be strictly increasing by seq.
    pub(crate) fn from_sorted(entries: VecDeque<Entry>) -> Self {
        debug_assert!(
            entries
                .iter()
                .zip(entries.iter().skip(1))
                .all(|(a, b)| a.seq < b.seq)
        );
        Queue {
            queue: entries,
            in_flight: BTreeMap::new(),
        }
    }

    /// Entries queued (not in flight).
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Entries in flight.
    pub(crate) fn in_flight_len(&self) -> usize {
        self.in_flight.len()
    }

    /// Adds a newly committed entry. The writer assigns increasing seqs, so this is a push at the
    /// back; a smaller seq is still put in its sorted place.
    pub(crate) fn push(&mut self, e: Entry) {
        match self.queue.back() {
            Some(last) if last.seq >= e.seq => {
                let at = self.queue.partition_point(|x| x.seq < e.seq);
                if self.queue.get(at).is_none_or(|x| x.seq != e.seq) {
                    self.queue.insert(at, e);
                }
            }
            _ => self.queue.push_back(e),
        }
    }

    /// Moves up to `max` entries from the head into flight and returns them in seq order.
    pub(crate) fn take(&mut self, max: usize) -> Vec<Entry> {
        let n = max.min(self.queue.len());
        let taken: Vec<Entry> = self.queue.drain(..n).collect();
        for e in &taken {
            self.in_flight.insert(e.seq, *e);
        }
        taken
    }

    /// Returns in-flight entries to the queue at their sorted place; seqs not in flight are
    /// ignored. Returns how many came back.
    pub(crate) fn rollback(&mut self, seqs: &[u64]) -> usize {
        let mut back: Vec<Entry> = seqs
            .iter()
            .filter_map(|s| self.in_flight.remove(s))
            .collect();
        back.sort_unstable_by_key(|e| e.seq);
        let n = back.len();
        // Insert the largest first: each lands at the front or just behind earlier rollbacks.
        for e in back.into_iter().rev() {
            let at = self.queue.partition_point(|x| x.seq < e.seq);
            self.queue.insert(at, e);
        }
        n
    }

    /// Removes a seq for good (a committed take). It is normally in flight; a seq still queued
    /// (a caller committing a take it never took) is removed too, so memory matches what replay
    /// of the TAKE record would do.
    pub(crate) fn remove(&mut self, seq: u64) {
        if self.in_flight.remove(&seq).is_none()
            && let Ok(at) = self.queue.binary_search_by_key(&seq, |e| e.seq)
        {
            self.queue.remove(at);
        }
    }

    /// The smallest segment any live entry (queued or in flight) lives in; `None` when there
    /// is none. A full scan: only the checkpoint-failure path uses it.
    pub(crate) fn min_segment(&self) -> Option<u64> {
        self.queue
            .iter()
            .chain(self.in_flight.values())
            .map(|e| e.segment)
            .min()
    }

    /// Appends to `out` the live entries (queued or in flight) with `from <= seq < end`, at most
    /// about `max` of them, in seq order. Returns the first seq not covered yet (`end` when done).
    ///
    /// Used by the checkpoint to copy the index in slices, releasing the state lock in between.
    pub(crate) fn chunk(&self, from: u64, end: u64, max: usize, out: &mut Vec<Entry>) -> u64 {
        if from >= end {
            return end;
        }
        let start = self.queue.partition_point(|e| e.seq < from);
        let mut hi = end; // exclusive
        let mut queued = self.queue.range(start..).take_while(|e| e.seq < end);
        let mut q: Vec<Entry> = Vec::with_capacity(max.min(self.queue.len() - start));
        for e in queued.by_ref() {
            q.push(*e);
            if q.len() >= max {
                hi = e.seq + 1;
                break;
            }
        }
        let mut f = self.in_flight.range(from..hi).map(|(_, e)| *e).peekable();
        let mut q = q.into_iter().peekable();
        loop {
            let next = match (q.peek(), f.peek()) {
                (Some(a), Some(b)) if a.seq <= b.seq => q.next(),
                (Some(_), None) => q.next(),
                (_, Some(_)) => f.next(),
                (None, None) => break,
            };
            out.extend(next);
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(seq: u64) -> Entry {
        Entry {
            seq,
            segment: 1,
            offset: 16,
            len: 1,
        }
    }
    fn seqs(q: &Queue) -> Vec<u64> {
        q.queue.iter().map(|e| e.seq).collect()
    }

    #[test]
    fn interleaved_rollbacks_keep_order() {
        let mut q = Queue::from_sorted((1..=6).map(e).collect());
        let a = q.take(2);
        let b = q.take(2);
        assert_eq!(q.in_flight_len(), 4);
        q.rollback(&a.iter().map(|e| e.seq).collect::<Vec<_>>());
        q.rollback(&b.iter().map(|e| e.seq).collect::<Vec<_>>());
        assert_eq!(seqs(&q), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(q.in_flight_len(), 0);
        assert_eq!(q.rollback(&[1, 99]), 0);
    }

    #[test]
    fn remove_and_chunk() {
        let mut q = Queue::from_sorted((1..=10).map(e).collect());
        let t = q.take(3);
        q.remove(t[1].seq);
        q.remove(7);
        q.push(e(11));
        let mut out = Vec::new();
        let mut from = 0;
        while from < 12 {
            from = q.chunk(from, 12, 2, &mut out);
        }
        let got: Vec<u64> = out.iter().map(|e| e.seq).collect();
        assert_eq!(got, vec![1, 3, 4, 5, 6, 8, 9, 10, 11]);
    }
}
