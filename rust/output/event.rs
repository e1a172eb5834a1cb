//! The trace's events, described once for every output.
//!
//! `walk` goes through a snapshot and describes each event to a `Sink`, field by field
//! in the order of the trace file: `begin`, `field(key, value)`..., `end`. The JSON
//! file (`json::JsonSink`) and the dicts of `tracer.data` (`dicts::Dicts`) are two
//! sinks of it; another format is one more `Sink`.
//!
//! The values of rich events (the arguments of a function, instants, counters, objects,
//! raw events) are Python objects. Each output takes them in its own form (`Form`,
//! `render_all`) while the GIL is held, so that a sink can write without it.

use crate::buffers::payload::{Payload, Scope};
use crate::buffers::record::{Kind, Record};
use crate::clock::Conversion;
use crate::output::snapshot::SnapData;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The keys of the events' fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Ph,
    Pid,
    Tid,
    Ts,
    Dur,
    Id,
    Name,
    Cat,
    Args,
    /// The scope of an instant (`"s"`).
    Scope,
}

impl Key {
    pub fn name(self) -> &'static str {
        match self {
            Key::Ph => "ph",
            Key::Pid => "pid",
            Key::Tid => "tid",
            Key::Ts => "ts",
            Key::Dur => "dur",
            Key::Id => "id",
            Key::Name => "name",
            Key::Cat => "cat",
            Key::Args => "args",
            Key::Scope => "s",
        }
    }
}

