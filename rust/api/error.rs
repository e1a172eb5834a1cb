//! Errors of the native module and how they map to Python exceptions (one place,
//! like cryptography's `CryptographyError`). The hot path never returns errors.

use pyo3::exceptions::PyOSError;
use pyo3::PyErr;
use std::io;

#[derive(Debug)]
pub enum TraceError {
    /// Writing the trace failed.
    Io(io::Error),
    /// A Python exception raised while rendering or loading.
    Py(PyErr),
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
            // OSError(errno, message): the Python writer names the file and the
            // reason (os.strerror) in one line.
            TraceError::Io(source) => match source.raw_os_error() {
                Some(errno) => PyOSError::new_err((errno, format!("Can't write the trace: {source}"))),
                None => PyOSError::new_err(format!("Can't write the trace: {source}")),
            },
            TraceError::Py(err) => err,
        }
    }
}
