//! The function table: code objects and C functions → small integer ids.
//!
//! Attributes are read, the display name is formatted and the filters are decided
//! once per code object (on the first call), not per event. The table keeps a strong
//! reference to every key object so a pointer can never be reused for another
//! function while the table knows it.

#![forbid(unsafe_code)]

use crate::ffi::held::Held;
use crate::ffi::CFunc;
use hashbrown::HashMap;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyString;
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// The id is in the low bits; this bit marks a function whose calls are not recorded.
pub const IGNORED: u32 = 1 << 31;
const ID_MASK: u32 = IGNORED - 1;

/// Hashes pointer pairs with one multiply: keys are addresses, already well spread.
#[derive(Default, Clone, Copy)]
pub struct PtrHash;

pub struct PtrHasher(u64);

/// Multiply into 128 bits and fold the halves: every input bit reaches both the low
/// bits (bucket index) and the high bits (hashbrown's tag), even for aligned pointers.
#[inline(always)]
fn folded_mul(a: u64, b: u64) -> u64 {
    let full = (a as u128) * (b as u128);
    (full as u64) ^ ((full >> 64) as u64)
}

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for PtrHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = folded_mul(self.0 ^ *b as u64, SEED);
        }
    }
    #[inline(always)]
    fn write_usize(&mut self, n: usize) {
        self.0 = folded_mul(self.0 ^ n as u64, SEED);
    }
}

impl BuildHasher for PtrHash {
    type Hasher = PtrHasher;
    #[inline(always)]
    fn build_hasher(&self) -> PtrHasher {
        PtrHasher(0)
    }
}

/// What the dump needs to know about a function. Pure Rust, so a snapshot can be
/// written with the GIL released.
#[derive(Debug)]
pub struct FuncInfo {
    /// The display name, e.g. `fib (/home/u/demo.py:3)` or `builtins.len`.
    pub name: Box<str>,
    /// For Python functions: the file and first line (for `file_info`).
    pub source: Option<(String, u32)>,
}

/// Which frames the user asked to see. Decided once per code object.
#[derive(Clone, Debug, Default)]
pub struct FilterOptions {
    pub include_files: Vec<String>,
    pub exclude_files: Vec<String>,
    pub ignore_frozen: bool,
    /// Our own package directory: hidden unless `trace_self`.
    pub lib_file_path: Option<String>,
    pub trace_self: bool,
}

impl FilterOptions {
    /// Whether calls of code from `filename` are recorded.
    pub fn allows(&self, filename: &str) -> bool {
        if !self.trace_self {
            if let Some(lib) = &self.lib_file_path {
                if !lib.is_empty() && filename.starts_with(lib.as_str()) {
                    return false;
                }
            }
        }
        if self.ignore_frozen && filename.starts_with("<frozen") {
            return false;
        }
        if !self.include_files.is_empty() {
            return self.include_files.iter().any(|p| filename.starts_with(p.as_str()));
        }
        if !self.exclude_files.is_empty() {
            return !self.exclude_files.iter().any(|p| filename.starts_with(p.as_str()));
        }
        true
    }
}

/// Cached facts about a code object that the filters and the args logger need.
struct CodeEntry {
    filename: String,
    /// Argument names for `log_func_args`, read lazily.
    arg_names: Option<ArgNames>,
}

/// The argument names of a function, shared with the frames that log them.
pub type ArgNames = Arc<Vec<Held<PyString>>>;

/// What a code object's first call reads from it (with Python), for `add_code`.
pub struct CodeInfo {
    key: usize,
    qualname: String,
    filename: String,
    line: u32,
    /// Keeps the key's pointer valid while the table knows it.
    owner: Held<PyAny>,
}

impl CodeInfo {
    /// Reads what the table needs of `code`; unreadable attributes get placeholders.
    pub fn read(py: Python<'_>, code: &Bound<'_, PyAny>) -> CodeInfo {
        let attr_str = |name: &Bound<'_, PyString>| -> Option<String> {
            let v = code.getattr(name).ok()?;
            let s = v.cast::<PyString>().ok()?;
            Some(s.to_string_lossy().into_owned())
        };
        // co_qualname exists from 3.11; older versions only have co_name.
        let qualname = if cfg!(Py_3_11) { attr_str(intern!(py, "co_qualname")) } else { None }
            .or_else(|| attr_str(intern!(py, "co_name")))
            .unwrap_or_else(|| String::from("<unknown>"));
        let filename = attr_str(intern!(py, "co_filename")).unwrap_or_else(|| String::from("<unknown>"));
        let line: u32 = code.getattr(intern!(py, "co_firstlineno")).ok().and_then(|v| v.extract().ok()).unwrap_or(0);
        // Reading attributes may leave an exception set: events must not.
        let _ = PyErr::take(py);
        CodeInfo { key: code.as_ptr() as usize, qualname, filename, line, owner: Held::new(code.clone().unbind()) }
    }
}

