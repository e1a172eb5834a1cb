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
use crate::core::funcs::PtrHash;
use crate::ffi::gil::GilCell;
use crate::ffi::{self, dict_event};
use hashbrown::HashMap;
use pyo3::ffi as pyffi;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use smallvec::SmallVec;

/// The analysis tables of the running interpreter.
fn build_op_table(py: Python<'_>) -> PyResult<OpTable> {
    let opmap = py.import("opcode")?.getattr("opmap")?;
    OpTable::new(|name| opmap.get_item(name).ok()?.extract::<u8>().ok())
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("opcode.opmap has no EXTENDED_ARG"))
}

/// A call site whose callee is a global name.
#[derive(Clone, Copy)]
struct Site {
    offset: u32,
    /// Set once the site was found not to qualify: it then reports for good (always
    /// safe), and its later CALL events cost one lookup.
    refused: bool,
    /// Borrowed from the code object's `co_names`.
    name: *mut pyffi::PyObject,
}

/// The analysed call sites of one code object.
struct CodeSites {
    /// Keeps the code object (and the names of `sites`) alive.
    _code: Py<PyAny>,
    /// Sorted by offset.
    sites: Box<[Site]>,
}

/// A name whose sites are disabled, with its str hash (cached by str, compared
/// before the characters: the watcher sees every change of a watched dict).
struct WatchedName {
    hash: pyffi::Py_hash_t,
    name: Py<PyAny>,
}

/// A watched dict: the names whose sites are disabled, and how often it changed.
#[derive(Default)]
struct WatchedDict {
    names: SmallVec<[WatchedName; 4]>,
    changes: u32,
}

/// A code object with disabled sites and the globals they were decided under.
#[derive(Clone, Copy, Default)]
struct Guard {
    code: usize,
    globals: usize,
}

/// `Guard::globals` of a code whose globals dict was freed: never matches, so the
/// next PY_START of that code restarts events.
const DEAD_GLOBALS: usize = usize::MAX;

/// Direct-mapped: a code object can disable sites only while it owns its slot, so
/// PY_START needs one compare to know whether to check its globals.
const GUARD_SLOTS: usize = 1024;
/// Rebinding the same global this many times leaves its sites enabled for good.
const MAX_STRIKES: u8 = 2;
/// A dict changed this many times is no longer watched: every change costs the
/// interpreter's watcher dispatch, which a module rebinding a global in a hot loop
/// would pay far more often than its call sites save.
const BUSY_CHANGES: u32 = 20_000;
/// After this many restarts in one session nothing is disabled any more.
const MAX_RESTARTS: u32 = 256;

struct Registry {
    active: bool,
    table: Option<OpTable>,
    watcher: Option<i32>,
    restart_events: Option<Py<PyAny>>,
    disable: *mut pyffi::PyObject,
    /// Boxed: `SITE_CACHE` points into them.
    codes: HashMap<usize, Box<CodeSites>, PtrHash>,
    /// Watched dicts → the names whose sites are disabled now.
    watched: HashMap<usize, WatchedDict, PtrHash>,
    /// Dicts that changed too often to be watched: no site is decided under them.
    busy: HashMap<usize, (), PtrHash>,
    /// Busy dicts still to unwatch. Unwatching inside the watcher does not stick
    /// (the dict writes back the watcher bits it read before calling us), so it is
    /// done right after, from a pending call.
    to_unwatch: SmallVec<[usize; 2]>,
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
}

// SAFETY: `disable` points to an immortal singleton; all access holds the GIL.
unsafe impl Send for Registry {}

// The three statics below are mutable on purpose (docs/architecture.md, "Mutable
// statics"), each reached only with a GIL token (`GilCell::get`):
// - the dict watcher is called with no context at all, and dict watcher ids are a
//   process-wide resource (8 per interpreter), so the registry that owns ours is
//   process-wide too (created on the first session, reused by later ones);
// - `SITE_CACHE` and `GUARDS` are read by every CALL and PY_START event, before the
//   event knows its tracer (see the fast slot in `ffi/shared.rs`): a static array costs one indexed
//   load, anything owned by the tracer at least one more dependent load.
static REGISTRY: GilCell<Option<Registry>> = GilCell::new(None);

