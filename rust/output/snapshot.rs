//! Taking the recorded events out of the tracer: `take` moves every thread's ring out
//! under the GIL (no copy). `event::walk` describes them to the outputs.

use crate::buffers::payload::Slab;
use crate::buffers::record::{Kind, Record};
use crate::buffers::ring;
use crate::clock::{self, Conversion};
use crate::state::funcs::FuncInfo;
use crate::state::Access;
use std::sync::Arc;

pub struct ThreadSnap {
    pub tid: u64,
    pub ident: u64,
    pub name: Option<String>,
    pub chunks: Vec<Vec<Record>>,
    pub payloads: Slab,
}

impl ThreadSnap {
    pub fn records(&self) -> impl Iterator<Item = &Record> {
        self.chunks.iter().flatten()
    }
}

pub struct SnapData {
    pub threads: Vec<ThreadSnap>,
    pub funcs: Vec<Arc<FuncInfo>>,
    pub entries: usize,
    pub overflow: bool,
    pub task_names: Vec<(u32, String)>,
    pub conv: Conversion,
}

/// Moves every recorded event out of the guard's tracer: the `tracer_entries` most
/// recent (the rings may hold one chunk more, see `buffers/ring.rs`).
pub fn take(acc: &mut Access<'_>) -> SnapData {
    let mut data = take_all(acc);
    keep_newest(&mut data, acc.state().budget.limit());
    data
}

/// Drops the oldest records of `data` beyond `limit`, and their payloads (whose
/// Python objects go when the guard closes).
fn keep_newest(data: &mut SnapData, limit: usize) {
    if data.entries <= limit {
        return;
    }
    let mut freed: Vec<(usize, u32)> = Vec::new();
    let mut lists: Vec<&mut Vec<Vec<Record>>> = data.threads.iter_mut().map(|t| &mut t.chunks).collect();
    let dropped = ring::keep_newest(&mut lists, limit, |t, r| freed.extend(r.payload().map(|i| (t, i))));
    data.entries = data.entries.saturating_sub(dropped);
    for (t, i) in freed {
        drop(data.threads[t].payloads.remove(i));
    }
    data.threads.retain(|t| t.records().next().is_some());
}

/// `take`, before the records beyond the limit go.
fn take_all(acc: &mut Access<'_>) -> SnapData {
    let (st, list) = acc.threads();
    let mut threads = Vec::with_capacity(list.len());
    let mut entries = 0;
    for (_, t) in list.iter_mut() {
        let (chunks, reserved) = t.ring.take_all();
        st.budget.release(reserved);
        let payloads = std::mem::take(&mut t.payloads);
        let n: usize = chunks.iter().map(Vec::len).sum();
        entries += n;
        if n > 0 {
            threads.push(ThreadSnap { tid: t.tid, ident: t.ident, name: t.name.clone(), chunks, payloads });
        }
    }
    let overflow = st.budget.overflowed || entries >= st.budget.limit();
    st.budget.overflowed = false;
    SnapData {
        threads,
        funcs: st.funcs.infos().to_vec(),
        entries,
        overflow,
        task_names: st.task_names.clone(),
        conv: clock::conversion(),
    }
}

/// The Python functions that appear in the snapshot: `(name, file, first line)`.
pub fn functions(data: &SnapData) -> Vec<(String, String, u32)> {
    let mut used = vec![false; data.funcs.len()];
    for t in &data.threads {
        for rec in t.records() {
            if rec.kind() != Kind::Payload {
                if let Some(u) = used.get_mut(rec.func as usize) {
                    *u = true;
                }
            }
        }
    }
    data.funcs
        .iter()
        .zip(used)
        .filter(|(_, u)| *u)
        .filter_map(|(f, _)| f.source.as_ref().map(|(file, line)| (f.name.to_string(), file.clone(), *line)))
        .collect()
}
