//! The lookup structure behind every incoming call.
//!
//! A directory holds tens of millions of numbers and is asked about each
//! incoming call, so the index must be small and a lookup must touch as few
//! cache lines as possible. A plain sorted `Vec<i64>` is already 8 bytes per
//! number, but a binary search over 80 MB costs ~24 dependent cache misses.
//! A bucket table over `(number - min) >> shift`, about one bucket per four
//! numbers, holds each bucket's start offset as a `u32` (one byte per
//! number) and turns the search into one jump and three branch-free
//! compares within one or two cache lines. Branch-free matters more than it
//! looks: with an early-exit scan the CPU cannot overlap the cache misses of
//! consecutive lookups, and throughput halved in measurement. Clustered numbers (a whole country's range) only make
//! some buckets longer; the search inside a bucket is binary, so the worst
//! case stays logarithmic.

use std::mem::size_of;
use std::sync::Arc;

/// Average numbers per bucket the table aims for.
const NUMBERS_PER_BUCKET: u64 = 4;

/// Keys searched per lookup without branching; a bucket longer than this
/// (a few percent, more if numbers cluster) falls back to a binary search.
const WINDOW: usize = 8;

/// A sorted set of numbers with a bucket table for one-jump lookups.
#[derive(Debug, Clone)]
pub(crate) struct NumberIndex {
    /// The numbers, then `WINDOW` copies of `i64::MAX` so a window read
    /// never runs off the end.
    keys: Vec<i64>,
    len: usize,
    /// `buckets[b]..buckets[b + 1]` is the range of `keys` in bucket `b`.
    /// The last bucket is an empty sentinel that numbers outside the range
    /// are clamped to, so a lookup needs no range check.
    buckets: Vec<u32>,
    min: i64,
    shift: u32,
}

impl Default for NumberIndex {
    fn default() -> Self {
        NumberIndex::from_sorted(Vec::new())
    }
}

impl NumberIndex {
    /// Builds the index over keys that are strictly ascending and non-negative
    /// (the loader and the store guarantee both).
    pub(crate) fn from_sorted(mut keys: Vec<i64>) -> Self {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(keys.len() < u32::MAX as usize);
        let len = keys.len();
        let min = keys.first().copied().unwrap_or(0);
        let span = keys.last().map_or(0, |&max| (max - min) as u64);
        let wanted = (len as u64 / NUMBERS_PER_BUCKET).max(1);
        let mut shift = 0;
        while (span >> shift) >= wanted {
            shift += 1;
        }
        let bucket_count = if len == 0 {
            0
        } else {
            (span >> shift) as usize + 1
        };
        let mut buckets = Vec::with_capacity(bucket_count + 2);
        let mut next = 0usize;
        for bucket in 0..bucket_count as u64 {
            while next < len && (((keys[next] - min) as u64) >> shift) < bucket {
                next += 1;
            }
            buckets.push(next as u32);
        }
        buckets.extend([len as u32; 2]);
        keys.reserve_exact(WINDOW);
        keys.extend([i64::MAX; WINDOW]);
        keys.shrink_to_fit();
        NumberIndex {
            keys,
            len,
            buckets,
            min,
            shift,
        }
    }

    /// Where `key` sits in [`keys`](Self::keys), if it is present.
    ///
    /// Written to be branch-free in the common case, so the CPU can overlap
    /// the cache misses of consecutive lookups instead of stalling on a
    /// mispredicted early exit.
    #[inline]
    pub(crate) fn position(&self, key: i64) -> Option<usize> {
        // Below `min` wraps to a huge offset; both ends clamp to the sentinel.
        let offset = key.wrapping_sub(self.min) as u64;
        let sentinel = (self.buckets.len() - 2) as u64;
        let bucket = (offset >> self.shift).min(sentinel) as usize;
        let start = self.buckets[bucket] as usize;
        let end = self.buckets[bucket + 1] as usize;
        let at = if end - start <= WINDOW {
            // A fixed-length search the compiler unrolls into three
            // compare-and-moves. Keys past the bucket are greater than any
            // key that maps to it, so searching past its end is harmless.
            let mut base = start;
            let mut len = WINDOW;
            while len > 1 {
                let half = len / 2;
                if self.keys[base + half - 1] < key {
                    base += half;
                }
                len -= half;
            }
            base
        } else {
            start + self.keys[start..end].partition_point(|&k| k < key)
        };
        (at < self.len && self.keys[at] == key).then_some(at)
    }

    #[inline]
    pub(crate) fn contains(&self, key: i64) -> bool {
        self.position(key).is_some()
    }

    pub(crate) fn keys(&self) -> &[i64] {
        &self.keys[..self.len]
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, counting capacity (what the process really pays).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.keys.capacity() * size_of::<i64>() + self.buckets.capacity() * size_of::<u32>()
    }
}

/// Numbers with a caller label each; labels are shared, because a directory
/// of ten million spam numbers has a handful of distinct labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct LabelIndex {
    numbers: NumberIndex,
    /// `label_ids[i]` is the label of `numbers.keys()[i]`.
    label_ids: Vec<u32>,
    labels: Vec<Arc<str>>,
}