/// Direct-mapped cache in front of `Registry::codes` (code → its boxed sites).
const SITE_CACHE_SLOTS: usize = 256;
static SITE_CACHE: GilCell<[(usize, usize); SITE_CACHE_SLOTS]> = GilCell::new([(0, 0); SITE_CACHE_SLOTS]);

/// Kept apart from the registry so PY_START reads it with no indirection.
static GUARDS: GilCell<[Guard; GUARD_SLOTS]> = GilCell::new([Guard { code: 0, globals: 0 }; GUARD_SLOTS]);

#[inline(always)]
fn guard_slot(code: usize) -> usize {
    ((code >> 4) ^ (code >> 14)) & (GUARD_SLOTS - 1)
}

/// Switches the safe disabling on for a tracing session. Without a dict watcher
/// (all 8 taken) it stays off: every CALL event is then delivered, as before.
pub fn activate(py: Python<'_>, mon: &Bound<'_, PyAny>, disable: *mut pyffi::PyObject) -> PyResult<()> {
    // SAFETY: no other reference into the registry is alive.
    let slot = unsafe { REGISTRY.get(py) };
    let reg = match slot {
        Some(reg) => reg,
        None => slot.insert(Registry {
            active: false,
            table: Some(build_op_table(py)?),
            // SAFETY: `on_dict_event` is a dict watcher.
            watcher: unsafe { ffi::add_dict_watcher(py, on_dict_event) },
            restart_events: None,
            disable,
            codes: HashMap::with_hasher(PtrHash),
            watched: HashMap::with_hasher(PtrHash),
            busy: HashMap::with_hasher(PtrHash),
            to_unwatch: SmallVec::new(),
            name_bits: 0,
            strikes: HashMap::with_hasher(PtrHash),
            restarts: 0,
            disabled_count: 0,
            disabled_any: false,
        }),
    };
    ffi::check_int_layout(py);
    reg.restart_events = Some(mon.getattr("restart_events")?.unbind());
    reg.disable = disable;
    reg.restarts = 0;
    reg.disabled_count = 0;
    reg.active = reg.watcher.is_some() && reg.table.is_some();
    Ok(())
}

/// Ends a session: unwatches every dict and forgets every decision. Returns whether
/// some site may still be disabled (the caller restarts events after freeing its
/// tool id, so the next tool with that id gets every event).
pub fn deactivate(py: Python<'_>) -> bool {
    // SAFETY: called from uninstall: nothing else borrows the registry.
    let Some(reg) = (unsafe { REGISTRY.get(py) }) else { return false };
    let was = reg.disabled_any;
    reg.active = false;
    forget_decisions(py, reg);
    if let Some(id) = reg.watcher {
        for &dict in reg.watched.keys().chain(reg.to_unwatch.iter()) {
            // SAFETY: dicts leave `watched` and `to_unwatch` when freed
            // (DEALLOCATED), so these live.
            unsafe { ffi::watch_dict(py, id, dict as *mut pyffi::PyObject, false) };
        }
    }
    reg.to_unwatch.clear();
    reg.strikes.clear();
    reg.busy.clear();
    // SAFETY: no other reference to the cache is alive (the cache must not outlive
    // the boxes it points to).
    unsafe { SITE_CACHE.get(py) }.fill((0, 0));
    // Dropped once the registry is no longer borrowed: freeing a code object can run
    // a weakref callback, which may change a dict and reach the watcher.
    let dropped = (std::mem::take(&mut reg.watched), std::mem::take(&mut reg.codes), reg.restart_events.take());
    drop(dropped);
    was
}

