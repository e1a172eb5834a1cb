//! Call sites that stop sending CALL events, safely (3.12+).
//!
//! sys.monitoring delivers a CALL event before every call, but the tracer needs it
//! only for builtins: Python functions are seen through PY_START, classes are never
//! recorded. A call site whose callee is a global name (`fib(n - 1)`, `str(i)`) calls
//! whatever that name holds, so while it holds a Python function or a class the
//! site's CALL events are useless, and we answer `sys.monitoring.DISABLE` to them.
//! The promise this makes is kept by three checks:
//!
//! - the bytecode shows which CALLs take their callee straight from a `LOAD_GLOBAL`
//!   (`crate::bytecode`, once per code object, conservatively);
//! - the callee must be `globals[name]` right now (or `builtins[name]`, the globals
//!   lacking it), and a dict watcher on those dicts calls
//!   `sys.monitoring.restart_events()` before the name is bound, rebound or deleted,
//!   or the dict is cleared: every disabled site then reports again and is decided
//!   anew;
//! - a code object with disabled sites remembers the globals it was decided under,
//!   and PY_START checks them: the same code started under other globals (a function
//!   copied with `FunctionType(code, other_globals)`) restarts events too.
//!
//! A name rebound again and again is never disabled again, so restarts stay rare.
//! What this cannot see: a frame of the same code object that was already running
//! under *other* globals when a site was disabled (two function objects sharing one
//! code object with different globals, one suspended inside the other).
//! Everything here runs with the GIL held (callbacks and watchers are called with it).

use super::bytecode::{global_call_sites, OpTable};
use crate::ffi::held::{self, Held};
use crate::ffi::{self, dict_event};
use crate::state::funcs::PtrHash;
use crate::state::gil::{GilArray, GilRefCell};
use hashbrown::HashMap;
use once_cell::sync::OnceCell;
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use smallvec::{smallvec, SmallVec};
use std::cell::Cell;

/// The analysis tables of the running interpreter.
fn build_op_table(py: Python<'_>) -> PyResult<OpTable> {
    let opmap = py.import("opcode")?.getattr("opmap")?;
    OpTable::new(|name| opmap.get_item(name).ok()?.extract::<u8>().ok())
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("opcode.opmap has no EXTENDED_ARG"))
}

/// A call site whose callee is a global name.
struct Site {
    offset: u32,
    /// Set once the site was found not to qualify: it then reports for good (always
    /// safe), and its later CALL events cost one lookup. (A `Cell`: `SITE_CACHE`
    /// reaches the sites without borrowing the decisions.)
    refused: Cell<bool>,
    /// Borrowed from the code object's `co_names`.
    name: *mut pyffi::PyObject,
}

/// The analysed call sites of one code object, never changed once made (but for
/// `refused`), and never moved: `SITE_CACHE` points to them.
struct CodeSites {
    /// Keeps the code object (and the names of `sites`) alive.
    _code: Held<PyAny>,
    /// Sorted by offset.
    sites: Box<[Site]>,
}

/// A name whose sites are disabled, with its str hash (cached by str, compared
/// before the characters: the watcher sees every change of a watched dict).
struct WatchedName {
    hash: pyffi::Py_hash_t,
    name: Held<PyAny>,
}

/// A watched dict: the names whose sites are disabled, and how often it changed.
#[derive(Default)]
struct WatchedDict {
    names: SmallVec<[WatchedName; 4]>,
    changes: u32,
}

/// A code object with disabled sites and the globals they were decided under.
#[derive(Clone, Copy, Default)]
struct CodeGlobals {
    code: usize,
    globals: usize,
}

/// `CodeGlobals::globals` of a code whose globals dict was freed: never matches, so the
/// next PY_START of that code restarts events.
const DEAD_GLOBALS: usize = usize::MAX;