/// What a builtin's first call reads from it (with Python), for `add_c`.
pub struct CInfo {
    key: (usize, usize),
    name: String,
    owner: Option<Held<PyAny>>,
}

impl CInfo {
    pub fn read(py: Python<'_>, f: &CFunc<'_>, sanitize: bool) -> CInfo {
        CInfo { key: f.key(), name: f.name(py, sanitize), owner: f.owner(py).map(Held::new) }
    }
}

/// Slots of the direct-mapped cache in front of the hash map.
const CACHE_SLOTS: usize = 2048;

/// One cache slot: a key and its table value (key (0, 0) is never used).
#[derive(Clone, Copy, Default)]
struct CacheSlot {
    k0: usize,
    k1: usize,
    value: u32,
}

pub struct FuncTable {
    /// Most lookups hit here with one compare; misses go to `map` and fill the slot.
    cache: Box<[CacheSlot; CACHE_SLOTS]>,
    map: HashMap<(usize, usize), u32, PtrHash>,
    infos: Vec<Arc<FuncInfo>>,
    /// Per id: the code entry for Python functions (None for C functions).
    code: Vec<Option<CodeEntry>>,
    /// Strong references keeping every key's pointers valid.
    owners: Vec<Held<PyAny>>,
}

impl Default for FuncTable {
    fn default() -> Self {
        FuncTable {
            cache: Box::new([CacheSlot::default(); CACHE_SLOTS]),
            map: HashMap::with_hasher(PtrHash),
            infos: Vec::new(),
            code: Vec::new(),
            owners: Vec::new(),
        }
    }
}

#[inline(always)]
fn slot_of(key: (usize, usize)) -> usize {
    // Objects are 16-byte aligned; mix in higher bits so neighbours spread out.
    ((key.0 >> 4) ^ (key.0 >> 15) ^ key.1) & (CACHE_SLOTS - 1)
}

impl FuncTable {
    /// Looks up a function by key: `Some(id | IGNORED?)` if it is known.
    #[inline(always)]
    pub fn get(&mut self, key: (usize, usize)) -> Option<u32> {
        let i = slot_of(key);
        if let Some(slot) = self.cache.get(i) {
            if slot.k0 == key.0 && slot.k1 == key.1 {
                return Some(slot.value);
            }
        }
        self.get_slow(key, i)
    }

    /// `get` limited to the direct-mapped cache (no call, for the hot path).
    #[inline(always)]
    pub fn get_cached(&self, key: (usize, usize)) -> Option<u32> {
        let slot = &self.cache[slot_of(key)];
        (slot.k0 == key.0 && slot.k1 == key.1).then_some(slot.value)
    }

    #[cold]
    #[inline(never)]
    fn get_slow(&mut self, key: (usize, usize), i: usize) -> Option<u32> {
        let value = self.map.get(&key).copied()?;
        if let Some(slot) = self.cache.get_mut(i) {
            *slot = CacheSlot { k0: key.0, k1: key.1, value };
        }
        Some(value)
    }

    fn clear_cache(&mut self) {
        self.cache.fill(CacheSlot::default());
    }

    pub fn infos(&self) -> &[Arc<FuncInfo>] {
        &self.infos
    }

    pub fn len(&self) -> usize {
        self.infos.len()
    }

    fn push(&mut self, info: FuncInfo, code: Option<CodeEntry>) -> Option<u32> {
        let id = self.infos.len() as u32;
        if id >= ID_MASK {
            return None;
        }
        self.infos.push(Arc::new(info));
        self.code.push(code);
        Some(id)
    }

