//! `_snaptrace.Snapshot`: recorded events taken out of a tracer, written to a file
//! by `output::json` with the GIL released.

use crate::api::error::TraceError;
use crate::buffers::payload::Payload;
use crate::ffi::{self, held};
use crate::output::json::{self, Header, Json};
use crate::output::snapshot::{self, SnapData};
use crate::output::{dicts, event};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};
use std::io::{self, BufWriter, Write};
use std::sync::{RwLock, TryLockError};

/// `(tid, ident, name seen at the first event, number of events)`.
type ThreadRow = (u64, u64, Option<String>, usize);

/// Recorded events taken out of a tracer, ready to be written or loaded.
#[pyclass(module = "viztracer._snaptrace", frozen)]
pub struct Snapshot {
    /// `None` once released. A write holds it exclusively, also while the GIL is
    /// released; readers share it. Nothing waits for it: a method that cannot have it
    /// at once raises (`try_read`, `try_write`).
    data: RwLock<Option<SnapData>>,
}

const BUSY: &str = "the snapshot is being written by another thread";
const RELEASED: &str = "the snapshot was released";

/// The lock's guard even if a panic (turned into a Python exception) poisoned it: the
/// data is never left half-changed (it is only taken whole).
fn unpoisoned<G>(r: std::sync::TryLockResult<G>) -> PyResult<G> {
    match r {
        Ok(g) => Ok(g),
        Err(TryLockError::Poisoned(p)) => Ok(p.into_inner()),
        Err(TryLockError::WouldBlock) => Err(PyRuntimeError::new_err(BUSY)),
    }
}

impl Drop for Snapshot {
    fn drop(&mut self) {
        // Runs in the object's dealloc, with the GIL: the events' Python objects are
        // queued by the drop of the data (`ffi/held.rs`) and go with it.
        if let Ok(data) = self.data.get_mut() {
            drop(data.take());
        }
        Python::attach(held::release_pending);
    }
}

impl Snapshot {
    pub(crate) fn new(data: SnapData) -> Snapshot {
        Snapshot { data: RwLock::new(Some(data)) }
    }

    /// Runs `f` on the data, shared with other readers.
    fn read<R>(&self, f: impl FnOnce(&SnapData) -> PyResult<R>) -> PyResult<R> {
        let guard = unpoisoned(self.data.try_read())?;
        f(guard.as_ref().ok_or_else(|| PyRuntimeError::new_err(RELEASED))?)
    }

    fn write_to<W: std::io::Write + Send>(
        &self,
        py: Python<'_>,
        sink: W,
        header: &Header<'_>,
        progress: Option<&Bound<'_, PyAny>>,
    ) -> Result<(W, usize), TraceError> {
        let guard = unpoisoned(self.data.try_write())?;
        let data = guard.as_ref().ok_or_else(|| PyRuntimeError::new_err(RELEASED))?;
        let rendered = event::render_all::<Json>(py, data, header.ts_offset_ns)?;
        // Progress callbacks need the GIL: the writer reports counts, we call Python
        // only between chunks of work.
        let report = progress.map(|p| p.clone().unbind());
        let written = py.detach(|| {
            let mut last = 0usize;
            let on_progress = |n: usize| {
                if let Some(cb) = &report {
                    if n >= last + 1_000_000 || n == data.entries {
                        last = n;
                        Python::attach(|py| {
                            let _ = cb.bind(py).call1((n, data.entries));
                        });
                    }
                }
            };
            json::write_trace(sink, data, &rendered, header, on_progress)
        })?;
        Ok(written)
    }
}

/// The writer of `Snapshot.stream`: gathers bytes and gives them to the Python sink a
/// chunk at a time, with the GIL.
struct Chunks {
    sink: Py<PyAny>,
    size: usize,
    buf: Vec<u8>,
    /// What the sink raised (the write then fails with an `io::Error`).
    error: Option<PyErr>,
}

impl Chunks {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let result = Python::attach(|py| self.sink.call1(py, (PyBytes::new(py, &self.buf),)).map(drop));
        self.buf.clear();
        result.map_err(|err| {
            self.error = Some(err);
            io::Error::other("the sink of the stream raised")
        })
    }
}