/// Direct-mapped: a code object can disable sites only while it owns its slot, so
/// PY_START needs one compare to know whether to check its globals.
const CODE_GLOBALS_SLOTS: usize = 1024;
/// Rebinding the same global this many times leaves its sites enabled for good.
const MAX_STRIKES: u8 = 2;
/// A dict changed this many times is no longer watched: every change costs the
/// interpreter's watcher dispatch, which a module rebinding a global in a hot loop
/// would pay far more often than its call sites save.
const BUSY_CHANGES: u32 = 20_000;
/// After this many restarts in one session nothing is disabled any more.
const MAX_RESTARTS: u32 = 256;

/// Everything the sessions decide, borrowed once per step (`with_decisions`). Python
/// objects are `Held`, so dropping them inside a borrow runs no Python code.
#[derive(Default)]
struct Decisions {
    active: bool,
    restart_events: Option<Held<PyAny>>,
    /// Boxed: `SITE_CACHE` points into them. Entries are only added during a session
    /// and all go at its end, after the cache is emptied.
    codes: HashMap<usize, Box<CodeSites>, PtrHash>,
    /// Watched dicts → the names whose sites are disabled now.
    watched: HashMap<usize, WatchedDict, PtrHash>,
    /// Dicts that changed too often to be watched: no site is decided under them.
    busy: HashMap<usize, (), PtrHash>,
    /// Busy dicts still to unwatch. Unwatching inside the watcher does not stick
    /// (the dict writes back the watcher bits it read before calling us), so it is
    /// done right after, from a pending call.
    to_unwatch: Vec<usize>,
    /// One bit per watched name's hash (bit `hash & 63`): most changes of a watched
    /// dict are of other names, and leave after one test.
    name_bits: u64,
    /// (dict, name) → how many times rebinding it restarted events.
    strikes: HashMap<(usize, usize), u8, PtrHash>,
    restarts: u32,
    /// DISABLE answers this session (for tests and diagnostics).
    disabled_count: u64,
    /// Whether any site was disabled since the last restart.
    disabled_any: bool,
    /// Decisions were forgotten: `restart_events()` is to be called, once the borrow
    /// that found it out has ended (`with_decisions`).
    restart_owed: bool,
}

// SAFETY: the raw pointers (`Site::name`) are borrowed from code objects the decisions
// holds, and the decisions are reached only with the GIL (`GilRefCell`).
unsafe impl Send for Decisions {}

// The three statics below are mutable on purpose (docs/architecture.md, "Mutable
// statics"), each reached only with a GIL token:
// - the dict watcher is called with no context at all, and dict watcher ids are a
//   process-wide resource (8 per interpreter), so the decisions that own ours are
//   process-wide too (made by the first session, reused by later ones);
// - `SITE_CACHE` and `CODE_GLOBALS` are read by every CALL and PY_START event, before the
//   event knows its tracer (see `state/fast_slot.rs`): a static array costs
//   one indexed load, anything owned by the tracer at least one more dependent load.
static DECISIONS: GilRefCell<Option<Decisions>> = GilRefCell::new(None);

/// Direct-mapped cache in front of `Decisions::codes`: code → the address of its boxed
/// sites.
const SITE_CACHE_SLOTS: usize = 256;
static SITE_CACHE: GilArray<(usize, usize), SITE_CACHE_SLOTS> = GilArray::new((0, 0));

/// Kept apart from the decisions so PY_START reads it with no indirection.
static CODE_GLOBALS: GilArray<CodeGlobals, CODE_GLOBALS_SLOTS> = GilArray::new(CodeGlobals { code: 0, globals: 0 });

/// The analysis tables and our dict watcher id (None: all 8 were taken), made once.
static TABLE: OnceCell<OpTable> = OnceCell::new();
static WATCHER: OnceCell<Option<i32>> = OnceCell::new();

#[inline(always)]
fn code_globals_slot(code: usize) -> usize {
    ((code >> 4) ^ (code >> 14)) & (CODE_GLOBALS_SLOTS - 1)
}

#[inline(always)]
fn site_cache_slot(code: *mut pyffi::PyObject) -> usize {
    ((code as usize) >> 4) & (SITE_CACHE_SLOTS - 1)
}