    /// Registers a code object on its first call. Returns the table value (id, maybe
    /// with IGNORED), or `None` if the table is full.
    pub fn add_code(&mut self, info: CodeInfo, filters: &FilterOptions) -> Option<u32> {
        let CodeInfo { key, qualname, filename, line, owner } = info;
        let name = format!("{qualname} ({filename}:{line})");
        let allowed = filters.allows(&filename);
        let info = FuncInfo { name: name.into(), source: Some((filename.clone(), line)) };
        let id = self.push(info, Some(CodeEntry { filename, arg_names: None }))?;
        let value = if allowed { id } else { id | IGNORED };
        self.map.insert(code_key(key), value);
        self.owners.push(owner);
        Some(value)
    }

    /// Registers a C function on its first call.
    pub fn add_c(&mut self, info: CInfo) -> Option<u32> {
        let id = self.push(FuncInfo { name: info.name.into(), source: None }, None)?;
        self.map.insert(info.key, id);
        self.owners.extend(info.owner);
        Some(id)
    }

    /// Re-decides the filters of every known code object (after an option changed).
    pub fn refilter(&mut self, filters: &FilterOptions) {
        self.clear_cache();
        for value in self.map.values_mut() {
            let id = *value & ID_MASK;
            if let Some(Some(entry)) = self.code.get(id as usize) {
                *value = if filters.allows(&entry.filename) { id } else { id | IGNORED };
            }
        }
    }

    /// Forgets C functions so their names are rebuilt (after `sanitize_function_name` changed).
    pub fn forget_c_functions(&mut self) {
        self.clear_cache();
        self.map.retain(|k, _| k.0 & 1 == 0);
    }

    /// The argument names of a Python function, if read already (`set_arg_names`).
    pub fn arg_names(&self, id: u32) -> Option<ArgNames> {
        self.code.get((id & ID_MASK) as usize)?.as_ref()?.arg_names.clone()
    }

    pub fn set_arg_names(&mut self, id: u32, names: ArgNames) {
        if let Some(Some(entry)) = self.code.get_mut((id & ID_MASK) as usize) {
            entry.arg_names = Some(names);
        }
    }

    /// Drops everything (only when no record or frame refers to an id any more).
    pub fn clear(&mut self) {
        self.clear_cache();
        self.map.clear();
        self.infos.clear();
        self.code.clear();
        self.owners.clear();
    }
}

/// Positional, keyword-only, `*args` and `**kwargs` names, in `co_varnames` order.
pub fn read_arg_names(py: Python<'_>, code: &Bound<'_, PyAny>) -> ArgNames {
    let names = read_arg_names_or_err(py, code).unwrap_or_default();
    Arc::new(names.into_iter().map(Held::new).collect())
}

fn read_arg_names_or_err(py: Python<'_>, code: &Bound<'_, PyAny>) -> PyResult<Vec<Py<PyString>>> {
    const CO_VARARGS: i64 = 0x04;
    const CO_VARKEYWORDS: i64 = 0x08;
    let argcount: i64 = code.getattr(intern!(py, "co_argcount"))?.extract()?;
    let kwonly: i64 = code.getattr(intern!(py, "co_kwonlyargcount"))?.extract()?;
    let flags: i64 = code.getattr(intern!(py, "co_flags"))?.extract()?;
    let mut n = argcount + kwonly;
    if flags & CO_VARARGS != 0 {
        n += 1;
    }
    if flags & CO_VARKEYWORDS != 0 {
        n += 1;
    }
    let varnames = code.getattr(intern!(py, "co_varnames"))?;
    let mut out = Vec::with_capacity(n as usize);
    for i in 0..n {
        let name = varnames.get_item(i)?;
        out.push(name.cast_into::<PyString>()?.unbind());
    }
    Ok(out)
}

/// True if `id` has the IGNORED bit.
#[inline(always)]
pub fn is_ignored(value: u32) -> bool {
    value & IGNORED != 0
}

/// The id part of a table value.
#[inline(always)]
pub fn id_of(value: u32) -> u32 {
    value & ID_MASK
}

/// Key of a code object in the table.
#[inline(always)]
pub fn code_key(code: usize) -> (usize, usize) {
    (code, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_hash_spreads_keys() {
        let h = PtrHash;
        // Aligned pointers must still land in different buckets of a small table.
        let buckets: std::collections::HashSet<u64> =
            (0..64usize).map(|i| h.hash_one((0x7f00_0000_1000 + i * 64, 0usize)) & 127).collect();
        assert!(buckets.len() > 32, "{}", buckets.len());
    }
}
