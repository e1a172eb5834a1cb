//! Taking the events out of a tracer and writing them: `snapshot` moves the rings out;
//! `event` describes every event once, to a sink: `json` streams the trace file (with
//! `pyjson`, Python values → JSON text), `dicts` makes the Python dicts of
//! `tracer.data`.

#![forbid(unsafe_code)]

pub mod dicts;
pub mod event;
pub mod json;
pub mod pyjson;
pub mod snapshot;