fn watcher() -> Option<i32> {
    WATCHER.get().copied().flatten()
}

/// Runs `f` on the decisions (`None` if it is borrowed already: see `GilRefCell`), then
/// calls `restart_events()` if `f` owed it: Python code runs only once the borrow has
/// ended.
fn with_decisions<R>(py: Python<'_>, f: impl FnOnce(&mut Decisions) -> R) -> Option<R> {
    let (r, restart) = DECISIONS.with(py, |slot| {
        let reg = slot.get_or_insert_with(Decisions::default);
        let r = f(reg);
        let owed = std::mem::take(&mut reg.restart_owed);
        (r, reg.restart_events.as_ref().filter(|_| owed).map(|f| f.clone_ref(py)))
    })?;
    if let Some(f) = restart {
        let f = f.into_py(py);
        // SAFETY: the GIL is held (`py`); `f` is a live callable. A watcher or callback
        // must not leave an error behind, so any pending one is kept aside and put back.
        unsafe {
            let pending = pyffi::PyErr_GetRaisedException();
            let r = pyffi::PyObject_CallNoArgs(f.as_ptr());
            if r.is_null() {
                pyffi::PyErr_Clear();
            } else {
                pyffi::Py_DECREF(r);
            }
            if !pending.is_null() {
                pyffi::PyErr_SetRaisedException(pending);
            }
        }
    }
    Some(r)
}

/// Switches the safe disabling on for a tracing session. Without a dict watcher
/// (all 8 taken) it stays off: every CALL event is then delivered, as before.
pub fn activate(py: Python<'_>, mon: &Bound<'_, PyAny>) -> PyResult<()> {
    if TABLE.get().is_none() {
        let _ = TABLE.set(build_op_table(py)?);
    }
    // SAFETY: `on_dict_event` is a dict watcher.
    let watcher = *WATCHER.get_or_init(|| unsafe { ffi::add_dict_watcher(py, on_dict_event) });
    ffi::check_int_layout(py);
    let restart_events = Held::new(mon.getattr("restart_events")?.unbind());
    with_decisions(py, |reg| {
        reg.restart_events = Some(restart_events);
        reg.restarts = 0;
        reg.disabled_count = 0;
        reg.active = watcher.is_some();
    });
    Ok(())
}

/// Ends a session: unwatches every dict and forgets every decision. Returns whether
/// some site may still be disabled (the caller restarts events after freeing its
/// tool id, so the next tool with that id gets every event).
pub fn deactivate(py: Python<'_>) -> bool {
    let was = with_decisions(py, |reg| {
        let was = reg.disabled_any;
        reg.active = false;
        reg.forget_decisions(py);
        reg.unwatch(py, true);
        reg.strikes.clear();
        reg.busy.clear();
        // The cache goes before the boxes it points to.
        SITE_CACHE.update(py, |_| (0, 0));
        reg.watched.clear();
        reg.codes.clear();
        reg.restart_events = None;
        was
    });
    // What the decisions held (code objects, names), now that it is not borrowed.
    held::release_pending(py);
    was.unwrap_or(false)
}

impl Decisions {
    /// Stops watching the busy dicts of `to_unwatch` and, with `all`, every watched
    /// dict.
    fn unwatch(&mut self, py: Python<'_>, all: bool) {
        if let Some(id) = watcher() {
            for &dict in self.watched.keys().filter(|_| all).chain(&self.to_unwatch) {
                // SAFETY: dicts leave `watched` and `to_unwatch` when freed
                // (DEALLOCATED), so these live.
                unsafe { ffi::watch_dict(py, id, dict as *mut pyffi::PyObject, false) };
            }
        }
        self.to_unwatch.clear();
    }

    /// All sites report again: guards go, names are no longer disabled (their dicts
    /// stay watched until the session ends).
    fn forget_decisions(&mut self, py: Python<'_>) {
        CODE_GLOBALS.update(py, |_| CodeGlobals::default());
        for w in self.watched.values_mut() {
            w.names.clear();
        }
        self.name_bits = 0;
        self.disabled_any = false;
    }

