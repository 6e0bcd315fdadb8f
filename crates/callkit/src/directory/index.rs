//! The lookup structure behind every incoming call.
//!
//! A directory holds tens of millions of numbers and is asked about each
//! incoming call, so the index must be small and a lookup must touch as few
//! cache lines as possible. A plain sorted `Vec<i64>` is already 8 bytes per
//! number, and a binary search over 80 MB costs ~24 dependent cache misses.
//!
//! Numbers are split into buckets by `(number - min) >> shift`, six to
//! twelve numbers per bucket on average. Every bucket owns a fixed 32-byte
//! slot of offsets within the bucket, ascending and padded with the lane
//! type's maximum, so a lookup computes the slot's address directly and
//! reads one aligned slot: one memory access, with nothing it depends on.
//! Offsets fit in `shift` bits: sixteen two-byte lanes when numbers are at
//! least one in 32 768 dense (any real block list), else eight four-byte or
//! four eight-byte lanes. A bucket holding more numbers than its slot has
//! lanes (a dense cluster) keeps the rest in a sorted overflow list, searched
//! only when its slot is full. At worst (everything overflowing) that is
//! 8 bytes per number plus 32 per bucket, under 16 bytes per number.
//!
//! The compare inside a slot is branch-free: the compiler turns it into a
//! couple of vector compares, and with no mispredicted early exit the CPU
//! overlaps the cache misses of consecutive lookups. An earlier layout, a
//! table of bucket starts in front of packed offsets, cost two dependent
//! misses per lookup and ran four times slower over ten million numbers.
//!
//! Ranks (what [`NumberIndex::position`] returns, and what label ids are
//! stored by) come from a second table of bucket starts, read in parallel
//! with the slot.

use std::mem::size_of;
use std::sync::Arc;

/// Average numbers per bucket the table aims for; the real average lies
/// between this and twice it, because `shift` moves in powers of two. Twice
/// this stays below the sixteen lanes of a dense directory's slots, so few
/// buckets overflow even at random gaps.
const NUMBERS_PER_BUCKET: u64 = 6;

/// The width a bucket's offsets are stored at. `MAX` pads a slot and is
/// never a real offset, because `shift` is kept below the type's width.
trait Lane: Copy + Ord + std::fmt::Debug {
    const MAX: Self;
    const BITS: u32;
    /// Keeps the low bits of `value`, which the callers keep in range.
    fn truncate(value: u64) -> Self;
    fn widen(self) -> u64;
}

macro_rules! lane {
    ($t:ty) => {
        impl Lane for $t {
            const MAX: Self = <$t>::MAX;
            const BITS: u32 = <$t>::BITS;
            fn truncate(value: u64) -> Self {
                value as $t
            }
            fn widen(self) -> u64 {
                self.into()
            }
        }
    };
}
lane!(u16);
lane!(u32);
lane!(u64);

/// One bucket's `N` offsets, 32 bytes in every layout. Aligned to its size,
/// so a slot never straddles two cache lines.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
struct Slot<T, const N: usize>([T; N]);

const _: () = assert!(
    size_of::<Slot<u16, 16>>() == 32
        && size_of::<Slot<u32, 8>>() == 32
        && size_of::<Slot<u64, 4>>() == 32
);

/// Every bucket's slot.
#[derive(Debug, Clone)]
enum Slots {
    /// `shift < 16`.
    Narrow(Vec<Slot<u16, 16>>),
    /// `shift < 32`.
    Medium(Vec<Slot<u32, 8>>),
    /// Anything else, such as a few numbers spread over the whole range.
    Wide(Vec<Slot<u64, 4>>),
}

/// Lays out `keys`, split by `starts`, into slots and an overflow list.
fn fill<T: Lane, const N: usize>(
    keys: &[i64],
    starts: &[u32],
    min: i64,
    shift: u32,
) -> (Vec<Slot<T, N>>, Vec<i64>) {
    debug_assert!(shift < T::BITS);
    let mut slots = vec![Slot([T::MAX; N]); starts.len().saturating_sub(1)];
    let mut overflow = Vec::new();
    for (bucket, (slot, range)) in slots.iter_mut().zip(starts.windows(2)).enumerate() {
        let in_bucket = &keys[range[0] as usize..range[1] as usize];
        let (inline, rest) = in_bucket.split_at(in_bucket.len().min(N));
        let base = (bucket as u64) << shift;
        for (lane, &key) in slot.0.iter_mut().zip(inline) {
            *lane = T::truncate((key - min) as u64 - base);
        }
        overflow.extend_from_slice(rest);
    }
    overflow.shrink_to_fit();
    (slots, overflow)
}

/// Whether `slot` holds `target`, with no branch.
#[inline(always)]
fn holds<T: Lane, const N: usize>(slot: &Slot<T, N>, target: T) -> bool {
    slot.0.iter().fold(false, |hit, &o| hit | (o == target))
}