/// The value of a field; `V` is the sink's form of a Python value.
pub enum Value<'a, V> {
    Int(i64),
    UInt(u64),
    /// Nanoseconds, written as microseconds.
    Us(u64),
    /// A string written as it is, never escaped (`ph`, `cat`, `s`, the kinds of metadata).
    Str(&'a str),
    /// `{"name": …}`, the args of a metadata event.
    NameArgs(&'a str),
    /// A function's name, by its id in the snapshot's function table.
    Func(u32),
    /// A Python value of a rich event.
    Obj(&'a V),
}

/// Where events are described to. An event is `begin`, its fields (for a raw event:
/// `pid`, `tid`, then the `members` of its dict), `end`.
pub trait Sink {
    /// The form of the Python values of rich events (a `Form`'s).
    type Value;
    type Error;
    fn begin(&mut self) -> Result<(), Self::Error>;
    fn field(&mut self, key: Key, value: Value<'_, Self::Value>) -> Result<(), Self::Error>;
    /// The members of a raw event's dict; its `pid` and `tid` are the fields before.
    fn members(&mut self, raw: &Self::Value) -> Result<(), Self::Error>;
    fn end(&mut self) -> Result<(), Self::Error>;
}

/// How an output takes the Python values of rich events (GIL held). Each is a `value`
/// unless the output says otherwise (an id is a `name`).
pub trait Form<'py> {
    type Value;
    /// The `args` of an instant (`None` if it has none), a counter or an object.
    fn value(obj: &Bound<'py, PyAny>) -> PyResult<Self::Value>;
    /// The `args` of a function: its arguments, return value and `add_func_args` keys.
    fn func_args(args: &Bound<'py, PyDict>) -> PyResult<Self::Value> {
        Self::value(args.as_any())
    }
    /// The name of an instant, counter or object.
    fn name(obj: &Bound<'py, PyAny>) -> PyResult<Self::Value> {
        Self::value(obj)
    }
    /// The id of an object.
    fn id(obj: &Bound<'py, PyAny>) -> PyResult<Self::Value> {
        Self::name(obj)
    }
    /// A raw event's dict; its number `ts` (µs) moved by `ts_offset_ns` (see `json::Header`).
    fn raw(obj: &Bound<'py, PyAny>, _ts_offset_ns: i64) -> PyResult<Self::Value> {
        Self::value(obj)
    }
}

/// A payload with its Python values in an output's form.
pub enum Rendered<V> {
    Args { args: Option<V>, task: u32 },
    Instant { name: V, args: V, scope: Scope },
    Counter { name: V, args: V },
    Object { ph: char, id: V, name: V, args: Option<V> },
    Raw(V),
}

fn render<'py, F: Form<'py>>(py: Python<'py>, p: &Payload, ts_offset_ns: i64) -> PyResult<Rendered<F::Value>> {
    Ok(match p {
        Payload::FuncArgs { args, task } => {
            Rendered::Args { args: args.as_ref().map(|a| F::func_args(a.bind(py))).transpose()?, task: *task }
        }
        Payload::Instant { name, args, scope } => Rendered::Instant {
            name: F::name(name.bind(py))?,
            args: match args {
                Some(a) => F::value(a.bind(py))?,
                None => F::value(&py.None().into_bound(py))?,
            },
            scope: *scope,
        },
        Payload::Counter { name, args } => {
            Rendered::Counter { name: F::name(name.bind(py))?, args: F::value(args.bind(py))? }
        }
        Payload::Object { ph, id, name, args } => Rendered::Object {
            ph: *ph,
            id: F::id(id.bind(py))?,
            name: F::name(name.bind(py))?,
            args: args.as_ref().map(|a| F::value(a.bind(py))).transpose()?,
        },
        Payload::Raw(raw) => Rendered::Raw(F::raw(raw.bind(py), ts_offset_ns)?),
    })
}

/// Every payload of the snapshot in the form `F`, by thread and payload index.
pub type RenderedAll<V> = Vec<Vec<Option<Rendered<V>>>>;

/// Renders every payload of the snapshot (GIL held).
pub fn render_all<'py, F: Form<'py>>(
    py: Python<'py>,
    data: &SnapData,
    ts_offset_ns: i64,
) -> PyResult<RenderedAll<F::Value>> {
    let mut all = Vec::with_capacity(data.threads.len());
    for t in &data.threads {
        let n = t.records().filter_map(Record::payload).max().map_or(0, |m| m + 1);
        let mut rendered = Vec::with_capacity(n as usize);
        for i in 0..n {
            rendered.push(t.payloads.get(i).map(|p| render::<F>(py, p, ts_offset_ns)).transpose()?);
        }
        all.push(rendered);
    }
    Ok(all)
}

/// `begin`, then the fields every timed event starts with.
#[inline(always)]
fn head<S: Sink>(s: &mut S, pid: i64, tid: u64, ts: u64, ph: &str) -> Result<(), S::Error> {
    s.begin()?;
    s.field(Key::Pid, Value::Int(pid))?;
    s.field(Key::Tid, Value::UInt(tid))?;
    s.field(Key::Ts, Value::Us(ts))?;
    s.field(Key::Ph, Value::Str(ph))
}

/// Describes the event of one record of thread `tid`; false if it has none.
#[inline(always)]
fn describe<S: Sink>(
    s: &mut S,
    (pid, tid, conv): (i64, u64, Conversion),
    rec: &Record,
    payload: Option<&Rendered<S::Value>>,
) -> Result<bool, S::Error> {
    let ts = conv.to_ns(rec.ts);
    match (rec.kind(), payload) {
        (Kind::Complete | Kind::Begin, p) => {
            let (args, tid) = match p {
                Some(Rendered::Args { args, task }) => (args.as_ref(), if *task != 0 { *task as u64 } else { tid }),
                _ => (None, tid),
            };
            if rec.kind() == Kind::Complete {
                head(s, pid, tid, ts, "X")?;
                s.field(Key::Dur, Value::Us(conv.to_ns(rec.ts.wrapping_add(rec.dur)).saturating_sub(ts)))?;
            } else {
                head(s, pid, tid, ts, "B")?;
            }
            s.field(Key::Name, Value::Func(rec.func))?;
            if let Some(a) = args {
                s.field(Key::Args, Value::Obj(a))?;
            }
            s.field(Key::Cat, Value::Str("FEE"))?;
        }
        (Kind::Payload, Some(Rendered::Instant { name, args, scope })) => {
            head(s, pid, tid, ts, "i")?;
            s.field(Key::Cat, Value::Str("INSTANT"))?;
            s.field(Key::Name, Value::Obj(name))?;
            s.field(Key::Args, Value::Obj(args))?;
            s.field(Key::Scope, Value::Str(scope.as_str()))?;
        }
        (Kind::Payload, Some(Rendered::Counter { name, args })) => {
            head(s, pid, tid, ts, "C")?;
            s.field(Key::Name, Value::Obj(name))?;
            s.field(Key::Args, Value::Obj(args))?;
        }
        (Kind::Payload, Some(Rendered::Object { ph, id, name, args })) => {
            head(s, pid, tid, ts, ph.encode_utf8(&mut [0; 4]))?;
            s.field(Key::Id, Value::Obj(id))?;
            s.field(Key::Name, Value::Obj(name))?;
            if let Some(a) = args {
                s.field(Key::Args, Value::Obj(a))?;
            }
        }
        (Kind::Payload, Some(Rendered::Raw(raw))) => {
            s.begin()?;
            s.field(Key::Pid, Value::Int(pid))?;
            s.field(Key::Tid, Value::UInt(tid))?;
            s.members(raw)?;
        }
        (Kind::Payload, _) => return Ok(false),
    }
    s.end()?;
    Ok(true)
}

/// A metadata event: the name of the process or of a thread.
fn meta<S: Sink>(s: &mut S, pid: i64, tid: Value<'_, S::Value>, kind: &str, name: &str) -> Result<(), S::Error> {
    s.begin()?;
    s.field(Key::Ph, Value::Str("M"))?;
    s.field(Key::Pid, Value::Int(pid))?;
    s.field(Key::Tid, tid)?;
    s.field(Key::Name, Value::Str(kind))?;
    s.field(Key::Args, Value::NameArgs(name))?;
    s.end()
}

/// Describes the whole trace to `s`: the name of the process and of each thread
/// (`thread_names`: threads and async tasks), then the events of every thread. Returns
/// the number of events (metadata events not counted), which `progress` is also told
/// every 65,536 events.
pub fn walk<S: Sink>(
    s: &mut S,
    data: &SnapData,
    rendered: &[Vec<Option<Rendered<S::Value>>>],
    (pid, process_name, thread_names): (i64, &str, &[(u64, String)]),
    mut progress: impl FnMut(usize),
) -> Result<usize, S::Error> {
    meta(s, pid, Value::Int(pid), "process_name", process_name)?;
    for (tid, name) in thread_names {
        meta(s, pid, Value::UInt(*tid), "thread_name", name)?;
    }
    let mut count = 0usize;
    for (t, rendered) in data.threads.iter().zip(rendered) {
        for rec in t.records() {
            let payload = rec.payload().and_then(|i| rendered.get(i as usize)).and_then(Option::as_ref);
            if describe(s, (pid, t.tid, data.conv), rec, payload)? {
                count += 1;
                if count & 0xFFFF == 0 {
                    progress(count);
                }
            }
        }
    }
    Ok(count)
}