/// All sites report again: guards go, names are no longer disabled (their dicts stay
/// watched until the session ends).
fn forget_decisions(py: Python<'_>, reg: &mut Registry) {
    // SAFETY: no other reference to GUARDS is alive.
    unsafe { GUARDS.get(py) }.fill(Guard::default());
    for w in reg.watched.values_mut() {
        w.names.clear();
    }
    reg.name_bits = 0;
    reg.disabled_any = false;
}

/// Re-enables every disabled site now.
fn restart(py: Python<'_>, reg: &mut Registry) {
    forget_decisions(py, reg);
    reg.restarts += 1;
    if reg.restarts >= MAX_RESTARTS {
        reg.active = false;
        // SAFETY: no other reference to the cache is alive (callers hold the registry,
        // not the cache).
        unsafe { SITE_CACHE.get(py) }.fill((0, 0));
    }
    if let Some(f) = &reg.restart_events {
        // SAFETY: the GIL is held (`py`); `f` is a live callable (held by the
        // registry). A watcher or callback must not leave an error behind, so any
        // pending one is kept aside and put back.
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
}

/// Analyses `code` (no registry borrow is held: this calls into the interpreter).
///
/// # Safety
/// `code` is a live code object; no reference into the registry is alive (reading the
/// code's attributes calls the interpreter).
unsafe fn analyse(py: Python<'_>, table: &OpTable, code: *mut pyffi::PyObject) -> CodeSites {
    let code_obj = Bound::from_borrowed_ptr(py, code);
    let bytes = code_obj.getattr("co_code").ok().and_then(|b| b.cast_into::<PyBytes>().ok());
    let names = code_obj.getattr("co_names").ok().and_then(|n| n.cast_into::<PyTuple>().ok());
    let sites = match (bytes, names) {
        (Some(bytes), Some(names)) => {
            global_call_sites(table, bytes.as_bytes(), |op, arg| ffi::opcode_stack_effect(py, op, arg))
                .into_iter()
                // The tuple belongs to the code object, which `_code` keeps alive.
                .filter_map(|(offset, i)| {
                    let name = names.get_borrowed_item(i as usize).ok()?.as_ptr();
                    Some(Site { offset, refused: false, name })
                })
                .collect()
        }
        _ => {
            pyffi::PyErr_Clear();
            Box::default()
        }
    };
    CodeSites { _code: code_obj.unbind(), sites }
}

/// Decides a CALL event of a Python function or a class: returns
/// `sys.monitoring.DISABLE` (a new reference) if this site may stop reporting, or
/// null to carry on. Most calls here are method calls of code already analysed:
/// one cache compare and a search of its (often empty) site list say no.
///
/// # Safety
/// The arguments are those of a live CALL event.
#[inline(always)]
pub unsafe fn decide(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    offset: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> *mut pyffi::PyObject {
    let null = std::ptr::null_mut();
    let slot = SITE_CACHE.get(py)[site_cache_slot(code)];
    let cs = if slot.0 == code as usize {
        &*(slot.1 as *const CodeSites)
    } else {
        match code_sites_slow(py, code) {
            Some(cs) => cs,
            None => return null,
        }
    };
    if cs.sites.is_empty() {
        return null;
    }
    let Some(offset) = ffi::small_offset(py, offset) else { return null };
    let Ok(i) = cs.sites.binary_search_by_key(&offset, |s| s.offset) else { return null };
    let Site { refused, name, .. } = cs.sites[i];
    if refused {
        return null;
    }
    decide_site(py, code, i, name, callable)
}

/// The out-of-line part of `decide`: the call comes from a site whose callee is a
/// global name, not refused yet.
///
/// # Safety
/// As `decide`; `i` is the index of the site in `code`'s sites, and `name` is that
/// site's name.
#[cold]
#[inline(never)]
unsafe fn decide_site(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    i: usize,
    name: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> *mut pyffi::PyObject {
    let mut result = None;
    super::guard(|| result = disable_site(py, code, name, callable));
    if let Some(disable) = result {
        return disable;
    }
    if let Some(cs) = REGISTRY.get(py).as_mut().and_then(|reg| reg.codes.get_mut(&(code as usize))) {
        if let Some(site) = cs.sites.get_mut(i) {
            site.refused = true;
        }
    }
    std::ptr::null_mut()
}

#[inline(always)]
fn site_cache_slot(code: *mut pyffi::PyObject) -> usize {
    ((code as usize) >> 4) & (SITE_CACHE_SLOTS - 1)
}

/// The analysed sites of `code` (analysing it on first sight) if deciding is on,
/// entered in the cache. The cache holds entries only while deciding is on.
///
/// # Safety
/// `code` is a live code object; no reference into the registry is alive.
/// The reference returned points into the registry: it is used only for the current
/// event, before anything can end the session.
#[cold]
#[inline(never)]
unsafe fn code_sites_slow<'a>(py: Python<'a>, code: *mut pyffi::PyObject) -> Option<&'a CodeSites> {
    let mut out = None;
    super::guard(|| out = code_sites(py, code));
    out
}

/// `code_sites_slow`, unguarded.
///
/// # Safety
/// As `code_sites_slow`.
unsafe fn code_sites<'a>(py: Python<'a>, code: *mut pyffi::PyObject) -> Option<&'a CodeSites> {
    let reg = REGISTRY.get(py).as_mut()?;
    if !reg.active {
        return None;
    }
    if !reg.codes.contains_key(&(code as usize)) {
        let table = reg.table.take()?;
        // No registry borrow across the analysis: it calls into the interpreter.
        let sites = analyse(py, &table, code);
        let reg = REGISTRY.get(py).as_mut()?;
        reg.table = Some(table);
        reg.codes.insert(code as usize, Box::new(sites));
    }
    let reg = REGISTRY.get(py).as_mut()?;
    let cs: &CodeSites = reg.codes.get(&(code as usize))?;
    SITE_CACHE.get(py)[site_cache_slot(code)] = (code as usize, cs as *const CodeSites as usize);
    Some(cs)
}

