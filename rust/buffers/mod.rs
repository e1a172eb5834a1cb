//! Per-thread storage of events: the thread state (shadow stack, ring, payload slab),
//! the bounded ring of 24-byte records shared under one budget, the record layout,
//! and the slab that holds the Python objects of rich events.

#![forbid(unsafe_code)]

pub mod payload;
pub mod record;
pub mod ring;
pub mod thread;