/// Where `target` sits in `slot`, if it is there.
#[inline(always)]
fn lane_of<T: Lane, const N: usize>(slot: &Slot<T, N>, target: T) -> Option<usize> {
    // The offsets ascend, then padding: counting the smaller ones gives
    // the first lane not below the target, branch-free.
    let lane = slot.0.iter().fold(0, |n, &o| n + usize::from(o < target));
    (slot.0.get(lane) == Some(&target)).then_some(lane)
}

/// A sorted set of numbers, one slot per bucket, for one-access lookups.
#[derive(Debug, Clone)]
pub(crate) struct NumberIndex {
    slots: Slots,
    /// Numbers past the last lane of their bucket's slot, ascending.
    overflow: Vec<i64>,
    /// `starts[b]` is the rank of bucket `b`'s first number; one extra
    /// entry holds the total.
    starts: Vec<u32>,
    len: usize,
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
        let mut starts = Vec::with_capacity(bucket_count + 1);
        let mut next = 0usize;
        for bucket in 0..bucket_count as u64 {
            while next < len && (((keys[next] - min) as u64) >> shift) < bucket {
                next += 1;
            }
            starts.push(next as u32);
        }
        starts.push(len as u32);
        let (slots, overflow) = if shift < 16 {
            let (slots, overflow) = fill(&keys, &starts, min, shift);
            (Slots::Narrow(slots), overflow)
        } else if shift < 32 {
            let (slots, overflow) = fill(&keys, &starts, min, shift);
            (Slots::Medium(slots), overflow)
        } else {
            let (slots, overflow) = fill(&keys, &starts, min, shift);
            (Slots::Wide(slots), overflow)
        };
        NumberIndex {
            slots,
            overflow,
            starts,
            len,
            min,
            shift,
        }
    }

    /// The bucket `key` falls in, if any, and its offset within it.
    #[inline(always)]
    fn locate(&self, key: i64) -> Option<(usize, u64)> {
        // Below `min` wraps to a huge offset, past every bucket.
        let offset = key.wrapping_sub(self.min) as u64;
        let bucket = usize::try_from(offset >> self.shift).ok()?;
        (bucket < self.starts.len() - 1).then(|| (bucket, offset & ((1 << self.shift) - 1)))
    }

    /// Whether `key` is in a full bucket's overflow.
    #[cold]
    fn overflow_has(&self, key: i64) -> bool {
        self.overflow.binary_search(&key).is_ok()
    }

    /// Whether `key` is present: one slot read, no branch on its contents
    /// unless the slot is full.
    #[inline]
    pub(crate) fn contains(&self, key: i64) -> bool {
        let Some((bucket, target)) = self.locate(key) else {
            return false;
        };
        let (hit, full) = match &self.slots {
            Slots::Narrow(s) => probe(&s[bucket], target),
            Slots::Medium(s) => probe(&s[bucket], target),
            Slots::Wide(s) => probe(&s[bucket], target),
        };
        hit || (full && self.overflow_has(key))
    }

    /// Where `key` sits in [`keys`](Self::keys), if it is present.
    #[inline]
    pub(crate) fn position(&self, key: i64) -> Option<usize> {
        let (bucket, target) = self.locate(key)?;
        let (lane, full, lanes) = match &self.slots {
            Slots::Narrow(s) => rank_in(&s[bucket], target),
            Slots::Medium(s) => rank_in(&s[bucket], target),
            Slots::Wide(s) => rank_in(&s[bucket], target),
        };
        let start = self.starts[bucket] as usize;
        if let Some(lane) = lane {
            return Some(start + lane);
        }
        if !full {
            return None;
        }
        let at = self.overflow.binary_search(&key).ok()?;
        let base = key - target as i64;
        let first = self.overflow.partition_point(|&k| k < base);
        Some(start + lanes + (at - first))
    }

    /// The numbers, ascending, rebuilt from their slots.
    pub(crate) fn keys(&self) -> Keys<'_> {
        let inner: Box<dyn Iterator<Item = i64> + '_> = match &self.slots {
            Slots::Narrow(s) => Box::new(self.rebuild(s)),
            Slots::Medium(s) => Box::new(self.rebuild(s)),
            Slots::Wide(s) => Box::new(self.rebuild(s)),
        };
        Keys {
            inner,
            left: self.len,
        }
    }

    fn rebuild<'a, T: Lane, const N: usize>(
        &'a self,
        slots: &'a [Slot<T, N>],
    ) -> impl Iterator<Item = i64> + 'a {
        slots.iter().enumerate().flat_map(move |(bucket, slot)| {
            let base = (bucket as u64) << self.shift;
            let inline = slot.0.iter().take_while(|&&o| o != T::MAX);
            let inline = inline.map(move |&o| self.min + (base + o.widen()) as i64);
            let spilled: &[i64] = if slot.0[N - 1] == T::MAX {
                &[]
            } else {
                let end = base.saturating_add(1 << self.shift);
                let from = |off: u64| {
                    self.overflow
                        .partition_point(|&k| ((k - self.min) as u64) < off)
                };
                &self.overflow[from(base)..from(end)]
            };
            inline.chain(spilled.iter().copied())
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Heap bytes held, counting capacity (what the process really pays).
    pub(crate) fn memory_bytes(&self) -> usize {
        let slots = match &self.slots {
            Slots::Narrow(s) => s.capacity() * size_of::<Slot<u16, 16>>(),
            Slots::Medium(s) => s.capacity() * size_of::<Slot<u32, 8>>(),
            Slots::Wide(s) => s.capacity() * size_of::<Slot<u64, 4>>(),
        };
        slots
            + self.overflow.capacity() * size_of::<i64>()
            + self.starts.capacity() * size_of::<u32>()
    }
}

/// Whether `slot` holds `target`, and whether it is full (so its bucket may
/// have overflowed).
#[inline(always)]
fn probe<T: Lane, const N: usize>(slot: &Slot<T, N>, target: u64) -> (bool, bool) {
    (holds(slot, T::truncate(target)), slot.0[N - 1] != T::MAX)
}

/// The lane of `target` in `slot`, whether the slot is full, and its lanes.
#[inline(always)]
fn rank_in<T: Lane, const N: usize>(
    slot: &Slot<T, N>,
    target: u64,
) -> (Option<usize>, bool, usize) {
    (
        lane_of(slot, T::truncate(target)),
        slot.0[N - 1] != T::MAX,
        N,
    )
}

/// The numbers of a [`NumberIndex`] in ascending order.
pub(crate) struct Keys<'a> {
    inner: Box<dyn Iterator<Item = i64> + 'a>,
    left: usize,
}

