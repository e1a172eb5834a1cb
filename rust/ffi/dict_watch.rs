//! The dict watcher and the dict and str reads of the call-site decisions (3.12+).

use pyo3::ffi;
use pyo3::prelude::*;

/// The events a dict watcher receives (`PyDict_WatchEvent`, the same order in 3.12
/// and 3.13).
pub mod dict_event {
    pub const ADDED: i32 = 0;
    pub const MODIFIED: i32 = 1;
    pub const DELETED: i32 = 2;
    pub const CLONED: i32 = 3;
    pub const CLEARED: i32 = 4;
    pub const DEALLOCATED: i32 = 5;
}

/// `PyDict_WatchCallback`: called before the dict changes; must not raise.
pub type DictWatchCallback = unsafe extern "C" fn(
    event: std::ffi::c_int,
    dict: *mut ffi::PyObject,
    key: *mut ffi::PyObject,
    new_value: *mut ffi::PyObject,
) -> std::ffi::c_int;

extern "C" {
    /// Public C API since 3.12 (pyo3-ffi does not declare it): one of the
    /// interpreter's 8 dict-watcher ids, or -1 with an error set.
    fn PyDict_AddWatcher(callback: DictWatchCallback) -> std::ffi::c_int;
}

/// A dict watcher id for `callback`, or None (error cleared) if all are taken.
///
/// # Safety
/// `callback` may be called as the interpreter calls a dict watcher (with the GIL,
/// the live dict and null or live key and value), for any watched dict.
pub unsafe fn add_dict_watcher(_py: Python<'_>, callback: DictWatchCallback) -> Option<i32> {
    let id = PyDict_AddWatcher(callback);
    if id < 0 {
        ffi::PyErr_Clear();
        return None;
    }
    Some(id)
}

/// Starts (`on`) or stops sending `dict`'s changes to watcher `id`. Never raises.
///
/// # Safety
/// `dict` is a live exact dict; `id` came from `add_dict_watcher`.
pub unsafe fn watch_dict(_py: Python<'_>, id: i32, dict: *mut ffi::PyObject, on: bool) -> bool {
    let r = if on { ffi::PyDict_Watch(id, dict) } else { ffi::PyDict_Unwatch(id, dict) };
    if r < 0 {
        ffi::PyErr_Clear();
    }
    r == 0
}

/// `globals[name]` (borrowed, null if absent) for an exact dict and a str key: this
/// lookup runs no Python code and cannot fail.
///
/// # Safety
/// `globals` is a live exact dict, `name` a live str.
pub unsafe fn dict_get_str(
    _py: Python<'_>,
    globals: *mut ffi::PyObject,
    name: *mut ffi::PyObject,
) -> *mut ffi::PyObject {
    ffi::PyDict_GetItem(globals, name)
}

/// The hash of an exact str: the one it caches (computed now if not yet).
///
/// # Safety
/// `s` is a live exact str.
#[inline(always)]
pub unsafe fn str_hash(_py: Python<'_>, s: *mut ffi::PyObject) -> ffi::Py_hash_t {
    let cached = (*s.cast::<ffi::PyASCIIObject>()).hash;
    if cached != -1 {
        cached
    } else {
        ffi::PyObject_Hash(s)
    }
}

/// Whether two objects are equal strs (no Python code runs: non-str objects are
/// simply unequal).
///
/// # Safety
/// Both objects are live.
pub unsafe fn same_str(_py: Python<'_>, a: *mut ffi::PyObject, b: *mut ffi::PyObject) -> bool {
    a == b
        || (ffi::PyUnicode_CheckExact(a) != 0 && ffi::PyUnicode_CheckExact(b) != 0 && ffi::PyUnicode_Compare(a, b) == 0)
}