/// Proves that the global `name`, called from `code` now as `callable`, will keep
/// calling it until a watched dict changes, and takes the guard: DISABLE (a new
/// reference), or None if the site must keep reporting.
///
/// # Safety
/// Inside a CALL event from `code` (its frame is the current one); `name`
/// is a str of `code`'s `co_names`, `callable` the event's live callable; no
/// reference into the registry or the guards is alive.
unsafe fn disable_site(
    py: Python<'_>,
    code: *mut pyffi::PyObject,
    name: *mut pyffi::PyObject,
    callable: *mut pyffi::PyObject,
) -> Option<*mut pyffi::PyObject> {
    let reg = REGISTRY.get(py).as_mut()?;
    let watcher = reg.watcher?;
    let globals = ffi::current_globals(py);
    if globals.is_null() || pyffi::PyDict_CheckExact(globals) == 0 {
        return None;
    }
    // LOAD_GLOBAL reads the globals, then the builtins: the name comes from the
    // first that has it, and a name added to the globals later would shadow it.
    let mut dicts: SmallVec<[*mut pyffi::PyObject; 2]> = SmallVec::new();
    dicts.push(globals);
    let found = ffi::dict_get_str(py, globals, name);
    if found.is_null() {
        let builtins = ffi::current_builtins(py);
        if builtins.is_null()
            || pyffi::PyDict_CheckExact(builtins) == 0
            || ffi::dict_get_str(py, builtins, name) != callable
        {
            return None;
        }
        dicts.push(builtins);
    } else if found != callable {
        return None;
    }
    if dicts.iter().any(|&d| {
        reg.busy.contains_key(&(d as usize))
            || reg.strikes.get(&(d as usize, name as usize)).is_some_and(|&s| s >= MAX_STRIKES)
    }) {
        return None;
    }
    let g = &mut GUARDS.get(py)[guard_slot(code as usize)];
    if g.code == 0 {
        *g = Guard { code: code as usize, globals: globals as usize };
    } else if g.code != code as usize || g.globals != globals as usize {
        // Another code object owns the slot, or this one was decided under other
        // globals.
        return None;
    }
    for &d in &dicts {
        let names = match reg.watched.get_mut(&(d as usize)) {
            Some(w) => &mut w.names,
            None => {
                if !ffi::watch_dict(py, watcher, d, true) {
                    return None;
                }
                &mut reg.watched.entry(d as usize).or_default().names
            }
        };
        if !names.iter().any(|n| n.name.as_ptr() == name) {
            let hash = ffi::str_hash(py, name); // an exact str from co_names: cannot fail
            reg.name_bits |= name_bit(hash);
            names.push(WatchedName { hash, name: Bound::from_borrowed_ptr(py, name).unbind() });
        }
    }
    reg.disabled_any = true;
    reg.disabled_count += 1;
    pyffi::Py_INCREF(reg.disable);
    Some(reg.disable)
}

