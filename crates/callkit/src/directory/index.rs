//! The lookup structure behind every incoming call.
//!
//! A directory holds tens of millions of numbers and is asked about each
//! incoming call, so the index must be small and a lookup must touch as few
//! cache lines as possible. A plain sorted `Vec<i64>` is already 8 bytes per
//! number, and a binary search over 80 MB costs ~24 dependent cache misses.
//!
//! Numbers are split into buckets by `(number - min) >> shift`, about eight
//! to sixteen numbers per bucket. A table of `u32` bucket starts (a few
//! megabytes for ten million numbers, so it mostly stays in the last-level
//! cache) gives the bucket's range in one jump. Each number is stored only
//! as its offset within its bucket, which fits in `shift` bits: two bytes
//! per number when numbers are at least one in 65 536 dense (any real block
//! list), four or eight bytes otherwise. A bucket's offsets then sit in one
//! or two adjacent cache lines, so a lookup costs about one memory miss.
//!
//! The search inside a bucket compares a fixed window of offsets against
//! the target and counts the smaller ones, without branching: the compiler
//! turns it into a few vector compares, and with no mispredicted early exit
//! the CPU overlaps the cache misses of consecutive lookups (an early-exit
//! scan halved throughput in measurement). Clustered numbers (a whole
//! country's range) only make some buckets longer; those fall back to a
//! binary search, so the worst case stays logarithmic.

use std::mem::size_of;
use std::sync::Arc;

/// Average numbers per bucket the table aims for; the real average lies
/// between this and twice it, because `shift` moves in powers of two.
const NUMBERS_PER_BUCKET: u64 = 8;

/// Offsets compared per lookup without branching; a bucket longer than this
/// (rare unless numbers cluster) falls back to a binary search.
const WINDOW: usize = 32;

/// `KEEP[WINDOW - len..][..WINDOW]` is `len` times `true`, then `false`.
static KEEP: [bool; 2 * WINDOW] = {
    let mut keep = [false; 2 * WINDOW];
    let mut i = 0;
    while i < WINDOW {
        keep[i] = true;
        i += 1;
    }
    keep
};

/// The width an offset within a bucket is stored at. Offsets are compared
/// as lanes of a vector, so the type also counts lanes and indexes them.
trait Offset: Copy + Ord + std::ops::Add<Output = Self> + From<bool> {
    /// Keeps the low bits of `value`; callers only pass values that fit,
    /// except for keys that land in the empty sentinel bucket.
    fn truncate(value: u64) -> Self;
    fn widen(self) -> u64;
}

impl Offset for i16 {
    fn truncate(value: u64) -> Self {
        value as i16
    }
    fn widen(self) -> u64 {
        self as u16 as u64
    }
}

impl Offset for u32 {
    fn truncate(value: u64) -> Self {
        value as u32
    }
    fn widen(self) -> u64 {
        self.into()
    }
}

impl Offset for u64 {
    fn truncate(value: u64) -> Self {
        value
    }
    fn widen(self) -> u64 {
        self
    }
}

/// Every number's offset within its bucket, in number order, then `WINDOW`
/// padding values so a window read never runs off the end.
#[derive(Debug, Clone)]
enum Offsets {
    /// `shift <= 15`: numbers at least one in 32 768 dense. Signed, because
    /// baseline x86-64 has signed 16-bit vector compares only.
    Narrow(Vec<i16>),
    /// `shift <= 32`.
    Medium(Vec<u32>),
    /// Anything else, such as a few numbers spread over the whole range.
    Wide(Vec<u64>),
}

impl Offsets {
    fn new(keys: &[i64], min: i64, shift: u32) -> Self {
        if shift <= 15 {
            Offsets::Narrow(offsets(keys, min, shift))
        } else if shift <= 32 {
            Offsets::Medium(offsets(keys, min, shift))
        } else {
            Offsets::Wide(offsets(keys, min, shift))
        }
    }

    #[inline]
    fn get(&self, at: usize) -> u64 {
        match self {
            Offsets::Narrow(o) => o[at].widen(),
            Offsets::Medium(o) => o[at].widen(),
            Offsets::Wide(o) => o[at],
        }
    }

    fn memory_bytes(&self) -> usize {
        match self {
            Offsets::Narrow(o) => o.capacity() * size_of::<i16>(),
            Offsets::Medium(o) => o.capacity() * size_of::<u32>(),
            Offsets::Wide(o) => o.capacity() * size_of::<u64>(),
        }
    }
}