    /// Re-enables every disabled site: forgets the decisions and owes a call of
    /// `restart_events()`.
    fn restart(&mut self, py: Python<'_>) {
        self.forget_decisions(py);
        self.restarts += 1;
        if self.restarts >= MAX_RESTARTS {
            self.active = false;
            SITE_CACHE.update(py, |_| (0, 0));
        }
        self.restart_owed = true;
    }

    /// Takes the guard of `code`, decided under `dicts` (the globals, then the builtins
    /// if the name comes from them), and watches `name` in them: whether the site may
    /// stop reporting.
    ///
    /// # Safety
    /// `dicts` are live exact dicts, `name` a live exact str.
    unsafe fn disable(
        &mut self,
        py: Python<'_>,
        code: usize,
        name: *mut pyffi::PyObject,
        dicts: &[*mut pyffi::PyObject],
    ) -> bool {
        let Some(watcher) = watcher() else { return false };
        if dicts.iter().any(|&d| {
            self.busy.contains_key(&(d as usize))
                || self.strikes.get(&(d as usize, name as usize)).is_some_and(|&s| s >= MAX_STRIKES)
        }) {
            return false;
        }
        let (slot, globals) = (code_globals_slot(code), dicts[0] as usize);
        let g = CODE_GLOBALS.get(py, slot);
        if g.code == 0 {
            CODE_GLOBALS.set(py, slot, CodeGlobals { code, globals });
        } else if g.code != code || g.globals != globals {
            // Another code object owns the slot, or this one was decided under other
            // globals.
            return false;
        }
        for &d in dicts {
            let names = match self.watched.get_mut(&(d as usize)) {
                Some(w) => &mut w.names,
                None => {
                    if !ffi::watch_dict(py, watcher, d, true) {
                        return false;
                    }
                    &mut self.watched.entry(d as usize).or_default().names
                }
            };
            if !names.iter().any(|n| n.name.as_ptr() == name) {
                let hash = ffi::str_hash(py, name); // an exact str from co_names: cannot fail
                self.name_bits |= name_bit(hash);
                names.push(WatchedName { hash, name: Held::new(Bound::from_borrowed_ptr(py, name).unbind()) });
            }
        }
        self.disabled_any = true;
        self.disabled_count += 1;
        true
    }

    /// A watched dict is about to change: restarts events if a name whose sites are
    /// disabled may be rebound, or returns that name if the change binds it (then the
    /// caller decides, its value looked up with the decisions not borrowed).
    ///
    /// # Safety
    /// As `on_dict_event`.
    unsafe fn dict_event(
        &mut self,
        py: Python<'_>,
        event: std::ffi::c_int,
        dict: *mut pyffi::PyObject,
        key: *mut pyffi::PyObject,
    ) -> Option<usize> {
        let d = dict as usize;
        match event {
            dict_event::ADDED | dict_event::MODIFIED | dict_event::DELETED => {
                let w = self.watched.get_mut(&d)?;
                w.changes += 1;
                if w.changes >= BUSY_CHANGES {
                    self.give_up_dict(py, d);
                    return None;
                }
                if w.names.is_empty() {
                    return None;
                }
                if pyffi::PyUnicode_CheckExact(key) == 0 {
                    // A key of another type may still compare equal to a name (a str
                    // subclass, say): its hash would run Python code, so assume it does.
                    self.restart(py);
                    return None;
                }
                let hash = ffi::str_hash(py, key);
                if self.name_bits & name_bit(hash) == 0 {
                    return None;
                }
                // `move`: `hash` and `key` are taken by value (as a pair of registers,
                // which a third capture, a reference to the token, would spoil).
                let name = w.names.iter().find(move |n| n.hash == hash && ffi::same_str(py, n.name.as_ptr(), key))?;
                return Some(name.name.as_ptr() as usize);
            }
            dict_event::CLONED | dict_event::CLEARED if self.watched.get(&d).is_some_and(|w| !w.names.is_empty()) => {
                self.restart(py);
            }
            dict_event::DEALLOCATED => {
                // Its address may come back as another dict: codes decided under it
                // must check again, and it is no longer ours to unwatch.
                CODE_GLOBALS
                    .update(py, |g| if g.globals == d { CodeGlobals { globals: DEAD_GLOBALS, ..g } } else { g });
                self.watched.remove(&d);
                self.busy.remove(&d);
                self.to_unwatch.retain(|&u| u != d);
                self.strikes.retain(|k, _| k.0 != d);
            }
            _ => {}
        }
        None
    }