/// PY_START: whether `code` runs under globals other than those its disabled sites
/// were decided under (then events must restart). One compare for most code.
///
/// # Safety
/// Called from a PY_START-like callback, with the new frame current; no reference
/// into the registry or the guards is alive.
#[inline(always)]
pub unsafe fn check_globals(py: Python<'_>, code: *mut pyffi::PyObject) {
    let g = GUARDS.get(py)[guard_slot(code as usize)];
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
    match crate::ffi::shared::hot_tstate(py) {
        Some(tstate) => ffi::frame_globals(py, tstate),
        None => ffi::current_globals(py),
    }
}

/// `check_globals` found a code object running under other globals: every site
/// reports again.
///
/// # Safety
/// No reference into the registry or the guards is alive.
#[cold]
#[inline(never)]
unsafe fn other_globals(py: Python<'_>) {
    if let Some(reg) = REGISTRY.get(py) {
        restart(py, reg);
    }
}

/// Stops watching a dict that changes too often: its sites report again, and none is
/// decided under it for the rest of the session.
///
/// # Safety
/// `reg` is the registry (the only reference into it) and `dict` a live dict it
/// watches.
#[cold]
unsafe fn give_up_dict(py: Python<'_>, reg: &mut Registry, dict: *mut pyffi::PyObject) {
    let had_names = reg.watched.remove(&(dict as usize)).is_some_and(|w| !w.names.is_empty());
    reg.busy.insert(dict as usize, ());
    // If the pending call cannot be queued, the session's end unwatches it.
    if reg.to_unwatch.is_empty() {
        let _ = pyffi::Py_AddPendingCall(Some(unwatch_busy), std::ptr::null_mut());
    }
    reg.to_unwatch.push(dict as usize);
    if had_names {
        restart(py, reg);
    }
}

