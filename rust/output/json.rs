//! The trace file: `write_trace` streams the events `event::walk` describes to a
//! `JsonSink`, in the envelope of `viztracer/trace_writer.py`.
//!
//! `JsonWriter` formats by hand: numbers with integer formatting (timestamps as
//! fixed-point µs from integer ns: floating-point formatting is several times slower
//! and loses precision at epoch-scale values), names escaped once per function and
//! copied as bytes, output through a buffer that is flushed in 1 MiB pieces. The Python
//! values of rich events are JSON text (`Json`, made while the GIL is held), so the
//! file is written without it.

use crate::output::event::{walk, Form, Key, Rendered, Sink, Value};
use crate::output::pyjson::{write_py, write_str, write_text};
use crate::output::snapshot::SnapData;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyString};
use std::io::{self, Write};

const FLUSH_AT: usize = 1 << 20;

pub struct JsonWriter<W: Write> {
    buf: Vec<u8>,
    out: W,
}

impl<W: Write> JsonWriter<W> {
    pub fn new(out: W) -> Self {
        JsonWriter { buf: Vec::with_capacity(FLUSH_AT + 64 * 1024), out }
    }

    #[inline(always)]
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A quoted, escaped JSON string.
    pub fn string(&mut self, s: &str) {
        write_str(s, &mut self.buf);
    }

    /// Nanoseconds as microseconds with exactly three decimals: `1234567` → `1234.567`.
    #[inline(always)]
    pub fn ns_as_us(&mut self, ns: u64) {
        self.buf.extend_from_slice(itoa::Buffer::new().format(ns / 1000).as_bytes());
        let frac = (ns % 1000) as u16;
        self.buf.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
    }

    /// The bytes written since the last flush.
    #[inline(always)]
    pub fn pos(&self) -> usize {
        self.buf.len()
    }

    /// Overwrites the byte at `at` (a `pos`), if it is still in the buffer.
    #[inline(always)]
    pub fn set(&mut self, at: usize, byte: u8) {
        if let Some(b) = self.buf.get_mut(at) {
            *b = byte;
        }
    }

    /// Writes the buffer out when it is large enough.
    #[inline(always)]
    pub fn maybe_flush(&mut self) -> io::Result<()> {
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf)?;
            self.buf.clear();
        }
        Ok(())
    }

    /// Flushes everything and returns the sink.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The JSON form of the Python values of rich events: their JSON text.
pub struct Json;

impl<'py> Form<'py> for Json {
    type Value = Vec<u8>;

    fn value(obj: &Bound<'py, PyAny>) -> PyResult<Vec<u8>> {
        // Room for most arguments at once, then only what they took.
        let mut v = Vec::with_capacity(256);
        write_py(obj, &mut v);
        v.shrink_to_fit();
        Ok(v)
    }

    fn name(obj: &Bound<'py, PyAny>) -> PyResult<Vec<u8>> {
        let mut v = Vec::new();
        write_text(obj.str(), &mut v);
        Ok(v)
    }

    /// The members but `pid` and `tid`, each after a comma (see `JsonSink`).
    fn raw(obj: &Bound<'py, PyAny>, ts_offset_ns: i64) -> PyResult<Vec<u8>> {
        let mut v = Vec::new();
        if let Ok(d) = obj.cast::<PyDict>() {
            for (k, value) in d.iter() {
                let key = k.cast::<PyString>().map(|s| s.to_string_lossy());
                if matches!(key.as_deref(), Ok("pid" | "tid")) {
                    continue;
                }
                let shift = ts_offset_ns != 0 && matches!(key.as_deref(), Ok("ts"));
                v.push(b',');
                match key {
                    Ok(s) => write_str(&s, &mut v),
                    Err(_) => write_text(k.str(), &mut v),
                }
                v.push(b':');
                match shift.then(|| shifted_us(&value, ts_offset_ns)).flatten() {
                    Some(us) => write_py(PyFloat::new(obj.py(), us).as_any(), &mut v),
                    None => write_py(&value, &mut v),
                }
            }
        }
        Ok(v)
    }
}

/// A number of µs (not a bool) moved by `offset_ns`.
fn shifted_us(value: &Bound<'_, PyAny>, offset_ns: i64) -> Option<f64> {
    if value.is_instance_of::<PyBool>() || !(value.is_instance_of::<PyInt>() || value.is_instance_of::<PyFloat>()) {
        return None;
    }
    Some(value.extract::<f64>().ok()? + offset_ns as f64 / 1000.0)
}

