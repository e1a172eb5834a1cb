//! Per-thread bounded event storage.
//!
//! Each thread appends records to its own ring of chunks, so the hot path is one
//! bounds check and a store. `tracer_entries` (N) bounds the records of *all* threads
//! together: a thread reserves room from the shared [`Budget`] one chunk at a time
//! (small chunks first, so idle threads stay small), and when the budget is spent the
//! oldest chunk among all threads is evicted and its memory reused.
//!
//! Eviction works a chunk at a time (at most N/256 records, 4096 at most), so that the
//! hot path never does more than one store. To keep N records all the same, the rings
//! may reserve one chunk more than N in all: right after an eviction, a single thread's
//! ring still holds at least N records, and a snapshot keeps exactly the N most recent
//! ([`keep_newest`]). With one thread writing, a trace of more than N records keeps
//! exactly its last N. With several, the budget is shared: the trace keeps at most N
//! records, each thread's kept records are its most recent ones, and the records
//! dropped first are those of the chunk (and then the records) written earliest of all
//! threads. It can keep fewer than N: room a thread has reserved for its next records
//! and not yet filled (at most one chunk per thread that still has records) counts
//! against the budget. Memory stays at about 24 bytes per entry, N plus one chunk.

use crate::buffers::record::Record;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

/// Largest chunk a thread reserves at once.
const MAX_CHUNK: usize = 4096;
/// First chunk of a thread; later chunks double up to the maximum.
const FIRST_CHUNK: usize = 64;

/// The shared entry budget (`tracer_entries`), and the memory of chunks that were
/// emptied by `clear()`, kept for the next chunks: a program that traces, clears and
/// traces again reuses pages it already touched instead of faulting fresh ones in (on
/// these VMs a page fault costs about a microsecond, some 10 ns per traced call).
#[derive(Debug)]
pub struct Budget {
    /// `tracer_entries`: the most records a snapshot keeps.
    limit: usize,
    /// What the rings may reserve in all: `limit` and one chunk of slack, so that
    /// evicting a chunk still leaves `limit` records (see the module's doc).
    capacity: usize,
    reserved: usize,
    max_chunk: usize,
    /// Records were evicted since the last snapshot (or `clear()`).
    pub overflowed: bool,
    /// Empty vectors with their capacity; at most `limit` entries of it in all.
    spare: Vec<Vec<Record>>,
    spare_entries: usize,
}

impl Budget {
    pub fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        // Eviction works chunk by chunk, so chunks stay small against the limit: a
        // buffer of 10 entries keeps exactly 10, one of 1M keeps at least 99.6%.
        let max_chunk = (limit / 256).clamp(1, MAX_CHUNK);
        Budget {
            limit,
            capacity: limit.saturating_add(max_chunk),
            reserved: 0,
            max_chunk,
            overflowed: false,
            spare: Vec::new(),
            spare_entries: 0,
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// Room not yet reserved by any ring.
    pub fn available(&self) -> usize {
        self.capacity - self.reserved
    }

    /// Reserves up to `want` entries; returns how many were granted (possibly 0).
    pub fn reserve(&mut self, want: usize) -> usize {
        let n = want.min(self.available());
        self.reserved += n;
        n
    }

    pub fn release(&mut self, n: usize) {
        self.reserved = self.reserved.saturating_sub(n);
    }

    /// Keeps the memory of an emptied chunk for a later one (dropped if the spare
    /// memory would exceed the budget).
    pub fn give_back(&mut self, mut chunk: Vec<Record>) {
        if self.spare_entries + chunk.capacity() > self.limit {
            return;
        }
        chunk.clear();
        self.spare_entries += chunk.capacity();
        self.spare.push(chunk);
    }

    /// Memory for a new chunk, if some was given back (the largest first).
    fn take_spare(&mut self) -> Option<Vec<Record>> {
        let (i, _) = self.spare.iter().enumerate().max_by_key(|(_, v)| v.capacity())?;
        let v = self.spare.swap_remove(i);
        self.spare_entries -= v.capacity();
        Some(v)
    }
}

/// A sealed chunk: `records` were reserved with `cap` entries of budget.
#[derive(Debug)]
struct Chunk {
    records: Vec<Record>,
    cap: usize,
}

/// One thread's records, oldest first.
#[derive(Debug, Default)]
pub struct Ring {
    sealed: VecDeque<Chunk>,
    cur: Vec<Record>,
    cur_cap: usize,
    next_chunk: usize,
    len: usize,
}

impl Ring {
    /// Appends without touching the budget; fails when the current chunk is full.
    #[inline(always)]
    pub fn try_push(&mut self, r: Record) -> Result<(), Record> {
        if self.cur.len() < self.cur_cap {
            // `start_chunk` reserved `cur_cap`, so this never finds the vector full.
            crate::ffi::vec_ext::push_within_capacity(&mut self.cur, r)?;
            self.len += 1;
            Ok(())
        } else {
            Err(r)
        }
    }

