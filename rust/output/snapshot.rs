//! Taking the recorded events out of the tracer, and writing them as a Chrome trace.
//!
//! `take` moves every thread's ring out of the tracer under the GIL (no copy). The
//! Python payloads of the few rich events are rendered to JSON text while the GIL is
//! still held; then the bulk of the file is streamed with the GIL released.

use crate::buffers::payload::{Payload, Slab};
use crate::buffers::record::{Kind, Record};
use crate::buffers::ring;
use crate::clock::{self, Conversion};
use crate::core::funcs::FuncInfo;
use crate::core::Acc;
use crate::output::json::{escape_json_string, JsonWriter};
use crate::output::pyjson::write_py;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use std::io::{self, Write};
use std::sync::Arc;

pub struct ThreadSnap {
    pub tid: u64,
    pub ident: u64,
    pub name: Option<String>,
    pub chunks: Vec<Vec<Record>>,
    pub payloads: Slab,
}

impl ThreadSnap {
    fn records(&self) -> impl Iterator<Item = &Record> {
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
pub fn take(acc: &mut Acc<'_>) -> SnapData {
    let (mut data, limit) = take_all(acc);
    // The payloads of the records dropped go when the guard closes.
    drop(keep_newest(&mut data, limit));
    data
}

/// Drops the oldest records of `data` beyond `limit`; returns their payloads.
fn keep_newest(data: &mut SnapData, limit: usize) -> Vec<Payload> {
    if data.entries <= limit {
        return Vec::new();
    }
    let mut freed: Vec<(usize, u32)> = Vec::new();
    let mut lists: Vec<&mut Vec<Vec<Record>>> = data.threads.iter_mut().map(|t| &mut t.chunks).collect();
    let dropped = ring::keep_newest(&mut lists, limit, |t, r| {
        if let Some(i) = r.payload() {
            freed.push((t, i));
        }
    });
    drop(lists);
    data.entries = data.entries.saturating_sub(dropped);
    let garbage = freed.into_iter().filter_map(|(t, i)| data.threads.get_mut(t)?.payloads.remove(i)).collect();
    data.threads.retain(|t| t.records().next().is_some());
    garbage
}

/// `take`, before the records beyond the limit go; with the limit.
fn take_all(acc: &mut Acc<'_>) -> (SnapData, usize) {
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
    let overflow = st.budget.overflowed() || entries >= st.budget.limit();
    st.budget.reset_overflow();
    let data = SnapData {
        threads,
        funcs: st.funcs.infos().to_vec(),
        entries,
        overflow,
        task_names: st.task_names.clone(),
        conv: clock::conversion(),
    };
    (data, st.budget.limit())
}

/// A payload rendered to JSON text, ready to be written without the GIL.
pub enum Rendered {
    Args {
        args: Option<Vec<u8>>,
        task: u32,
    },
    Instant {
        name: String,
        args: Vec<u8>,
        scope: &'static str,
    },
    Counter {
        name: String,
        args: Vec<u8>,
    },
    Object {
        ph: char,
        id: String,
        name: String,
        args: Option<Vec<u8>>,
    },
    /// The members of a raw event dict except `pid`/`tid`, without braces.
    Raw {
        body: Vec<u8>,
    },
}

fn json_of(obj: &Bound<'_, PyAny>) -> Vec<u8> {
    let mut v = Vec::new();
    write_py(obj, &mut v);
    v
}

/// `str(obj)`, JSON-escaped.
fn escaped_str(obj: &Bound<'_, PyAny>) -> String {
    match obj.str() {
        Ok(s) => escape_json_string(&s.to_string_lossy()),
        Err(_) => String::from("Not Displayable"),
    }
}

fn render(py: Python<'_>, p: &Payload) -> Rendered {
    match p {
        Payload::FuncArgs { args, task } => {
            Rendered::Args { args: args.as_ref().map(|a| json_of(a.bind(py).as_any())), task: *task }
        }
        Payload::Instant { name, args, scope } => Rendered::Instant {
            name: escaped_str(name.bind(py)),
            args: args.as_ref().map(|a| json_of(a.bind(py))).unwrap_or_else(|| b"null".to_vec()),
            scope: scope.as_str(),
        },
        Payload::Counter { name, args } => {
            Rendered::Counter { name: escaped_str(name.bind(py)), args: json_of(args.bind(py)) }
        }
        Payload::Object { ph, id, name, args } => Rendered::Object {
            ph: *ph,
            id: escaped_str(id.bind(py)),
            name: escaped_str(name.bind(py)),
            args: args.as_ref().map(|a| json_of(a.bind(py))),
        },
        Payload::Raw(raw) => {
            let mut body = Vec::new();
            if let Ok(d) = raw.bind(py).cast::<PyDict>() {
                for (k, v) in d.iter() {
                    let key = k.cast::<PyString>().map(|s| s.to_string_lossy().into_owned()).ok();
                    if matches!(key.as_deref(), Some("pid") | Some("tid")) {
                        continue;
                    }
                    body.push(b',');
                    match key {
                        Some(k) => {
                            body.push(b'"');
                            body.extend_from_slice(escape_json_string(&k).as_bytes());
                            body.push(b'"');
                        }
                        None => body.extend_from_slice(format!("\"{}\"", escaped_str(&k)).as_bytes()),
                    }
                    body.push(b':');
                    write_py(&v, &mut body);
                }
            }
            Rendered::Raw { body }
        }
    }
}

/// Renders every payload of the snapshot (GIL held).
pub fn render_all(py: Python<'_>, data: &SnapData) -> Vec<Vec<Option<Rendered>>> {
    data.threads
        .iter()
        .map(|t| {
            let n = t.records().filter_map(Record::payload).max().map_or(0, |m| m as usize + 1);
            (0..n as u32).map(|i| t.payloads.get(i).map(|p| render(py, p))).collect()
        })
        .collect()
}

/// Process-level facts written around the events.
pub struct Header<'a> {
    pub pid: i64,
    pub process_name: &'a str,
    /// `thread_name` metadata to write, in order (threads and async tasks).
    pub thread_names: &'a [(u64, String)],
    /// The `viztracer_metadata` object, already serialised.
    pub metadata_json: &'a str,
    /// The `file_info` object, already serialised.
    pub file_info_json: Option<&'a str>,
}

/// Streams the whole trace file. Returns the sink and the number of events written
/// (metadata events not counted).
pub fn write_trace<W: Write + Send>(
    out: W,
    data: &SnapData,
    rendered: &[Vec<Option<Rendered>>],
    h: &Header<'_>,
    mut progress: impl FnMut(usize),
) -> io::Result<(W, usize)> {
    let mut w = JsonWriter::new(out);
    let pid = h.pid;
    w.raw(b"{\"traceEvents\":[\n{\"ph\":\"M\",\"pid\":");
    w.i64(pid);
    w.raw(b",\"tid\":");
    w.i64(pid);
    w.raw(b",\"name\":\"process_name\",\"args\":{\"name\":");
    w.string(h.process_name);
    w.raw(b"}}");
    for (tid, name) in h.thread_names {
        w.raw(b",\n{\"ph\":\"M\",\"pid\":");
        w.i64(pid);
        w.raw(b",\"tid\":");
        w.u64(*tid);
        w.raw(b",\"name\":\"thread_name\",\"args\":{\"name\":");
        w.string(name);
        w.raw(b"}}");
    }
    let names: Vec<String> = data.funcs.iter().map(|f| escape_json_string(&f.name)).collect();
    let conv = data.conv;
    let mut count = 0usize;
    for (t, rendered) in data.threads.iter().zip(rendered) {
        let prefix = |w: &mut JsonWriter<W>, tid: u64| {
            w.raw(b",\n{\"pid\":");
            w.i64(pid);
            w.raw(b",\"tid\":");
            w.u64(tid);
            w.raw(b",\"ts\":");
        };
        for rec in t.records() {
            let payload = rec.payload().and_then(|i| rendered.get(i as usize)).and_then(Option::as_ref);
            let ts = conv.to_ns(rec.ts);
            match rec.kind() {
                Kind::Complete | Kind::Begin => {
                    let (args, tid) = match payload {
                        Some(Rendered::Args { args, task }) => {
                            (args.as_ref(), if *task != 0 { *task as u64 } else { t.tid })
                        }
                        _ => (None, t.tid),
                    };
                    prefix(&mut w, tid);
                    w.ns_as_us(ts);
                    if rec.kind() == Kind::Complete {
                        w.raw(b",\"ph\":\"X\",\"dur\":");
                        w.ns_as_us(conv.to_ns(rec.ts.wrapping_add(rec.dur)).saturating_sub(ts));
                    } else {
                        w.raw(b",\"ph\":\"B\"");
                    }
                    w.raw(b",\"name\":\"");
                    w.str_raw(names.get(rec.func as usize).map_or("<unknown>", String::as_str));
                    w.raw(b"\"");
                    if let Some(a) = args {
                        w.raw(b",\"args\":");
                        w.raw(a);
                    }
                    w.raw(b",\"cat\":\"FEE\"}");
                }
                Kind::Payload => match payload {
                    Some(Rendered::Instant { name, args, scope }) => {
                        prefix(&mut w, t.tid);
                        w.ns_as_us(ts);
                        w.raw(b",\"ph\":\"i\",\"cat\":\"INSTANT\",\"name\":\"");
                        w.str_raw(name);
                        w.raw(b"\",\"args\":");
                        w.raw(args);
                        w.raw(b",\"s\":\"");
                        w.str_raw(scope);
                        w.raw(b"\"}");
                    }
                    Some(Rendered::Counter { name, args }) => {
                        prefix(&mut w, t.tid);
                        w.ns_as_us(ts);
                        w.raw(b",\"ph\":\"C\",\"name\":\"");
                        w.str_raw(name);
                        w.raw(b"\",\"args\":");
                        w.raw(args);
                        w.raw(b"}");
                    }
                    Some(Rendered::Object { ph, id, name, args }) => {
                        prefix(&mut w, t.tid);
                        w.ns_as_us(ts);
                        w.raw(b",\"ph\":\"");
                        w.str_raw(ph.encode_utf8(&mut [0; 4]));
                        w.raw(b"\",\"id\":\"");
                        w.str_raw(id);
                        w.raw(b"\",\"name\":\"");
                        w.str_raw(name);
                        w.raw(b"\"");
                        if let Some(a) = args {
                            w.raw(b",\"args\":");
                            w.raw(a);
                        }
                        w.raw(b"}");
                    }
                    Some(Rendered::Raw { body }) => {
                        w.raw(b",\n{\"pid\":");
                        w.i64(pid);
                        w.raw(b",\"tid\":");
                        w.u64(t.tid);
                        w.raw(body);
                        w.raw(b"}");
                    }
                    _ => continue,
                },
            }
            count += 1;
            if count & 0xFFFF == 0 {
                w.maybe_flush()?;
                progress(count);
            } else {
                w.maybe_flush()?;
            }
        }
    }
    w.raw(b"\n],\"viztracer_metadata\":");
    w.str_raw(h.metadata_json);
    if let Some(fi) = h.file_info_json {
        w.raw(b",\"file_info\":");
        w.str_raw(fi);
    }
    w.raw(b"}\n");
    progress(count);
    Ok((w.finish()?, count))
}

/// The events as Python dicts (the `tracer.data` / `load()` path).
pub fn to_events<'py>(
    py: Python<'py>,
    data: &SnapData,
    pid: i64,
    process_name: &str,
    thread_names: &[(u64, String)],
) -> PyResult<Vec<Bound<'py, PyDict>>> {
    let mut out = Vec::with_capacity(data.entries + thread_names.len() + 1);
    let meta = |tid: i64, kind: &str, name: &str| -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        d.set_item("ph", "M")?;
        d.set_item("pid", pid)?;
        d.set_item("tid", tid)?;
        d.set_item("name", kind)?;
        let a = PyDict::new(py);
        a.set_item("name", name)?;
        d.set_item("args", a)?;
        Ok(d)
    };
    out.push(meta(pid, "process_name", process_name)?);
    for (tid, name) in thread_names {
        out.push(meta(*tid as i64, "thread_name", name)?);
    }
    let names: Vec<Bound<'py, PyString>> = data.funcs.iter().map(|f| PyString::new(py, &f.name)).collect();
    let conv = data.conv;
    let us = |ns: u64| ns as f64 / 1000.0;
    for t in &data.threads {
        for rec in t.records() {
            let payload = rec.payload().and_then(|i| t.payloads.get(i));
            let ts = conv.to_ns(rec.ts);
            let d = PyDict::new(py);
            d.set_item("pid", pid)?;
            match rec.kind() {
                Kind::Complete | Kind::Begin => {
                    let (args, tid) = match payload {
                        Some(Payload::FuncArgs { args, task }) => {
                            (args.as_ref(), if *task != 0 { *task as u64 } else { t.tid })
                        }
                        _ => (None, t.tid),
                    };
                    d.set_item("tid", tid)?;
                    d.set_item("ts", us(ts))?;
                    if rec.kind() == Kind::Complete {
                        d.set_item("ph", "X")?;
                        d.set_item("dur", us(conv.to_ns(rec.ts.wrapping_add(rec.dur)).saturating_sub(ts)))?;
                    } else {
                        d.set_item("ph", "B")?;
                    }
                    match names.get(rec.func as usize) {
                        Some(n) => d.set_item("name", n)?,
                        None => d.set_item("name", "<unknown>")?,
                    }
                    if let Some(a) = args {
                        d.set_item("args", a.bind(py).copy()?)?;
                    }
                    d.set_item("cat", "FEE")?;
                }
                Kind::Payload => {
                    d.set_item("tid", t.tid)?;
                    match payload {
                        Some(Payload::Instant { name, args, scope }) => {
                            d.set_item("ts", us(ts))?;
                            d.set_item("ph", "i")?;
                            d.set_item("cat", "INSTANT")?;
                            d.set_item("name", name.bind(py))?;
                            d.set_item("args", args.as_ref().map(|a| a.bind(py).clone()))?;
                            d.set_item("s", scope.as_str())?;
                        }
                        Some(Payload::Counter { name, args }) => {
                            d.set_item("ts", us(ts))?;
                            d.set_item("ph", "C")?;
                            d.set_item("name", name.bind(py))?;
                            d.set_item("args", args.bind(py))?;
                        }
                        Some(Payload::Object { ph, id, name, args }) => {
                            d.set_item("ts", us(ts))?;
                            d.set_item("ph", ph.to_string())?;
                            d.set_item("id", id.bind(py).str()?)?;
                            d.set_item("name", name.bind(py))?;
                            if let Some(a) = args {
                                d.set_item("args", a.bind(py))?;
                            }
                        }
                        Some(Payload::Raw(raw)) => {
                            if let Ok(r) = raw.bind(py).cast::<PyDict>() {
                                for (k, v) in r.iter() {
                                    d.set_item(k, v)?;
                                }
                            }
                            d.set_item("pid", pid)?;
                            d.set_item("tid", t.tid)?;
                        }
                        _ => continue,
                    }
                }
            }
            out.push(d);
        }
    }
    Ok(out)
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