fn offsets<T: Offset>(keys: &[i64], min: i64, shift: u32) -> Vec<T> {
    // `shift` is below 64: it stops growing once the span shifts to zero.
    let mask = (1u64 << shift) - 1;
    let mut out = Vec::with_capacity(keys.len() + WINDOW);
    out.extend(keys.iter().map(|&k| T::truncate((k - min) as u64 & mask)));
    out.extend([T::truncate(0); WINDOW]);
    out
}

/// Where `target` sits among `offsets[start..end]`, which are ascending.
#[inline(always)]
fn find<T: Offset>(offsets: &[T], start: usize, end: usize, target: T) -> Option<usize> {
    let len = end - start;
    let at = if len <= WINDOW {
        // Count the bucket's offsets below the target over a fixed window;
        // entries past the bucket's end are masked out. The mask is read
        // from a table rather than computed from lane indices, which the
        // compiler would widen to 64-bit compares. Counting in the offsets'
        // own width keeps each step one vector compare; no type overflows
        // at `WINDOW`.
        let window = &offsets[start..][..WINDOW];
        let keep = &KEEP[WINDOW - len..][..WINDOW];
        let mut below = T::truncate(0);
        for (&k, &o) in keep.iter().zip(window) {
            below = below + T::from(k & (o < target));
        }
        start + below.widen() as usize
    } else {
        start + offsets[start..end].partition_point(|&o| o < target)
    };
    // `at <= end`, and the padding keeps `offsets[end]` in bounds.
    ((at < end) & (offsets[at] == target)).then_some(at)
}

/// A sorted set of numbers with a bucket table for one-jump lookups.
#[derive(Debug, Clone)]
pub(crate) struct NumberIndex {
    offsets: Offsets,
    len: usize,
    /// `buckets[b]..buckets[b + 1]` is the range of `offsets` in bucket `b`.
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
    pub(crate) fn from_sorted(keys: Vec<i64>) -> Self {
        debug_assert!(keys.windows(2).all(|w| w[0] < w[1]));
        debug_assert!(keys.first().is_none_or(|&k| k >= 0));
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
        NumberIndex {
            offsets: Offsets::new(&keys, min, shift),
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
        let bucket = (offset >> self.shift).min(sentinel);
        let start = self.buckets[bucket as usize] as usize;
        let end = self.buckets[bucket as usize + 1] as usize;
        // Below `1 << shift`, so it fits the offset width, unless the key was
        // clamped to the sentinel, whose empty range compares nothing.
        let target = offset.wrapping_sub(bucket << self.shift);
        match &self.offsets {
            Offsets::Narrow(o) => find(o, start, end, Offset::truncate(target)),
            Offsets::Medium(o) => find(o, start, end, Offset::truncate(target)),
            Offsets::Wide(o) => find(o, start, end, target),
        }
    }

    #[inline]
    pub(crate) fn contains(&self, key: i64) -> bool {
        self.position(key).is_some()
    }

    /// The numbers, ascending, rebuilt from their buckets and offsets.
    pub(crate) fn keys(&self) -> Keys<'_> {
        Keys {
            index: self,
            bucket: 0,
            at: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, counting capacity (what the process really pays).
    pub(crate) fn memory_bytes(&self) -> usize {
        self.offsets.memory_bytes() + self.buckets.capacity() * size_of::<u32>()
    }
}

/// The numbers of a [`NumberIndex`] in ascending order.
#[derive(Debug, Clone)]
pub(crate) struct Keys<'a> {
    index: &'a NumberIndex,
    /// The bucket holding `at`, once `at` is below `len`.
    bucket: usize,
    at: usize,
}

impl Iterator for Keys<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let index = self.index;
        if self.at >= index.len {
            return None;
        }
        while index.buckets[self.bucket + 1] as usize <= self.at {
            self.bucket += 1;
        }
        let base = (self.bucket as u64) << index.shift;
        let key = index.min + (base + index.offsets.get(self.at)) as i64;
        self.at += 1;
        Some(key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.index.len - self.at;
        (left, Some(left))
    }
}

impl ExactSizeIterator for Keys<'_> {}

/// Numbers with a caller label each; labels are shared, because a directory
/// of ten million spam numbers has a handful of distinct labels.
#[derive(Debug, Clone, Default)]
pub(crate) struct LabelIndex {
    numbers: NumberIndex,
    /// `label_ids[i]` is the label of the `i`-th number of `numbers`.
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

    pub(crate) fn keys(&self) -> Keys<'_> {
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