    /// Number of records held.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Budget held by this ring (sealed chunks plus the current one).
    pub fn reserved(&self) -> usize {
        self.sealed.iter().map(|c| c.cap).sum::<usize>() + self.cur_cap
    }

    /// How much budget the next chunk asks for.
    pub fn wanted_chunk(&self, budget: &Budget) -> usize {
        self.next_chunk.max(FIRST_CHUNK).min(budget.max_chunk)
    }

    /// Seals the current chunk and starts a new one with `cap` entries of budget,
    /// reusing `storage` (an evicted chunk's memory) when given.
    pub fn start_chunk(&mut self, cap: usize, storage: Option<Vec<Record>>) {
        let old = std::mem::take(&mut self.cur);
        if !old.is_empty() {
            self.sealed.push_back(Chunk { records: old, cap: self.cur_cap });
        }
        let mut v = storage.unwrap_or_default();
        v.clear();
        // (The vector is empty: this makes its capacity at least `cap`, which the
        // hot path's no-growth push relies on.)
        v.reserve_exact(cap);
        self.cur = v;
        self.cur_cap = cap;
        self.next_chunk = cap * 2;
    }

    /// When the oldest record still held was written (for choosing what to evict).
    pub fn oldest_written_at(&self) -> Option<u64> {
        match self.sealed.front() {
            Some(c) => c.records.first().map(Record::written_at),
            None => self.cur.first().map(Record::written_at),
        }
    }

    /// Removes the oldest chunk; returns its records (for freeing payloads and reusing
    /// the memory) and the budget it held.
    pub fn evict_oldest(&mut self) -> Option<(Vec<Record>, usize)> {
        if let Some(c) = self.sealed.pop_front() {
            self.len -= c.records.len();
            return Some((c.records, c.cap));
        }
        if self.cur.is_empty() {
            return None;
        }
        let records = std::mem::take(&mut self.cur);
        let cap = std::mem::replace(&mut self.cur_cap, 0);
        self.len -= records.len();
        Some((records, cap))
    }

    /// Takes every record out (oldest first) and returns them with the budget held.
    pub fn take_all(&mut self) -> (Vec<Vec<Record>>, usize) {
        let reserved = self.reserved();
        let mut out: Vec<Vec<Record>> = self.sealed.drain(..).map(|c| c.records).collect();
        let cur = std::mem::take(&mut self.cur);
        if !cur.is_empty() {
            out.push(cur);
        }
        self.cur_cap = 0;
        self.next_chunk = 0;
        self.len = 0;
        (out, reserved)
    }

    /// Iterates over the records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Record> {
        self.sealed.iter().flat_map(|c| c.records.iter()).chain(self.cur.iter())
    }
}

/// Appends `r` to `rings[me]`, reserving budget or evicting the oldest chunk among all
/// rings when the budget is spent. `on_evict` sees every evicted record (to free its
/// payload) together with the index of the ring it came from.
pub fn push_slow(
    rings: &mut [&mut Ring],
    me: usize,
    budget: &mut Budget,
    r: Record,
    mut on_evict: impl FnMut(usize, &Record),
) {
    loop {
        let r_me = &mut rings[me];
        if r_me.try_push(r).is_ok() {
            return;
        }
        let want = r_me.wanted_chunk(budget);
        let granted = budget.reserve(want);
        if granted > 0 {
            let storage = budget.take_spare();
            rings[me].start_chunk(granted, storage);
            continue;
        }
        // The budget is spent: evict the chunk holding the oldest record of all threads.
        budget.overflowed = true;
        let victim = rings
            .iter()
            .enumerate()
            .filter_map(|(i, ring)| ring.oldest_written_at().map(|t| (t, i)))
            .min()
            .map(|(_, i)| i);
        // Nothing is stored anywhere, yet the budget is spent: cannot happen, but
        // dropping the record beats looping forever.
        let Some((victim, (records, cap))) = victim.and_then(|i| Some((i, rings[i].evict_oldest()?))) else { return };
        for rec in &records {
            on_evict(victim, rec);
        }
        budget.release(cap);
        let granted = budget.reserve(cap);
        rings[me].start_chunk(granted, Some(records));
    }
}