    /// Stops watching a dict that changes too often: its sites report again, and none
    /// is decided under it for the rest of the session.
    #[cold]
    fn give_up_dict(&mut self, py: Python<'_>, dict: usize) {
        let had_names = self.watched.remove(&dict).is_some_and(|w| !w.names.is_empty());
        self.busy.insert(dict, ());
        // If the pending call cannot be queued, the session's end unwatches it.
        if self.to_unwatch.is_empty() {
            // SAFETY: `unwatch_busy` is a pending call, and takes no argument.
            let _ = unsafe { pyffi::Py_AddPendingCall(Some(unwatch_busy), std::ptr::null_mut()) };
        }
        self.to_unwatch.push(dict);
        if had_names {
            self.restart(py);
        }
    }
}

/// `(offset, name)` of the call sites of `code` whose callee is a global.
fn global_sites<'py>(
    py: Python<'py>,
    table: &OpTable,
    code: &Bound<'py, PyAny>,
) -> PyResult<Vec<(u32, Bound<'py, PyAny>)>> {
    let bytes = code.getattr("co_code")?.cast_into::<PyBytes>()?;
    let names = code.getattr("co_names")?.cast_into::<PyTuple>()?;
    let found = global_call_sites(table, bytes.as_bytes(), |op, arg| ffi::opcode_stack_effect(py, op, arg));
    found.into_iter().map(|(offset, i)| Ok((offset, names.get_item(i as usize)?))).collect()
}

/// Analyses `code` (no borrow of the decisions is held: this calls into the interpreter).
///
/// # Safety
/// `code` is a live code object.
unsafe fn analyse(py: Python<'_>, table: &OpTable, code: *mut pyffi::PyObject) -> CodeSites {
    let code_obj = Bound::from_borrowed_ptr(py, code);
    let found = global_sites(py, table, &code_obj).unwrap_or_default();
    // The names belong to the code object's `co_names`, which `_code` keeps alive.
    let sites =
        found.into_iter().map(|(offset, n)| Site { offset, refused: Cell::new(false), name: n.as_ptr() }).collect();
    CodeSites { _code: Held::new(code_obj.unbind()), sites }
}