impl Write for Chunks {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        if self.error.is_some() {
            return Err(io::Error::other("the sink of the stream raised"));
        }
        self.buf.extend_from_slice(bytes);
        if self.buf.len() >= self.size {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

#[pymethods]
impl Snapshot {
    /// Number of events (metadata not counted).
    #[getter]
    fn entries(&self) -> PyResult<usize> {
        self.read(|d| Ok(d.entries))
    }

    /// Whether old events were dropped because the buffer was full.
    #[getter]
    fn overflow(&self) -> PyResult<bool> {
        self.read(|d| Ok(d.overflow))
    }

    /// `[(tid, ident, name_hint, count)]` for every thread that has events.
    fn threads(&self) -> PyResult<Vec<ThreadRow>> {
        self.read(|d| {
            Ok(d.threads
                .iter()
                .map(|t| (t.tid, t.ident, t.name.clone(), t.chunks.iter().map(Vec::len).sum()))
                .collect())
        })
    }

    /// `[(tid, name)]` of the async tasks seen with log_async.
    fn task_names(&self) -> PyResult<Vec<(u32, String)>> {
        self.read(|d| Ok(d.task_names.clone()))
    }

    /// `[(name, file, line)]` of the Python functions that appear in the events.
    fn functions(&self) -> PyResult<Vec<(String, String, u32)>> {
        self.read(|d| Ok(snapshot::functions(d)))
    }

    /// The raw event dicts (`add_raw`), for building `file_info`.
    fn raw_events(&self, py: Python<'_>) -> PyResult<Py<PyList>> {
        self.read(|data| {
            let list = PyList::empty(py);
            for t in &data.threads {
                for rec in t.chunks.iter().flatten() {
                    if let Some(Payload::Raw(r)) = rec.payload().and_then(|i| t.payloads.get(i)) {
                        list.append(r.bind(py))?;
                    }
                }
            }
            Ok(list.unbind())
        })
    }

    /// Writes the trace (JSON, or gzip with `gzip=True`) to the file descriptor `fd`,
    /// which the caller owns, keeps open and closes (`trace_writer.atomic_file`), and
    /// returns the number of events written. The GIL is released while writing.
    #[pyo3(signature = (fd, *, gzip, pid, process_name, thread_names, metadata_json, file_info_json = None,
                        progress = None, ts_offset_ns = 0))]
    // The parameters are the Python method's keyword arguments, one each.
    #[allow(clippy::too_many_arguments)]
    fn write(
        &self,
        py: Python<'_>,
        fd: i32,
        gzip: bool,
        pid: i64,
        process_name: &str,
        thread_names: Vec<(u64, String)>,
        metadata_json: &str,
        file_info_json: Option<&str>,
        progress: Option<Bound<'_, PyAny>>,
        ts_offset_ns: i64,
    ) -> PyResult<usize> {
        let header =
            Header { pid, process_name, thread_names: &thread_names, metadata_json, file_info_json, ts_offset_ns };
        let not_fd = || TraceError::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file descriptor"));
        let file = ffi::os::borrowed_file(fd).ok_or_else(not_fd)?;
        let sink = BufWriter::with_capacity(1 << 20, &*file);
        if !gzip {
            // (write_trace flushed its sink)
            return Ok(self.write_to(py, sink, &header, progress.as_ref())?.1);
        }
        let enc = flate2::write::GzEncoder::new(sink, flate2::Compression::new(6));
        let (enc, n) = self.write_to(py, enc, &header, progress.as_ref())?;
        // The trailer goes into the buffer: flush it here, where a failure is seen
        // (a BufWriter's drop would ignore it).
        enc.finish().and_then(|mut buffered| buffered.flush()).map_err(TraceError::Io)?;
        Ok(n)
    }

    /// The trace file's content as bytes (for writing to a stream).
    #[pyo3(signature = (*, pid, process_name, thread_names, metadata_json, file_info_json = None, ts_offset_ns = 0))]
    // The parameters are the Python method's keyword arguments, one each.
    #[allow(clippy::too_many_arguments)]
    fn to_bytes<'py>(
        &self,
        py: Python<'py>,
        pid: i64,
        process_name: &str,
        thread_names: Vec<(u64, String)>,
        metadata_json: &str,
        file_info_json: Option<&str>,
        ts_offset_ns: i64,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let header =
            Header { pid, process_name, thread_names: &thread_names, metadata_json, file_info_json, ts_offset_ns };
        let (buf, _) = self.write_to(py, Vec::new(), &header, None)?;
        Ok(PyBytes::new(py, &buf))
    }

    /// Streams the trace file (gzip-compressed with `gzip=True`) to `sink`, a callable
    /// given `bytes` of about `chunk_size` at a time (the GIL is held only for those
    /// calls: a sender to a collector frames and sends them). Returns the number of
    /// events; an exception `sink` raises stops the stream and is raised.
    #[pyo3(signature = (sink, *, gzip, chunk_size, pid, process_name, thread_names, metadata_json,
                        file_info_json = None, ts_offset_ns = 0))]
    // The parameters are the Python method's keyword arguments, one each.
    #[allow(clippy::too_many_arguments)]
    fn stream(
        &self,
        py: Python<'_>,
        sink: Bound<'_, PyAny>,
        gzip: bool,
        chunk_size: usize,
        pid: i64,
        process_name: &str,
        thread_names: Vec<(u64, String)>,
        metadata_json: &str,
        file_info_json: Option<&str>,
        ts_offset_ns: i64,
    ) -> PyResult<usize> {
        let header =
            Header { pid, process_name, thread_names: &thread_names, metadata_json, file_info_json, ts_offset_ns };
        let mut chunks = Chunks { sink: sink.unbind(), size: chunk_size.max(1), buf: Vec::new(), error: None };
        let written = if gzip {
            let enc = flate2::write::GzEncoder::new(&mut chunks, flate2::Compression::new(6));
            self.write_to(py, enc, &header, None).and_then(|(enc, n)| {
                enc.finish()?;
                Ok(n)
            })
        } else {
            self.write_to(py, &mut chunks, &header, None).map(|(_, n)| n)
        };
        let written = written.and_then(|n| {
            chunks.flush()?;
            Ok(n)
        });
        if let Some(err) = chunks.error.take() {
            return Err(err);
        }
        Ok(written?)
    }

    /// The events as a list of dicts (metadata events first).
    fn to_events<'py>(
        &self,
        py: Python<'py>,
        pid: i64,
        process_name: &str,
        thread_names: Vec<(u64, String)>,
    ) -> PyResult<Bound<'py, PyList>> {
        let events = self.read(|d| dicts::to_events(py, d, pid, process_name, &thread_names))?;
        PyList::new(py, events)
    }

    /// Frees the events now instead of when the snapshot is garbage collected.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let data = unpoisoned(self.data.try_write())?.take();
        drop(data);
        // The events' Python objects go now, not at the tracer's next call.
        held::release_pending(py);
        Ok(())
    }
}