/// The pending call of `give_up_dict`: runs with the GIL, outside any dict change.
extern "C" fn unwatch_busy(_arg: *mut std::ffi::c_void) -> std::ffi::c_int {
    // SAFETY: pending calls run with the GIL held, outside our callbacks (so no other
    // reference into the registry is alive).
    unsafe {
        let py = Python::assume_attached();
        if let Some(reg) = REGISTRY.get(py) {
            if let Some(id) = reg.watcher {
                for &dict in &reg.to_unwatch {
                    // Live: a freed dict leaves `to_unwatch` (DEALLOCATED).
                    ffi::watch_dict(py, id, dict as *mut pyffi::PyObject, false);
                }
            }
            reg.to_unwatch.clear();
        }
    }
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
/// watched dict, `key` and `new_value` are null or live, as the event says. No
/// reference into the registry may be alive when a watched dict can change: our own
/// code lets go of it before anything that could run Python (see `deactivate`).
unsafe extern "C" fn on_dict_event(
    event: std::ffi::c_int,
    dict: *mut pyffi::PyObject,
    key: *mut pyffi::PyObject,
    new_value: *mut pyffi::PyObject,
) -> std::ffi::c_int {
    // The GIL token of this event: the interpreter calls watchers with the GIL held.
    let py = Python::assume_attached();
    let Some(reg) = REGISTRY.get(py) else { return 0 };
    let d = dict as usize;
    match event {
        dict_event::ADDED | dict_event::MODIFIED | dict_event::DELETED => {
            let Some(w) = reg.watched.get_mut(&d) else { return 0 };
            w.changes += 1;
            if w.changes >= BUSY_CHANGES {
                give_up_dict(py, reg, dict);
                return 0;
            }
            let names = &w.names;
            if names.is_empty() {
                return 0;
            }
            let exact = pyffi::PyUnicode_CheckExact(key) != 0;
            let hash = if exact { ffi::str_hash(py, key) } else { 0 };
            if exact && reg.name_bits & name_bit(hash) == 0 {
                return 0;
            }
            if !exact {
                // A key of another type may still compare equal to a name (a str
                // subclass, say): its hash would run Python code, so assume it does.
                restart(py, reg);
                return 0;
            }
            // `move`: `hash` and `key` are taken by value (as a pair of registers,
            // which a third capture, a reference to the token, would spoil).
            let Some(name) = names.iter().find(move |n| n.hash == hash && ffi::same_str(py, n.name.as_ptr(), key))
            else {
                return 0;
            };
            let name = name.name.as_ptr();
            if event == dict_event::MODIFIED && ffi::dict_get_str(py, dict, key) == new_value {
                return 0; // set to the object it already holds
            }
            *reg.strikes.entry((d, name as usize)).or_insert(0) += 1;
            restart(py, reg);
        }
        dict_event::CLONED | dict_event::CLEARED if reg.watched.get(&d).is_some_and(|w| !w.names.is_empty()) => {
            restart(py, reg);
        }
        dict_event::DEALLOCATED => {
            // Its address may come back as another dict: codes decided under it must
            // check again, and it is no longer ours to unwatch.
            for g in GUARDS.get(py).iter_mut().filter(|g| g.globals == d) {
                g.globals = DEAD_GLOBALS;
            }
            reg.watched.remove(&d);
            reg.busy.remove(&d);
            reg.to_unwatch.retain(|&mut u| u != d);
            reg.strikes.retain(|k, _| k.0 != d);
        }
        _ => {}
    }
    0
}

/// A session without safe disabling (`fast_calls`, no C events): the stats start
/// from zero all the same.
pub fn reset_stats(py: Python<'_>) {
    // SAFETY: called from install: nothing else borrows the registry.
    if let Some(reg) = unsafe { REGISTRY.get(py) } {
        reg.disabled_count = 0;
        reg.restarts = 0;
    }
}

/// `(sites disabled, events restarted)` in the current or last session.
pub fn stats(py: Python<'_>) -> (u64, u32) {
    // SAFETY: called from a Python-facing function: nothing else borrows the registry.
    match unsafe { REGISTRY.get(py) } {
        Some(reg) => (reg.disabled_count, reg.restarts),
        None => (0, 0),
    }
}

/// The analysis alone, for tests: `(offset, name)` of the call sites of `code`
/// whose callee is a global.
pub fn analyse_for_test(py: Python<'_>, code: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, String)>> {
    let table = build_op_table(py)?;
    let bytes = code.getattr("co_code")?.cast_into::<PyBytes>()?;
    let names = code.getattr("co_names")?.cast_into::<PyTuple>()?;
    let found = global_call_sites(&table, bytes.as_bytes(), |op, arg| ffi::opcode_stack_effect(py, op, arg));
    found.into_iter().map(|(off, i)| Ok((off, names.get_item(i as usize)?.extract()?))).collect()
}

/// The opcode numbers the analysis models on this interpreter, for tests.
pub fn modelled_opcodes_for_test(py: Python<'_>) -> PyResult<Vec<u8>> {
    let table = build_op_table(py)?;
    Ok((0..=255u8).filter(|&op| table.models(op)).collect())
}
