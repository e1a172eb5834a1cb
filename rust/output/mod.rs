//! Taking the events out of a tracer and writing the trace file: `snapshot` moves the
//! rings out and streams Chrome Trace Event JSON; `json` formats it by hand; `pyjson`
//! renders the Python payloads of rich events to JSON text (GIL held).

pub mod json;
pub mod pyjson;
pub mod snapshot;
