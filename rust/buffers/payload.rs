//! Python data attached to rare events, kept out of the ring.
//!
//! Records refer to payloads by index. A slot is freed when its record is evicted or
//! dumped, so the slab never holds more entries than the ring does.

use crate::ffi::held::Held;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Scope of an instant event (`"s"` in the trace).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Global,
    Process,
    Thread,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "g" => Some(Scope::Global),
            "p" => Some(Scope::Process),
            "t" => Some(Scope::Thread),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Global => "g",
            Scope::Process => "p",
            Scope::Thread => "t",
        }
    }
}

pub enum Payload {
    /// `args` of a function slice: `func_args`, `return_value`, `add_func_args` keys.
    /// `task` is the async pseudo-thread id the slice belongs to (0: none).
    FuncArgs {
        args: Option<Held<PyDict>>,
        task: u32,
    },
    Instant {
        name: Held<PyAny>,
        args: Option<Held<PyAny>>,
        scope: Scope,
    },
    Counter {
        name: Held<PyAny>,
        args: Held<PyAny>,
    },
    Object {
        ph: char,
        id: Held<PyAny>,
        name: Held<PyAny>,
        args: Option<Held<PyAny>>,
    },
    /// A user-supplied trace event dict, written as given with pid/tid filled in.
    Raw(Held<PyAny>),
}

#[derive(Default)]
pub struct Slab {
    items: Vec<Option<Payload>>,
    free: Vec<u32>,
}

impl Slab {
    /// Stores a payload; `None` if the slab is full (a record can address 2^30 slots).
    pub fn insert(&mut self, p: Payload) -> Option<u32> {
        if let Some(i) = self.free.pop() {
            self.items[i as usize] = Some(p);
            return Some(i);
        }
        let i = self.items.len() as u32;
        if i > crate::buffers::record::MAX_PAYLOAD {
            return None;
        }
        self.items.push(Some(p));
        Some(i)
    }

    pub fn get(&self, i: u32) -> Option<&Payload> {
        self.items.get(i as usize).and_then(Option::as_ref)
    }

    /// Frees a slot and returns what it held (its Python objects go at the next safe
    /// point, see `ffi/held.rs`).
    pub fn remove(&mut self, i: u32) -> Option<Payload> {
        let p = self.items.get_mut(i as usize).and_then(Option::take);
        if p.is_some() {
            self.free.push(i);
        }
        p
    }
}
