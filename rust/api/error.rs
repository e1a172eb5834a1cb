//! Errors of the native module and how they map to Python exceptions (one place,
//! like cryptography's `CryptographyError`). The hot path never returns errors.

use pyo3::exceptions::PyOSError;
use pyo3::PyErr;
use std::io;

#[derive(Debug)]
pub enum TraceError {
    /// Writing the trace file failed.
    File { path: String, source: io::Error },
    /// Writing to an in-memory or other sink failed.
    Io(io::Error),
    /// A Python exception raised while rendering or loading.
    Py(PyErr),
}

impl TraceError {
    pub fn file(path: &str, source: io::Error) -> Self {
        TraceError::File { path: path.to_owned(), source }
    }
}

impl From<io::Error> for TraceError {
    fn from(e: io::Error) -> Self {
        TraceError::Io(e)
    }
}

impl From<PyErr> for TraceError {
    fn from(e: PyErr) -> Self {
        TraceError::Py(e)
    }
}

impl From<TraceError> for PyErr {
    fn from(e: TraceError) -> PyErr {
        match e {
            TraceError::File { path, source } => {
                PyOSError::new_err(format!("Can't write the trace to {path}: {source}"))
            }
            TraceError::Io(source) => PyOSError::new_err(format!("Can't write the trace: {source}")),
            TraceError::Py(err) => err,
        }
    }
}
