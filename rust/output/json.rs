//! A small streaming JSON writer for trace files.
//!
//! Numbers are written with integer formatting (timestamps as fixed-point µs from
//! integer ns: floating-point formatting is several times slower and loses precision
//! at epoch-scale values), names are escaped once per function and copied as bytes,
//! and output goes through a buffer that is flushed in 1 MiB pieces.

use std::io::{self, Write};

const FLUSH_AT: usize = 1 << 20;

/// Escapes `s` as the inside of a JSON string (no surrounding quotes).
pub fn escape_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || c == '\u{2028}' || c == '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}

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

    #[inline(always)]
    pub fn str_raw(&mut self, s: &str) {
        self.buf.extend_from_slice(s.as_bytes());
    }

    /// A quoted, escaped JSON string.
    pub fn string(&mut self, s: &str) {
        self.buf.push(b'"');
        if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\' && b < 0x80) {
            self.buf.extend_from_slice(s.as_bytes());
        } else {
            self.buf.extend_from_slice(escape_json_string(s).as_bytes());
        }
        self.buf.push(b'"');
    }

    #[inline(always)]
    pub fn u64(&mut self, v: u64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
    }

    #[inline(always)]
    pub fn i64(&mut self, v: i64) {
        let mut b = itoa::Buffer::new();
        self.buf.extend_from_slice(b.format(v).as_bytes());
    }

    /// Nanoseconds as microseconds with exactly three decimals: `1234567` → `1234.567`.
    #[inline(always)]
    pub fn ns_as_us(&mut self, ns: u64) {
        self.u64(ns / 1000);
        let frac = (ns % 1000) as u16;
        self.buf.extend_from_slice(&[
            b'.',
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ]);
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
        let s = "a\"b\\c\nd\te\u{1}f é 😀";
        let ours = format!("\"{}\"", escape_json_string(s));
        assert_eq!(serde_json::from_str::<String>(&ours).unwrap(), s);
        assert_eq!(render(|w| w.string(s)), ours);
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
    fn integers() {
        assert_eq!(
            render(|w| {
                w.u64(u64::MAX);
                w.raw(b",");
                w.i64(-5)
            }),
            "18446744073709551615,-5"
        );
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