/// Writes each event on a line of its own. A field is `,"key":value`; the comma
/// before an event's first field becomes its opening brace when the event ends.
pub struct JsonSink<W: Write> {
    w: JsonWriter<W>,
    /// Every function's name as a JSON string, by id.
    names: Vec<Vec<u8>>,
    /// The last integer field of each key, written out with its key: the `pid` and
    /// `tid` of most events are those of the event before.
    ints: [(i128, Vec<u8>); KEYS],
    /// Where the event being written starts.
    start: usize,
    first: bool,
    /// Added to every `ts` (see `Header::ts_offset_ns`).
    ts_offset_ns: i64,
}

const KEYS: usize = Key::Scope as usize + 1;

/// `,"key":"`: the key of a string, the key of another value without the last byte.
/// (A constant per call site of `field`, where a table would be read at run time.)
fn key_json(key: Key) -> &'static [u8] {
    match key {
        Key::Ph => b",\"ph\":\"",
        Key::Pid => b",\"pid\":\"",
        Key::Tid => b",\"tid\":\"",
        Key::Ts => b",\"ts\":\"",
        Key::Dur => b",\"dur\":\"",
        Key::Id => b",\"id\":\"",
        Key::Name => b",\"name\":\"",
        Key::Cat => b",\"cat\":\"",
        Key::Args => b",\"args\":\"",
        Key::Scope => b",\"s\":\"",
    }
}

impl<W: Write> JsonSink<W> {
    #[inline(always)]
    fn int(&mut self, key: Key, v: i128) {
        let (last, text) = &mut self.ints[key as usize];
        if *last != v {
            let json = key_json(key);
            text.clear();
            text.extend_from_slice(&json[..json.len() - 1]);
            text.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            *last = v;
        }
        self.w.raw(text);
    }
}

impl<W: Write> Sink for JsonSink<W> {
    type Value = Vec<u8>;
    type Error = io::Error;

    #[inline(always)]
    fn begin(&mut self) -> io::Result<()> {
        self.w.raw(if self.first { b"\n" } else { b",\n" });
        self.first = false;
        self.start = self.w.pos();
        Ok(())
    }

    #[inline(always)]
    fn field(&mut self, key: Key, value: Value<'_, Vec<u8>>) -> io::Result<()> {
        let json = key_json(key);
        let (w, key_only) = (&mut self.w, &json[..json.len() - 1]);
        match value {
            Value::Int(v) => self.int(key, v.into()),
            Value::UInt(v) => self.int(key, v.into()),
            Value::Str(s) => {
                w.raw(json);
                w.raw(s.as_bytes());
                w.raw(b"\"");
            }
            Value::Us(ns) => {
                w.raw(key_only);
                w.ns_as_us(if key == Key::Ts { ns.saturating_add_signed(self.ts_offset_ns) } else { ns });
            }
            Value::NameArgs(name) => {
                w.raw(key_only);
                w.raw(b"{\"name\":");
                w.string(name);
                w.raw(b"}");
            }
            Value::Func(f) => {
                w.raw(key_only);
                w.raw(self.names.get(f as usize).map_or(b"\"<unknown>\"", Vec::as_slice));
            }
            Value::Obj(v) => {
                w.raw(key_only);
                w.raw(v);
            }
        }
        Ok(())
    }

    fn members(&mut self, raw: &Vec<u8>) -> io::Result<()> {
        self.w.raw(raw);
        Ok(())
    }

    #[inline(always)]
    fn end(&mut self) -> io::Result<()> {
        self.w.set(self.start, b'{');
        self.w.raw(b"}");
        self.w.maybe_flush()
    }
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
    /// Added to every event's `ts`: this process's clock offset to the collector's
    /// (`viztracer/clock_sync.py`), so that the events land on the collector's time axis.
    pub ts_offset_ns: i64,
}

