//! Which call sites take their callee straight from a global (`LOAD_GLOBAL`), read
//! from a code object's bytecode (3.12+ opcodes). Pure Rust: the caller passes the
//! interpreter's opcode numbers and its stack-effect function.
//!
//! The analysis is conservative by construction: it follows the value stack through
//! straight-line code made of instructions whose effect it models exactly, and
//! forgets everything at any other instruction (jumps, yields, stores, ...). A site
//! is reported only when the callee slots a `LOAD_GLOBAL` pushed reach the call
//! untouched.


/// How one opcode moves the value stack, as far as the analysis needs to know.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// Anything not listed: what it does to the stack is not modelled, so the
    /// analysis forgets what it knew (jumps, yields, returns, stores, ...).
    Unknown,
    /// No effect on the stack (CACHE, NOP, KW_NAMES).
    Neutral,
    /// Pops and pushes fixed counts.
    Fixed(u8, u8),
    /// `LOAD_GLOBAL`: pushes the global, and a NULL when the low bit of the arg is set.
    LoadGlobal,
    /// `LOAD_ATTR`: pops 1, pushes 1, or 2 for a method (low bit).
    LoadAttr,
    /// `LOAD_SUPER_ATTR`: pops 3, pushes 1 or 2 (low bit).
    LoadSuperAttr,
    /// `BUILD_TUPLE` & co: pops `arg`, pushes 1.
    Build,
    /// `BUILD_MAP`: pops `2 * arg`, pushes 1.
    BuildMap,
    /// `BUILD_CONST_KEY_MAP`: pops `arg + 1`, pushes 1.
    BuildConstKeyMap,
    /// `FORMAT_VALUE` (3.12): pops 1, or 2 with a format spec (bit 2).
    FormatValue,
    /// `MAKE_FUNCTION` (3.12): pops the code and one value per flag bit.
    MakeFunction,
    /// `COPY i`: reads `i` deep, pushes one more.
    Copy,
    /// `SWAP i`: reorders the top `i`.
    Swap,
    /// `LIST_EXTEND i` & co: pops one, updates the item `i` deep.
    Extend,
    /// `CALL argc`: callee pair, then `argc` arguments.
    Call,
    /// `CALL_KW argc` (3.13): callee pair, `argc` arguments, the names tuple.
    CallKw,
    /// `CALL_FUNCTION_EX`: callee pair, the args tuple, and a kwargs dict (low bit).
    CallEx,
}

/// Opcode number → `Op`, built from the `opcode` module of the running interpreter.
pub struct OpTable {
    ops: [Op; 256],
    extended_arg: u8,
}

/// Opcodes that pop and push fixed counts.
const FIXED: &[(&str, u8, u8)] = &[
    ("LOAD_FAST", 0, 1),
    ("LOAD_FAST_CHECK", 0, 1),
    ("LOAD_FAST_AND_CLEAR", 0, 1),
    ("LOAD_FAST_LOAD_FAST", 0, 2),
    ("LOAD_CONST", 0, 1),
    ("LOAD_DEREF", 0, 1),
    ("PUSH_NULL", 0, 1),
    ("POP_TOP", 1, 0),
    ("STORE_FAST", 1, 0),
    ("BINARY_OP", 2, 1),
    ("COMPARE_OP", 2, 1),
    ("IS_OP", 2, 1),
    ("CONTAINS_OP", 2, 1),
    ("BINARY_SUBSCR", 2, 1),
    ("BINARY_SLICE", 3, 1),
    ("UNARY_NEGATIVE", 1, 1),
    ("UNARY_NOT", 1, 1),
    ("UNARY_INVERT", 1, 1),
    ("TO_BOOL", 1, 1),
    ("CALL_INTRINSIC_1", 1, 1),
    ("FORMAT_SIMPLE", 1, 1),
    ("FORMAT_WITH_SPEC", 2, 1),
    ("CONVERT_VALUE", 1, 1),
    ("SET_FUNCTION_ATTRIBUTE", 2, 1),
];