/// Decides a CALL event of a Python function or a class: whether this site may stop
/// reporting (the caller answers `sys.monitoring.DISABLE`). Most calls here are method
/// calls of code already analysed: one cache compare and a search of its (often
/// empty) site list say no.
///
/// # Safety
/// The arguments are those of a live CALL event.
#[inline(always)]
pub unsafe fn decide(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    offset: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> bool {
    let (cached, sites) = SITE_CACHE.get(py, site_cache_slot(code));
    let sites = if cached == code as usize {
        sites
    } else {
        match code_sites_slow(py, code) {
            0 => return false,
            sites => sites,
        }
    };
    // A cache entry is the address of a box of `Decisions::codes`, which stays put and
    // is freed only after the cache is emptied; the box is only ever read (`refused`
    // is a `Cell`), and this reference ends before anything can run Python.
    let cs = &*(sites as *const CodeSites);
    if cs.sites.is_empty() {
        return false;
    }
    let Some(offset) = ffi::small_offset(py, offset) else { return false };
    let Ok(i) = cs.sites.binary_search_by_key(&offset, |s| s.offset) else { return false };
    let site = &cs.sites[i];
    if site.refused.get() {
        return false;
    }
    decide_site(py, code, i, site.name, callable)
}

/// The out-of-line part of `decide`: the call comes from a site whose callee is a
/// global name, not refused yet. Proves that the global `name`, called now as
/// `callable`, will keep calling it until a watched dict changes, and takes the guard
/// of `code`; else marks the site refused.
///
/// # Safety
/// As `decide`; `i` is the index of the site in `code`'s sites, and `name` is that
/// site's name (a str of `code`'s `co_names`).
#[cold]
#[inline(never)]
unsafe fn decide_site(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    i: usize,
    name: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> bool {
    let code = code as usize;
    super::skip_on_panic(|| {
        // Looked up before the decisions are borrowed (a lookup compares keys).
        let dicts = callee_dicts(py, name, callable);
        with_decisions(py, |reg| {
            // Still deciding, and `code` still analysed (so `name` is alive).
            if !reg.active || !reg.codes.contains_key(&code) {
                return false;
            }
            let disabled = dicts.is_some_and(|dicts| reg.disable(py, code, name, &dicts));
            if !disabled {
                if let Some(site) = reg.codes.get(&code).and_then(|cs| cs.sites.get(i)) {
                    site.refused.set(true);
                }
            }
            disabled
        })
        .unwrap_or(false)
    })
    .unwrap_or(false)
}

/// The address of the analysed sites of `code` (analysing it on first sight) if
/// deciding is on, entered in the cache; 0 if not. The cache holds entries only while
/// deciding is on.
///
/// # Safety
/// `code` is a live code object.
#[cold]
#[inline(never)]
unsafe fn code_sites_slow(py: Python<'_>, code: *mut pyffi::PyObject) -> usize {
    super::skip_on_panic(|| code_sites(py, code)).unwrap_or(0)
}

/// `code_sites_slow`, unguarded.
///
/// # Safety
/// As `code_sites_slow`.
unsafe fn code_sites(py: Python<'_>, code: *mut pyffi::PyObject) -> usize {
    let key = code as usize;
    let address = |cs: &CodeSites| cs as *const CodeSites as usize;
    // Whether deciding is on, and the sites if `code` was analysed already.
    let Some(Some(known)) = with_decisions(py, |reg| reg.active.then(|| reg.codes.get(&key).map(|cs| address(cs))))
    else {
        return 0;
    };
    let sites = match known {
        Some(sites) => sites,
        None => {
            // First sight: analysed with the decisions not borrowed (this runs Python).
            let Some(table) = TABLE.get() else { return 0 };
            let cs = Box::new(analyse(py, table, code));
            let stored = with_decisions(py, |reg| {
                if !reg.active {
                    return 0;
                }
                reg.codes.entry(key).or_insert(cs);
                reg.codes.get(&key).map_or(0, |cs| address(cs))
            });
            stored.unwrap_or(0)
        }
    };
    if sites != 0 {
        SITE_CACHE.set(py, site_cache_slot(code), (key, sites));
    }
    sites
}

/// The dicts the call's `LOAD_GLOBAL` of `name` read: the globals, and the builtins
/// when the globals lack the name; None unless they hold `callable` now.
///
/// # Safety
/// As `decide_site`.
unsafe fn callee_dicts(
    py: Python<'_>,
    name: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> Option<SmallVec<[*mut pyffi::PyObject; 2]>> {
    let globals = ffi::current_globals(py);
    if globals.is_null() || pyffi::PyDict_CheckExact(globals) == 0 {
        return None;
    }
    // LOAD_GLOBAL reads the globals, then the builtins: the name comes from the
    // first that has it, and a name added to the globals later would shadow it.
    let found = ffi::dict_get_str(py, globals, name);
    if !found.is_null() {
        return (found == callable).then(|| smallvec![globals]);
    }
    let builtins = ffi::current_builtins(py);
    let from_builtins = !builtins.is_null()
        && pyffi::PyDict_CheckExact(builtins) != 0
        && ffi::dict_get_str(py, builtins, name) == callable;
    from_builtins.then(|| smallvec![globals, builtins])
}

/// PY_START: whether `code` runs under globals other than those its disabled sites
/// were decided under (then events must restart). One compare for most code.
///
/// # Safety
/// Called from a PY_START-like callback, with the new frame current.
#[inline(always)]
pub unsafe fn check_globals(py: Python<'_>, code: *mut pyffi::PyObject) {
    let g = CODE_GLOBALS.get(py, code_globals_slot(code as usize));
    if g.code == code as usize && globals_now(py) as usize != g.globals {
        other_globals(py);
    }
}

/// The running frame's globals, read through the thread state the fast slot holds.
///
/// # Safety
/// From a PY_START event (so a frame runs).
#[inline(always)]
unsafe fn globals_now(py: Python<'_>) -> *mut pyffi::PyObject {
    match crate::state::fast_slot_tstate(py) {
        Some(tstate) => ffi::frame_globals(py, tstate),
        None => ffi::current_globals(py),
    }
}

/// `check_globals` found a code object running under other globals: every site
/// reports again.
#[cold]
#[inline(never)]
fn other_globals(py: Python<'_>) {
    super::skip_on_panic(|| {
        with_decisions(py, |reg| reg.restart(py));
    });
}

/// The pending call of `give_up_dict`: runs with the GIL, outside any dict change.
extern "C" fn unwatch_busy(_arg: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: pending calls run with the GIL held.
    let py = unsafe { Python::assume_attached() };
    with_decisions(py, |reg| reg.unwatch(py, false));
    0
}

#[inline(always)]
fn name_bit(hash: pyffi::Py_hash_t) -> u64 {
    1 << (hash as u64 & 63)
}

/// The dict watcher: a watched globals dict is about to change.
///
/// # Safety
/// Called by the interpreter as a dict watcher, with the GIL held: `dict` is the live
/// watched dict, `key` and `new_value` are null or live, as the event says.
unsafe extern "C" fn on_dict_event(
    event: std::ffi::c_int,
    dict: *mut pyffi::PyObject,
    key: *mut pyffi::PyObject,
    new_value: *mut pyffi::PyObject,
) -> std::ffi::c_int {
    // The GIL token of this event: the interpreter calls watchers with the GIL held.
    let py = Python::assume_attached();
    let Some(Some(name)) = with_decisions(py, |reg| reg.dict_event(py, event, dict, key)) else { return 0 };
    if event == dict_event::MODIFIED && ffi::dict_get_str(py, dict, key) == new_value {
        return 0; // set to the object it already holds
    }
    // A disabled name is rebound: events restart, and the name counts one strike.
    with_decisions(py, |reg| {
        *reg.strikes.entry((dict as usize, name)).or_insert(0) += 1;
        reg.restart(py);
    });
    0
}

/// A session without safe disabling (`fast_calls`, no C events): the stats start
/// from zero all the same.
pub fn reset_stats(py: Python<'_>) {
    with_decisions(py, |reg| {
        reg.disabled_count = 0;
        reg.restarts = 0;
    });
}

/// `(sites disabled, events restarted)` in the current or last session.
pub fn stats(py: Python<'_>) -> (u64, u32) {
    with_decisions(py, |reg| (reg.disabled_count, reg.restarts)).unwrap_or((0, 0))
}

/// The analysis alone, for tests: `(offset, name)` of the call sites of `code`
/// whose callee is a global.
pub fn analyse_for_test(py: Python<'_>, code: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, String)>> {
    let found = global_sites(py, &build_op_table(py)?, code)?;
    found.into_iter().map(|(offset, name)| Ok((offset, name.extract()?))).collect()
}

/// The opcode numbers the analysis models on this interpreter, for tests.
pub fn modelled_opcodes_for_test(py: Python<'_>) -> PyResult<Vec<u8>> {
    let table = build_op_table(py)?;
    Ok((0..=255u8).filter(|&op| table.models(op)).collect())
}