/// Trims records taken out of the rings (one list of chunks per thread, oldest first,
/// as `Ring::take_all` gives them) to the `limit` most recent: while there are more, the
/// oldest record of the thread whose oldest record was written first goes. `on_drop`
/// sees every dropped record with the index of its thread (to free its payload).
/// Returns how many records were dropped.
pub fn keep_newest(
    threads: &mut [&mut Vec<Vec<Record>>],
    limit: usize,
    mut on_drop: impl FnMut(usize, &Record),
) -> usize {
    for chunks in threads.iter_mut() {
        chunks.retain(|c| !c.is_empty());
    }
    let total: usize = threads.iter().map(|chunks| chunks.iter().map(Vec::len).sum::<usize>()).sum();
    let excess = total.saturating_sub(limit);
    if excess == 0 {
        return 0;
    }
    // Per thread, the position (chunk, index) of its oldest record still kept.
    let mut pos = vec![(0usize, 0usize); threads.len()];
    // The oldest record still kept of each thread that has one, the earliest on top.
    let mut heads: BinaryHeap<Reverse<(u64, usize)>> = threads
        .iter()
        .enumerate()
        .filter_map(|(t, chunks)| chunks.first().and_then(|c| c.first()).map(|r| Reverse((r.written_at(), t))))
        .collect();
    let mut dropped = 0;
    while dropped < excess {
        let Some(Reverse((_, t))) = heads.pop() else { break };
        let chunks = &threads[t];
        let (c, i) = pos[t];
        let Some(chunk) = chunks.get(c) else { continue };
        if let Some(r) = chunk.get(i) {
            on_drop(t, r);
            dropped += 1;
        }
        pos[t] = if i + 1 < chunk.len() { (c, i + 1) } else { (c + 1, 0) };
        let (c, i) = pos[t];
        if let Some(r) = chunks.get(c).and_then(|chunk| chunk.get(i)) {
            heads.push(Reverse((r.written_at(), t)));
        }
    }
    for (chunks, &(c, i)) in threads.iter_mut().zip(&pos) {
        chunks.drain(..c.min(chunks.len()));
        if let Some(first) = chunks.first_mut() {
            first.drain(..i.min(first.len()));
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(t: u64) -> Record {
        Record::complete(t, 0, t as u32, None)
    }

    fn push(rings: &mut [Ring], me: usize, budget: &mut Budget, r: Record) {
        let mut refs: Vec<&mut Ring> = rings.iter_mut().collect();
        if refs[me].try_push(r).is_err() {
            push_slow(&mut refs, me, budget, r, |_, _| {});
        }
    }

    /// What a snapshot keeps: every ring taken out, then trimmed to `limit`.
    fn snapshot(rings: &mut [Ring], budget: &mut Budget) -> Vec<Vec<u64>> {
        let mut lists: Vec<Vec<Vec<Record>>> = rings
            .iter_mut()
            .map(|r| {
                let (chunks, reserved) = r.take_all();
                budget.release(reserved);
                chunks
            })
            .collect();
        let mut refs: Vec<&mut Vec<Vec<Record>>> = lists.iter_mut().collect();
        keep_newest(&mut refs, budget.limit(), |_, _| {});
        lists.iter().map(|chunks| chunks.iter().flatten().map(|r| r.ts).collect()).collect()
    }

    /// Takes every record out of `ring` and gives the chunks' memory back to `budget`;
    /// returns the chunks' addresses.
    fn clear(ring: &mut Ring, budget: &mut Budget) -> Vec<usize> {
        let (chunks, reserved) = ring.take_all();
        budget.release(reserved);
        let addresses = chunks.iter().map(|c| c.as_ptr() as usize).collect();
        for c in chunks {
            budget.give_back(c);
        }
        addresses
    }

    #[test]
    fn chunks_given_back_are_reused_within_the_budget() {
        let mut budget = Budget::new(10_000);
        let mut rings = vec![Ring::default()];
        for i in 0..1000 {
            push(&mut rings, 0, &mut budget, rec(i));
        }
        let addresses = clear(&mut rings[0], &mut budget);
        assert!(budget.spare_entries > 0 && budget.spare_entries <= 10_000);
        // The next chunk starts in memory that was given back.
        push(&mut rings, 0, &mut budget, rec(1));
        assert!(addresses.contains(&(rings[0].iter().next().unwrap() as *const Record as usize)));
        // Tracing again after a clear keeps the whole budget: reused memory is grown to
        // each new chunk's size, so no chunk is sealed half full (chunks of 64 to 3906
        // entries with a budget of 1M).
        let mut budget = Budget::new(1_000_000);
        let mut rings = vec![Ring::default()];
        for round in 0..2 {
            for i in 0..20_000 {
                push(&mut rings, 0, &mut budget, rec(i));
            }
            assert_eq!(rings[0].len(), 20_000);
            // Budget held beyond the records: only the current chunk's free room.
            let reserved = rings[0].reserved();
            assert!(reserved - rings[0].len() < 3906, "round {round}: {reserved} reserved");
            clear(&mut rings[0], &mut budget);
        }
        // Memory smaller than the new chunk is grown to the chunk's whole size.
        let mut ring = Ring::default();
        ring.start_chunk(3906, Some(Vec::with_capacity(1024)));
        for i in 0..3906 {
            assert!(ring.try_push(rec(i)).is_ok(), "record {i} did not fit");
        }
        // Never more spare memory than the budget.
        let mut small = Budget::new(10);
        small.give_back(Vec::with_capacity(64));
        assert_eq!((small.spare_entries, small.spare.len()), (0, 0));
    }

    #[test]
    fn one_thread_keeps_exactly_its_last_n_records() {
        // A ring of N keeps exactly the N most recent records, whatever N and however
        // many were written (issue: N = 1000 and 1973 records kept 998).
        for limit in [1, 2, 3, 10, 255, 256, 257, 1000, 1024, 4096, 100_000, 1_048_576 + 17] {
            let max_chunk = Budget::new(limit).max_chunk;
            for count in [limit - 1, limit, limit + 1, limit + max_chunk, (2 * limit).saturating_sub(27), 3 * limit + 5]
            {
                let mut budget = Budget::new(limit);
                let mut rings = vec![Ring::default()];
                for t in 0..count as u64 {
                    push(&mut rings, 0, &mut budget, rec(t));
                    // Once more than N were written, the ring never holds fewer than N,
                    // and never more than N and one chunk.
                    let held = rings[0].len();
                    assert!(held >= limit.min(t as usize + 1), "limit {limit}, after {t}: {held}");
                    assert!(held <= limit + max_chunk);
                }
                assert!(rings[0].reserved() <= limit + max_chunk);
                let first = count.saturating_sub(limit) as u64;
                let kept = snapshot(&mut rings, &mut budget);
                assert!(kept[0].iter().copied().eq(first..count as u64), "limit {limit}, count {count}");
                // (Up to N and one chunk nothing is evicted; a snapshot that drops records
                // reports the overflow itself, see `output/snapshot.rs`.)
                assert_eq!(budget.overflowed, count > limit + max_chunk);
                assert_eq!(budget.available(), limit + max_chunk);
            }
        }
    }

    #[test]
    fn threads_share_the_budget_and_evict_globally_oldest() {
        let limit = 2048;
        let mut budget = Budget::new(limit);
        let mut rings = vec![Ring::default(), Ring::default()];
        // Thread 0 fills the buffer early, then thread 1 keeps writing.
        for t in 0..limit as u64 {
            push(&mut rings, 0, &mut budget, rec(t));
        }
        for t in 0..(limit as u64 * 2) {
            push(&mut rings, 1, &mut budget, rec(10_000 + t));
        }
        let total = rings[0].len() + rings[1].len();
        assert!(total <= limit + budget.max_chunk);
        assert!(rings[0].is_empty(), "the old thread's records are the oldest");
        // Thread 1 wrote last and alone: its last `limit` records are kept.
        let kept = snapshot(&mut rings, &mut budget);
        assert!(kept[0].is_empty());
        assert!(kept[1].iter().copied().eq(10_000 + limit as u64..10_000 + 2 * limit as u64));
    }

    #[test]
    fn threads_keep_at_most_n_and_each_its_newest() {
        // Two threads writing in turns: the snapshot keeps at most N records, each
        // thread's kept records are its most recent, and what is dropped from the front
        // goes by the time it was written, across threads. Fewer than N are kept only by
        // the room a thread reserved and has not filled (one chunk at most per thread).
        let limit = 1000;
        for turn in [1, 7, 100] {
            let mut budget = Budget::new(limit);
            let mut rings = vec![Ring::default(), Ring::default(), Ring::default()];
            let mut written: Vec<Vec<u64>> = vec![Vec::new(); 3];
            let mut t = 0u64;
            for round in 0..60 {
                let me = [0, 1, 0, 2][round % 4];
                for _ in 0..turn {
                    push(&mut rings, me, &mut budget, rec(t));
                    written[me].push(t);
                    t += 1;
                }
            }
            let unfilled: usize = rings.iter().map(|r| r.reserved() - r.len()).sum();
            let kept = snapshot(&mut rings, &mut budget);
            let total: usize = kept.iter().map(Vec::len).sum();
            assert!(total <= limit, "turn {turn}: {total}");
            assert!(total >= limit.min(t as usize).saturating_sub(unfilled), "turn {turn}: {total}, {unfilled}");
            for (k, w) in kept.iter().zip(&written) {
                assert_eq!(k[..], w[w.len() - k.len()..], "turn {turn}");
            }
        }
    }

    #[test]
    fn keep_newest_drops_the_earliest_written_first() {
        // Chunks as taken from three threads; records written at 1..=9 across them.
        let mut a = vec![vec![rec(1), rec(4)], vec![rec(7)]];
        let mut b = vec![vec![rec(2), rec(5), rec(8)]];
        let mut c = vec![vec![], vec![rec(3), rec(6), rec(9)]];
        let mut dropped = Vec::new();
        let n = keep_newest(&mut [&mut a, &mut b, &mut c], 4, |t, r| dropped.push((t, r.ts)));
        assert_eq!(n, 5);
        assert_eq!(dropped, [(0, 1), (1, 2), (2, 3), (0, 4), (1, 5)]);
        let ts = |v: &Vec<Vec<Record>>| v.iter().flatten().map(|r| r.ts).collect::<Vec<_>>();
        assert_eq!((ts(&a), ts(&b), ts(&c)), (vec![7], vec![8], vec![6, 9]));
        // Within a thread the order of the ring decides, not the time: a "B" record
        // written at stop (its time is its start) goes last.
        let mut one = vec![vec![rec(10), rec(11)], vec![Record::begin(2, 0, None)]];
        assert_eq!(keep_newest(&mut [&mut one], 1, |_, _| {}), 2);
        assert_eq!(one, vec![vec![Record::begin(2, 0, None)]]);
        // Nothing to drop, or nothing at all.
        assert_eq!(keep_newest(&mut [&mut one], 1, |_, _| {}), 0);
        assert_eq!(keep_newest(&mut [], 0, |_, _| {}), 0);
        let mut empty: Vec<Vec<Record>> = vec![vec![]];
        assert_eq!(keep_newest(&mut [&mut empty], 0, |_, _| {}), 0);
    }

    #[test]
    fn idle_threads_hold_little_budget() {
        let mut budget = Budget::new(1_000_000);
        let mut rings: Vec<Ring> = (0..100).map(|_| Ring::default()).collect();
        for (i, t) in (0..100).zip(0u64..) {
            push(&mut rings, i, &mut budget, rec(t));
        }
        assert!(budget.available() >= 1_000_000 - 100 * FIRST_CHUNK);
    }
}