/// Opcodes with an effect of their own (MAKE_FUNCTION is decided in `new`).
const OTHERS: &[(&str, Op)] = &[
    ("CACHE", Op::Neutral),
    ("NOP", Op::Neutral),
    ("KW_NAMES", Op::Neutral),
    ("LOAD_GLOBAL", Op::LoadGlobal),
    ("LOAD_ATTR", Op::LoadAttr),
    ("LOAD_SUPER_ATTR", Op::LoadSuperAttr),
    ("BUILD_TUPLE", Op::Build),
    ("BUILD_LIST", Op::Build),
    ("BUILD_SET", Op::Build),
    ("BUILD_STRING", Op::Build),
    ("BUILD_SLICE", Op::Build),
    ("BUILD_MAP", Op::BuildMap),
    ("BUILD_CONST_KEY_MAP", Op::BuildConstKeyMap),
    ("FORMAT_VALUE", Op::FormatValue),
    ("COPY", Op::Copy),
    ("SWAP", Op::Swap),
    ("LIST_EXTEND", Op::Extend),
    ("SET_UPDATE", Op::Extend),
    ("DICT_UPDATE", Op::Extend),
    ("DICT_MERGE", Op::Extend),
    ("CALL", Op::Call),
    ("CALL_KW", Op::CallKw),
    ("CALL_FUNCTION_EX", Op::CallEx),
];

impl OpTable {
    /// The table for an interpreter whose opcode numbers `number_of` gives (its
    /// `opcode.opmap`); None without EXTENDED_ARG.
    pub fn new(number_of: impl Fn(&str) -> Option<u8>) -> Option<OpTable> {
        let mut ops = [Op::Unknown; 256];
        // 3.13 gave MAKE_FUNCTION's flags an opcode of their own.
        let make_function =
            if number_of("SET_FUNCTION_ATTRIBUTE").is_some() { Op::Fixed(1, 1) } else { Op::MakeFunction };
        let fixed = FIXED.iter().map(|&(n, p, q)| (n, Op::Fixed(p, q)));
        for (name, op) in fixed.chain(OTHERS.iter().copied()).chain([("MAKE_FUNCTION", make_function)]) {
            if let Some(num) = number_of(name) {
                ops[num as usize] = op;
            }
        }
        Some(OpTable { ops, extended_arg: number_of("EXTENDED_ARG")? })
    }
}

/// A stack slot as the analysis sees it: pushed by the `LOAD_GLOBAL` at this
/// instruction index (with its name index), or anything else.
type Tag = u64;
const OTHER: Tag = u64::MAX;

/// Pops `pops` slots and pushes `pushes` untagged ones. Popping more than is known
/// reaches below what the analysis saw: nothing is known any more.
fn apply(stack: &mut Vec<Tag>, pops: u32, pushes: u32) {
    let pops = pops as usize;
    if pops > stack.len() {
        stack.clear();
    } else {
        stack.truncate(stack.len() - pops);
    }
    stack.extend(std::iter::repeat_n(OTHER, pushes as usize));
}

/// `(pops, pushes)` of an instruction the table models (`Unknown`/`Neutral` excluded).
fn effect(op: Op, arg: u32) -> (u32, u32) {
    match op {
        Op::Fixed(p, q) => (p as u32, q as u32),
        Op::LoadGlobal => (0, 1 + (arg & 1)),
        Op::LoadAttr => (1, 1 + (arg & 1)),
        Op::LoadSuperAttr => (3, 1 + (arg & 1)),
        Op::Build => (arg, 1),
        Op::BuildMap => (2 * arg, 1),
        Op::BuildConstKeyMap => (arg + 1, 1),
        Op::FormatValue => (1 + u32::from(arg & 4 != 0), 1),
        Op::MakeFunction => (1 + (arg & 0xf).count_ones(), 1),
        Op::Copy => (arg, arg + 1),
        Op::Swap => (arg, arg),
        Op::Extend => (arg + 1, arg),
        Op::Call => (arg + 2, 1),
        Op::CallKw => (arg + 3, 1),
        Op::CallEx => (3 + (arg & 1), 1),
        Op::Unknown | Op::Neutral => (0, 0),
    }
}