/// Streams the whole trace file; `rendered` is `event::render_all::<Json>`'s. Returns
/// the sink and the number of events written (metadata events not counted).
pub fn write_trace<W: Write + Send>(
    out: W,
    data: &SnapData,
    rendered: &[Vec<Option<Rendered<Vec<u8>>>>],
    h: &Header<'_>,
    mut progress: impl FnMut(usize),
) -> io::Result<(W, usize)> {
    let names = data
        .funcs
        .iter()
        .map(|f| {
            let mut v = Vec::new();
            write_str(&f.name, &mut v);
            v
        })
        .collect();
    let ints = std::array::from_fn(|_| (i128::MIN, Vec::new()));
    let mut s = JsonSink { w: JsonWriter::new(out), names, ints, start: 0, first: true, ts_offset_ns: h.ts_offset_ns };
    s.w.raw(b"{\"traceEvents\":[");
    let count = walk(&mut s, data, rendered, (h.pid, h.process_name, h.thread_names), &mut progress)?;
    let w = &mut s.w;
    w.raw(b"\n],\"viztracer_metadata\":");
    w.raw(h.metadata_json.as_bytes());
    if let Some(fi) = h.file_info_json {
        w.raw(b",\"file_info\":");
        w.raw(fi.as_bytes());
    }
    w.raw(b"}\n");
    progress(count);
    Ok((s.w.finish()?, count))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(f: impl FnOnce(&mut JsonWriter<Vec<u8>>)) -> String {
        let mut w = JsonWriter::new(Vec::new());
        f(&mut w);
        String::from_utf8(w.finish().unwrap()).unwrap()
    }

    #[test]
    fn escapes_like_json() {
        let s = "a\"b\\c\nd\te\u{1}f é 😀\u{2028}";
        assert_eq!(serde_json::from_str::<String>(&render(|w| w.string(s))).unwrap(), s);
        assert_eq!(render(|w| w.string("plain")), "\"plain\"");
    }

    #[test]
    fn timestamps_are_fixed_point_microseconds() {
        assert_eq!(render(|w| w.ns_as_us(0)), "0.000");
        assert_eq!(render(|w| w.ns_as_us(1_234_567)), "1234.567");
        assert_eq!(render(|w| w.ns_as_us(1_000_005)), "1000.005");
        // Epoch-scale values keep every nanosecond.
        assert_eq!(render(|w| w.ns_as_us(1_767_325_615_896_926_966)), "1767325615896926.966");
    }

    #[test]
    fn writes_what_walk_describes() {
        use crate::buffers::payload::Slab;
        use crate::buffers::record::Record;
        use crate::clock::Conversion;
        use crate::output::snapshot::{SnapData, ThreadSnap};
        use crate::state::funcs::FuncInfo;
        use std::sync::Arc;
        let thread = |tid, chunks| ThreadSnap { tid, ident: tid, name: None, chunks, payloads: Slab::default() };
        let data = SnapData {
            threads: vec![
                thread(7, vec![vec![Record::complete(1_500, 2_250, 0, None)], vec![Record::begin(5_000, 9, None)]]),
                thread(8, vec![vec![Record::complete(2_000, 1, 0, None)]]),
            ],
            funcs: vec![Arc::new(FuncInfo { name: "f \"q\"".into(), source: None })],
            entries: 3,
            overflow: false,
            task_names: Vec::new(),
            conv: Conversion::identity(),
        };
        let names = [(7, "T\n".to_string())];
        let mut h = Header {
            pid: 5,
            process_name: "P",
            thread_names: &names,
            metadata_json: "{}",
            file_info_json: None,
            ts_offset_ns: 0,
        };
        let (out, n) = write_trace(Vec::new(), &data, &[vec![], vec![]], &h, |_| {}).unwrap();
        assert_eq!(n, 3);
        let expected = r#"{"traceEvents":[
{"ph":"M","pid":5,"tid":5,"name":"process_name","args":{"name":"P"}},
{"ph":"M","pid":5,"tid":7,"name":"thread_name","args":{"name":"T\n"}},
{"pid":5,"tid":7,"ts":1.500,"ph":"X","dur":2.250,"name":"f \"q\"","cat":"FEE"},
{"pid":5,"tid":7,"ts":5.000,"ph":"B","name":"<unknown>","cat":"FEE"},
{"pid":5,"tid":8,"ts":2.000,"ph":"X","dur":0.001,"name":"f \"q\"","cat":"FEE"}
],"viztracer_metadata":{}}
"#;
        assert_eq!(String::from_utf8(out).unwrap(), expected);
        // An offset moves every ts (not the durations).
        h.ts_offset_ns = -500;
        let (out, _) = write_trace(Vec::new(), &data, &[vec![], vec![]], &h, |_| {}).unwrap();
        let shifted = expected.replace("\"ts\":1.500", "\"ts\":1.000").replace("\"ts\":5.000", "\"ts\":4.500");
        assert_eq!(String::from_utf8(out).unwrap(), shifted.replace("\"ts\":2.000", "\"ts\":1.500"));
    }

    #[test]
    fn flushes_in_pieces() {
        let mut w = JsonWriter::new(Vec::new());
        for _ in 0..(FLUSH_AT / 10 + 10) {
            w.raw(b"0123456789");
            w.maybe_flush().unwrap();
        }
        let out = w.finish().unwrap();
        assert_eq!(out.len(), (FLUSH_AT / 10 + 10) * 10);
    }
}
