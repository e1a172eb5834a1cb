//! Per-thread tracing state: the shadow call stack, the ring of records and the
//! payload slab. States are owned by the tracer's thread list (`state::shared::ThreadList`),
//! so a dead thread's events survive until the dump.

use super::payload::Slab;
use super::ring::Ring;
use crate::ffi::held::Held;
use pyo3::types::PyDict;

/// Frame flags: not recorded; a C function; not recorded and nothing under it either
/// (a filtered-out function or the depth limit, counted in `ignored_depth`).
pub const F_IGNORED: u32 = 1;
pub const F_C: u32 = 2;
pub const F_PRUNES: u32 = 4;

/// One entry of the shadow stack.
#[derive(Debug)]
pub struct Frame {
    pub start: u64,
    /// Code pointer for Python frames, tagged `PyMethodDef` pointer for C frames.
    pub key: usize,
    pub func: u32,
    pub flags: u32,
    /// The `args` dict of this call (`log_func_args`, `add_func_args`), if any.
    pub args: Option<Held<PyDict>>,
}

impl Frame {
    #[inline(always)]
    pub fn ignored(&self) -> bool {
        self.flags & F_IGNORED != 0
    }

    #[inline(always)]
    pub fn prunes(&self) -> bool {
        self.flags & F_PRUNES != 0
    }
}

pub struct ThreadState {
    /// OS thread id (what the trace shows as `tid`).
    pub tid: u64,
    /// `threading.get_ident()` of the thread, to find its `threading.Thread` later.
    pub ident: u64,
    /// Name found when the thread was first seen, if any.
    pub name: Option<String>,
    pub stack: Vec<Frame>,
    /// How many pruning frames are on `stack`: > 0 means we are in an ignored subtree.
    pub ignored_depth: u32,
    /// Set by `pause()`: frames that start meanwhile are tracked but not recorded.
    pub paused: bool,
    /// Last tick handed out on this thread, to keep timestamps strictly increasing.
    pub last_tick: u64,
    pub ring: Ring,
    pub payloads: Slab,
    /// Async pseudo-thread of the running task (0: none) and the stack depth it began at.
    pub task: u32,
    pub task_depth: usize,
}

impl ThreadState {
    pub fn new(tid: u64, ident: u64, name: Option<String>) -> Self {
        ThreadState {
            tid,
            ident,
            name,
            stack: Vec::with_capacity(64),
            ignored_depth: 0,
            paused: false,
            last_tick: 0,
            ring: Ring::default(),
            payloads: Slab::default(),
            task: 0,
            task_depth: 0,
        }
    }

    /// A tick for this thread, never equal to or below the previous one, so siblings
    /// never overlap and children never start before their parent.
    #[inline(always)]
    pub fn tick(&mut self) -> u64 {
        self.bump(crate::clock::now_ticks())
    }

    /// `tick` with the clock chosen at compile time (see `clock::ticks`).
    #[inline(always)]
    pub fn tick_with<const TSC: bool>(&mut self) -> u64 {
        self.bump(crate::clock::ticks::<TSC>())
    }

    #[inline(always)]
    fn bump(&mut self, mut t: u64) -> u64 {
        if t <= self.last_tick {
            t = self.last_tick + 1;
        }
        self.last_tick = t;
        t
    }

    /// Empties the shadow stack (frames that began before a reset are never
    /// recorded). Returns the frames so the caller drops them without references held.
    pub fn take_stack(&mut self) -> Vec<Frame> {
        self.ignored_depth = 0;
        self.task = 0;
        self.task_depth = 0;
        std::mem::take(&mut self.stack)
    }
}