impl LabelIndex {
    /// `label_ids` parallels `keys`; every id must index `labels`.
    pub(crate) fn from_sorted(
        keys: Vec<i64>,
        mut label_ids: Vec<u32>,
        labels: Vec<Arc<str>>,
    ) -> Self {
        debug_assert_eq!(keys.len(), label_ids.len());
        debug_assert!(label_ids.iter().all(|&id| (id as usize) < labels.len()));
        label_ids.shrink_to_fit();
        LabelIndex {
            numbers: NumberIndex::from_sorted(keys),
            label_ids,
            labels,
        }
    }

    #[inline]
    pub(crate) fn get(&self, key: i64) -> Option<&Arc<str>> {
        let at = self.numbers.position(key)?;
        Some(&self.labels[self.label_ids[at] as usize])
    }

    pub(crate) fn keys(&self) -> &[i64] {
        self.numbers.keys()
    }

    pub(crate) fn label_ids(&self) -> &[u32] {
        &self.label_ids
    }

    /// The deduplicated label table that `label_ids` index.
    pub(crate) fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    pub(crate) fn len(&self) -> usize {
        self.numbers.len()
    }

    pub(crate) fn memory_bytes(&self) -> usize {
        // Each label is an `Arc<str>`: a fat pointer in the table, plus two
        // reference counts and the text on the heap.
        let text: usize = self
            .labels
            .iter()
            .map(|l| l.len() + 2 * size_of::<usize>())
            .sum();
        self.numbers.memory_bytes()
            + self.label_ids.capacity() * size_of::<u32>()
            + self.labels.capacity() * size_of::<Arc<str>>()
            + text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(keys: &[i64]) -> NumberIndex {
        NumberIndex::from_sorted(keys.to_vec())
    }

    #[test]
    fn empty_index_finds_nothing() {
        let empty = index(&[]);
        for key in [0, 1, -1, i64::MIN, i64::MAX, 18005551234] {
            assert!(!empty.contains(key), "{key}");
        }
        assert_eq!(empty.len(), 0);
    }

    #[test]
    fn single_key_and_its_neighbours() {
        let one = index(&[18005551234]);
        assert!(one.contains(18005551234));
        assert!(!one.contains(18005551233));
        assert!(!one.contains(18005551235));
        assert!(!one.contains(0));
        assert!(!one.contains(i64::MAX));
    }

    #[test]
    fn extremes_of_the_number_range() {
        let max = crate::handle::PhoneNumber::MAX;
        let both = index(&[0, 1, max - 1, max]);
        for key in [0, 1, max - 1, max] {
            assert!(both.contains(key), "{key}");
        }
        for key in [-1, 2, max - 2, max + 1, i64::MIN, i64::MAX] {
            assert!(!both.contains(key), "{key}");
        }
    }

    #[test]
    fn every_key_found_and_every_neighbour_missed() {
        // Irregular gaps, a dense run and a far outlier, so buckets vary.
        let mut keys = Vec::new();
        let mut k = 1_000_000_000i64;
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        for i in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            k += if (5_000..6_000).contains(&i) {
                2
            } else {
                2 + (state % 500) as i64
            };
            keys.push(k);
        }
        keys.push(900_000_000_000_000);
        let idx = index(&keys);
        for (i, &key) in keys.iter().enumerate() {
            assert_eq!(idx.position(key), Some(i));
            assert!(!idx.contains(key - 1), "{}", key - 1);
            assert!(!idx.contains(key + 1), "{}", key + 1);
        }
    }

    #[test]
    fn clustered_keys_still_found() {
        // Everything in one bucket but a far key forces a huge shift.
        let mut keys: Vec<i64> = (1..=1000).collect();
        keys.push(999_999_999_999_999);
        let idx = index(&keys);
        assert!(keys.iter().all(|&k| idx.contains(k)));
        assert!(!idx.contains(1001));
    }

    #[test]
    fn blocking_index_stays_under_ten_bytes_per_number() {
        let keys: Vec<i64> = (0..100_000).map(|i| 18_000_000_000 + i * 37).collect();
        let idx = index(&keys);
        let per_entry = idx.memory_bytes() as f64 / keys.len() as f64;
        assert!(per_entry <= 10.0, "{per_entry} bytes per entry");
    }

    #[test]
    fn labels_are_shared_between_numbers() {
        let labels: Vec<Arc<str>> = vec!["Spam".into(), "Pizza".into()];
        let idx = LabelIndex::from_sorted(vec![10, 20, 30], vec![0, 1, 0], labels);
        assert_eq!(idx.get(10).map(|l| &**l), Some("Spam"));
        assert_eq!(idx.get(20).map(|l| &**l), Some("Pizza"));
        assert!(Arc::ptr_eq(idx.get(10).unwrap(), idx.get(30).unwrap()));
        assert_eq!(idx.get(15), None);
    }
}
