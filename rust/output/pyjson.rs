//! Python objects → JSON text, for the `args` of events.
//!
//! Follows `json.dumps` for everything JSON can express. Where `json.dumps` would
//! raise (sets, arbitrary objects, cycles, non-finite floats) we write a string
//! instead: a trace should never fail to save because of one odd argument.

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use std::io::Write;

const MAX_DEPTH: usize = 64;

/// Appends the JSON form of `obj` to `out`.
pub fn write_py(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) {
    write_value(obj, out, 0);
}

/// Appends `s` as a JSON string.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    if s.bytes().all(|b| (0x20..0x80).contains(&b) && b != b'"' && b != b'\\') {
        out.extend_from_slice(s.as_bytes());
    } else {
        for c in s.chars() {
            match c {
                '"' => out.extend_from_slice(b"\\\""),
                '\\' => out.extend_from_slice(b"\\\\"),
                '\n' => out.extend_from_slice(b"\\n"),
                '\r' => out.extend_from_slice(b"\\r"),
                '\t' => out.extend_from_slice(b"\\t"),
                '\u{08}' => out.extend_from_slice(b"\\b"),
                '\u{0c}' => out.extend_from_slice(b"\\f"),
                c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
    }
    out.push(b'"');
}

fn write_pystr(s: &Bound<'_, PyString>, out: &mut Vec<u8>) {
    write_str(&s.to_string_lossy(), out);
}

/// `str(obj)` or `repr(obj)` (`text`) as a JSON string, for values JSON cannot hold.
pub fn write_text(text: PyResult<Bound<'_, PyString>>, out: &mut Vec<u8>) {
    match text {
        Ok(s) => write_pystr(&s, out),
        Err(_) => write_str("Not Displayable", out),
    }
}

fn write_float(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        // serde_json (ryu) gives the shortest round-trip form, "1.0" for 1.0 like Python.
        let _ = serde_json::to_writer(&mut *out, &v);
    } else if v.is_nan() {
        write_str("NaN", out);
    } else if v > 0.0 {
        write_str("Infinity", out);
    } else {
        write_str("-Infinity", out);
    }
}

fn write_int(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>) {
    if let Ok(v) = obj.extract::<i64>() {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else if let Ok(v) = obj.extract::<u64>() {
        out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
    } else {
        // Arbitrary precision: JSON numbers have no size limit.
        match obj.str() {
            Ok(s) => out.extend_from_slice(s.to_string_lossy().as_bytes()),
            Err(_) => out.extend_from_slice(b"null"),
        }
    }
}

fn write_key(key: &Bound<'_, PyAny>, out: &mut Vec<u8>) {
    if let Ok(s) = key.cast::<PyString>() {
        write_pystr(s, out);
    } else if key.is_instance_of::<PyBool>() {
        write_str(if key.is_truthy().unwrap_or(false) { "true" } else { "false" }, out);
    } else if key.is_none() {
        write_str("null", out);
    } else if key.is_instance_of::<PyInt>() || key.is_instance_of::<PyFloat>() {
        let mut tmp = Vec::new();
        write_value(key, &mut tmp, MAX_DEPTH);
        write_str(&String::from_utf8_lossy(&tmp), out);
    } else {
        write_text(key.str(), out);
    }
}

fn write_value(obj: &Bound<'_, PyAny>, out: &mut Vec<u8>, depth: usize) {
    if let Ok(s) = obj.cast::<PyString>() {
        write_pystr(s, out);
    } else if obj.is_none() {
        out.extend_from_slice(b"null");
    } else if let Ok(b) = obj.cast::<PyBool>() {
        out.extend_from_slice(if b.is_true() { b"true" } else { b"false" });
    } else if obj.is_instance_of::<PyInt>() {
        write_int(obj, out);
    } else if let Ok(f) = obj.cast::<PyFloat>() {
        write_float(f.value(), out);
    } else if depth >= MAX_DEPTH {
        write_text(obj.repr(), out);
    } else if let Ok(d) = obj.cast::<PyDict>() {
        out.push(b'{');
        for (i, (k, v)) in d.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_key(&k, out);
            out.push(b':');
            write_value(&v, out, depth + 1);
        }
        out.push(b'}');
    } else if let Ok(l) = obj.cast::<PyList>() {
        write_array(l.iter(), out, depth);
    } else if let Ok(t) = obj.cast::<PyTuple>() {
        write_array(t.iter(), out, depth);
    } else {
        write_text(obj.repr(), out);
    }
}

/// The items of a list or a tuple, as a JSON array.
fn write_array<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, out: &mut Vec<u8>, depth: usize) {
    out.push(b'[');
    for (i, v) in items.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_value(&v, out, depth + 1);
    }
    out.push(b']');
}