impl Iterator for Keys<'_> {
    type Item = i64;

    fn next(&mut self) -> Option<i64> {
        let key = self.inner.next()?;
        self.left -= 1;
        Some(key)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
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
    use proptest::prelude::*;
    use std::collections::BTreeSet;

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
    fn any_spread_stays_under_sixteen_bytes_per_number() {
        let max = crate::handle::PhoneNumber::MAX;
        let n = 100_000i64;
        let sets: [(&str, Vec<i64>); 4] = [
            ("dense", (0..n).map(|i| 18_000_000_000 + i * 37).collect()),
            // A cluster and one far number: every bucket but two is empty.
            ("clustered", (1..n).chain([max]).collect()),
            ("medium", (0..n).map(|i| i * 1_000_000).collect()),
            ("wide", (0..n).map(|i| i * (max / n)).collect()),
        ];
        for (name, keys) in sets {
            let idx = index(&keys);
            let per_entry = idx.memory_bytes() as f64 / keys.len() as f64;
            assert!(per_entry <= 16.0, "{name}: {per_entry} bytes per entry");
            assert!(keys.iter().all(|&k| idx.contains(k)), "{name}");
        }
    }

    /// Sorted E.164-range key sets mixing dense runs, ordinary gaps and huge
    /// jumps, sometimes pinned to the ends of the range.
    fn key_sets() -> impl Strategy<Value = Vec<i64>> {
        let max = crate::handle::PhoneNumber::MAX;
        let step = prop_oneof![
            4 => 1i64..3,
            4 => 1i64..200,
            1 => 1i64..1_000_000,
            1 => 1i64..max / 4,
        ];
        (
            prop::collection::vec(step, 0..400),
            0i64..max,
            any::<bool>(),
            any::<bool>(),
        )
            .prop_map(move |(steps, start, with_min, with_max)| {
                let mut keys = BTreeSet::new();
                if with_min {
                    keys.insert(1);
                }
                let mut k = start;
                for step in steps {
                    if k > max {
                        break;
                    }
                    keys.insert(k);
                    k = k.saturating_add(step);
                }
                if with_max {
                    keys.insert(max);
                }
                keys.into_iter().collect()
            })
    }

    proptest! {
        #[test]
        fn position_and_contains_agree_with_a_btreeset(
            keys in key_sets(),
            probes in prop::collection::vec(any::<i64>(), 0..50),
        ) {
            let set: BTreeSet<i64> = keys.iter().copied().collect();
            let idx = index(&keys);
            prop_assert_eq!(idx.keys().collect::<Vec<_>>(), keys.clone());
            prop_assert_eq!(idx.keys().len(), keys.len());
            let max = crate::handle::PhoneNumber::MAX;
            let mut candidates = probes;
            for &k in &keys {
                candidates.extend([k, k - 1, k + 1]);
            }
            candidates.extend([i64::MIN, -1, 0, 1, 2, max - 1, max, max + 1, i64::MAX]);
            for key in candidates {
                let expected = set.contains(&key).then(|| set.range(..key).count());
                prop_assert_eq!(idx.position(key), expected, "key {}", key);
                prop_assert_eq!(idx.contains(key), expected.is_some(), "key {}", key);
            }
        }
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