/// The call sites of `code_bytes` whose callee is the global `names[i]`:
/// `(byte offset of the call instruction, i)`, in offset order.
///
/// A linear walk that tracks which stack slots a `LOAD_GLOBAL` (with its NULL) pushed;
/// a call whose callee pair are both still those slots calls that global. Every
/// modelled instruction's counts are checked against the compiler's own stack
/// effect, and anything unmodelled (jumps included) forgets the stack, so a site is
/// reported only when the straight-line code proves it.
pub fn global_call_sites(table: &OpTable, code_bytes: &[u8], effect_of: impl Fn(u8, u32) -> Option<i32>) -> Vec<(u32, u32)> {
    let mut sites = Vec::new();
    let mut stack: Vec<Tag> = Vec::new();
    let mut ext: u32 = 0;
    for (i, unit) in code_bytes.chunks_exact(2).enumerate() {
        let (opcode, arg) = (unit[0], (ext << 8) | unit[1] as u32);
        if opcode == table.extended_arg {
            ext = arg;
            continue;
        }
        ext = 0;
        let op = table.ops[opcode as usize];
        match op {
            Op::Neutral => continue,
            Op::Unknown => {
                stack.clear();
                continue;
            }
            _ => {}
        }
        let (pops, pushes) = effect(op, arg);
        if effect_of(opcode, arg) != Some(pushes as i32 - pops as i32) {
            // Our model and the compiler disagree: trust nothing about this stack.
            stack.clear();
            continue;
        }
        if matches!(op, Op::Call | Op::CallKw | Op::CallEx) {
            let depth = pops as usize;
            if stack.len() >= depth {
                let (a, b) = (stack[stack.len() - depth], stack[stack.len() - depth + 1]);
                if a == b && a != OTHER {
                    sites.push(((2 * i) as u32, (a & 0xffff_ffff) as u32));
                }
            }
        }
        apply(&mut stack, pops, pushes);
        if op == Op::LoadGlobal && arg & 1 == 1 {
            // Both slots (the global and its NULL, in either order) carry the tag.
            let tag = ((i as u64) << 32) | (arg >> 1) as u64;
            let n = stack.len();
            stack[n - 2] = tag;
            stack[n - 1] = tag;
        }
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> OpTable {
        let mut ops = [Op::Unknown; 256];
        ops[1] = Op::Fixed(0, 1); // LOAD_FAST
        ops[2] = Op::LoadGlobal;
        ops[3] = Op::Call;
        ops[4] = Op::Fixed(2, 1); // BINARY_OP
        ops[0] = Op::Neutral; // CACHE
        OpTable { ops, extended_arg: 9 }
    }

    fn net(table: &OpTable) -> impl Fn(u8, u32) -> Option<i32> + '_ {
        move |op, arg| {
            let (p, q) = effect(table.ops[op as usize], arg);
            Some(q as i32 - p as i32)
        }
    }

    #[test]
    fn finds_global_callee_across_nested_calls() {
        let t = table();
        // f(g(x) + x): LOAD_GLOBAL f+NULL, LOAD_GLOBAL g+NULL, LOAD_FAST, CALL 1,
        // LOAD_FAST, BINARY_OP, CALL 1
        let code = [2, 1, 0, 0, 2, 3, 1, 0, 3, 1, 1, 0, 4, 0, 3, 1];
        assert_eq!(global_call_sites(&t, &code, net(&t)), vec![(8, 1), (14, 0)]);
    }

    #[test]
    fn unknown_instruction_or_missing_null_leaves_sites_alone() {
        let t = table();
        // LOAD_GLOBAL f+NULL, <unknown 7>, CALL 0
        assert!(global_call_sites(&t, &[2, 1, 7, 0, 3, 0], net(&t)).is_empty());
        // LOAD_GLOBAL f without NULL, LOAD_FAST, CALL 0 (callee pair from two loads)
        assert!(global_call_sites(&t, &[2, 0, 1, 0, 3, 0], net(&t)).is_empty());
        // A compiler that disagrees with the model about LOAD_FAST
        let bad = |op: u8, arg: u32| if op == 1 { Some(0) } else { net(&t)(op, arg) };
        assert!(global_call_sites(&t, &[2, 1, 1, 0, 3, 1], bad).is_empty());
    }

    #[test]
    fn extended_arg_builds_the_name_index() {
        let t = table();
        // EXTENDED_ARG 1, LOAD_GLOBAL 3 → arg 0x103 → name 0x81, then CALL 0
        assert_eq!(global_call_sites(&t, &[9, 1, 2, 3, 3, 0], net(&t)), vec![(4, 0x81)]);
    }
}
