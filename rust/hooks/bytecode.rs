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
///
/// Only the *shape* is written here: "consumes its inputs and pushes N fresh values".
/// How many inputs an instruction pops comes from the running interpreter
/// (`PyCompile_OpcodeStackEffect`: pops = pushes - net effect), so a CPython that
/// changes an opcode's arity, or a call's layout (3.13's `CALL_KW`, 3.14's
/// `CALL_FUNCTION_EX` with its always-present kwargs slot), needs no edit here.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    /// Anything not listed: what it does to the stack is not modelled, so the
    /// analysis forgets what it knew (jumps, yields, returns, stores, ...).
    Unknown,
    /// `CACHE`: the inline cache entries that follow an instruction in `co_code`.
    Cache,
    /// Pops its inputs (as many as the interpreter says) and pushes this many new
    /// values. Instructions that change a deeper item in place (`LIST_APPEND i`,
    /// `DICT_MERGE i`, ...) also fit: the item stays the same object.
    Produces(u8),
    /// Like `Produces(1)`, plus one more pushed value when the low bit of the arg is
    /// set: `LOAD_ATTR` / `LOAD_SUPER_ATTR` (method pair).
    ProducesPair,
    /// `LOAD_GLOBAL`: pushes the global, and a NULL when the low bit of the arg is set.
    LoadGlobal,
    /// A call (`CALL`, `CALL_KW`, `CALL_FUNCTION_EX`): the callee pair sits at the
    /// bottom of the inputs; pushes the result.
    Call,
    /// `COPY i`: reads `i` deep, pushes one more.
    Copy,
    /// `SWAP i`: reorders the top `i` without popping them.
    Swap,
}

/// Opcode number → `Op`, built from the `opcode` module of the running interpreter.
pub struct OpTable {
    ops: [Op; 256],
    extended_arg: u8,
}

/// Instructions that consume their inputs and push a fixed number of fresh values.
/// Names the running interpreter does not have are skipped; names it has that are
/// not here are `Unknown` (tests/test_call_sites.py fails on an opcode that
/// straight-line code uses and that is neither here nor known to end the analysis).
const PRODUCES: &[(&str, u8)] = &[
    // Loads
    ("LOAD_FAST", 1),
    ("LOAD_FAST_CHECK", 1),
    ("LOAD_FAST_AND_CLEAR", 1),
    ("LOAD_FAST_BORROW", 1),
    ("LOAD_FAST_LOAD_FAST", 2),
    ("LOAD_FAST_BORROW_LOAD_FAST_BORROW", 2),
    ("LOAD_CONST", 1),
    ("LOAD_SMALL_INT", 1),
    ("LOAD_COMMON_CONSTANT", 1),
    ("LOAD_DEREF", 1),
    ("PUSH_NULL", 1),
    // Stores to locals and pops
    ("POP_TOP", 0),
    ("STORE_FAST", 0),
    ("STORE_FAST_LOAD_FAST", 1),
    ("STORE_FAST_STORE_FAST", 0),
    // Operators
    ("BINARY_OP", 1),
    ("BINARY_SUBSCR", 1),
    ("BINARY_SLICE", 1),
    ("COMPARE_OP", 1),
    ("IS_OP", 1),
    ("CONTAINS_OP", 1),
    ("UNARY_NEGATIVE", 1),
    ("UNARY_NOT", 1),
    ("UNARY_INVERT", 1),
    ("TO_BOOL", 1),
    ("CALL_INTRINSIC_1", 1),
    ("CALL_INTRINSIC_2", 1),
    // Building values
    ("BUILD_TUPLE", 1),
    ("BUILD_LIST", 1),
    ("BUILD_SET", 1),
    ("BUILD_MAP", 1),
    ("BUILD_CONST_KEY_MAP", 1),
    ("BUILD_STRING", 1),
    ("BUILD_SLICE", 1),
    ("BUILD_TEMPLATE", 1),
    ("BUILD_INTERPOLATION", 1),
    ("LIST_APPEND", 0),
    ("SET_ADD", 0),
    ("MAP_ADD", 0),
    ("LIST_EXTEND", 0),
    ("SET_UPDATE", 0),
    ("DICT_UPDATE", 0),
    ("DICT_MERGE", 0),
    ("FORMAT_VALUE", 1),
    ("FORMAT_SIMPLE", 1),
    ("FORMAT_WITH_SPEC", 1),
    ("CONVERT_VALUE", 1),
    ("MAKE_FUNCTION", 1),
    ("SET_FUNCTION_ATTRIBUTE", 1),
    // No effect
    ("NOP", 0),
    ("NOT_TAKEN", 0),
    ("KW_NAMES", 0),
];

/// Instructions with a shape of their own.
const SHAPED: &[(&str, Op)] = &[
    ("CACHE", Op::Cache),
    ("LOAD_GLOBAL", Op::LoadGlobal),
    ("LOAD_ATTR", Op::ProducesPair),
    ("LOAD_SUPER_ATTR", Op::ProducesPair),
    ("CALL", Op::Call),
    ("CALL_KW", Op::Call),
    ("CALL_FUNCTION_EX", Op::Call),
    ("COPY", Op::Copy),
    ("SWAP", Op::Swap),
];

impl OpTable {
    /// The table for an interpreter whose opcode numbers `number_of` gives (its
    /// `opcode.opmap`); None without EXTENDED_ARG.
    pub fn new(number_of: impl Fn(&str) -> Option<u8>) -> Option<OpTable> {
        let mut ops = [Op::Unknown; 256];
        let produces = PRODUCES.iter().map(|&(n, k)| (n, Op::Produces(k)));
        for (name, op) in produces.chain(SHAPED.iter().copied()) {
            if let Some(num) = number_of(name) {
                ops[num as usize] = op;
            }
        }
        Some(OpTable { ops, extended_arg: number_of("EXTENDED_ARG")? })
    }

    /// Whether the analysis models opcode `number` (for tests: an opcode that
    /// straight-line code uses and that is not modelled makes the analysis give up).
    pub fn models(&self, number: u8) -> bool {
        self.ops[number as usize] != Op::Unknown
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

/// `(pops, pushes)` of a modelled instruction, from its shape and the interpreter's
/// net stack effect `net`; None when the two cannot agree (the analysis then trusts
/// nothing about the stack).
fn effect(op: Op, arg: u32, net: i32) -> Option<(u32, u32)> {
    let pushes: i64 = match op {
        Op::Produces(n) => n.into(),
        Op::ProducesPair | Op::LoadGlobal => 1 + i64::from(arg & 1),
        Op::Call => 1,
        // Both keep the items they read: their pops are the items they touch.
        Op::Copy => return (net == 1).then_some((arg, arg + 1)),
        Op::Swap => return (net == 0).then_some((arg, arg)),
        Op::Unknown | Op::Cache => return None,
    };
    let pops = pushes - i64::from(net);
    // A call pops at least its callee pair; a load pops nothing.
    let min_pops = match op {
        Op::Call => 2,
        _ => 0,
    };
    if pops < min_pops || (op == Op::LoadGlobal && pops != 0) {
        return None;
    }
    Some((u32::try_from(pops).ok()?, pushes as u32))
}

/// The call sites of `code_bytes` whose callee is the global `names[i]`:
/// `(byte offset of the call instruction, i)`, in offset order.
///
/// A linear walk that tracks which stack slots a `LOAD_GLOBAL` (with its NULL) pushed;
/// a call whose callee pair are both still those slots calls that global. Each
/// instruction's pops come from the compiler's own stack effect (`effect_of`), and
/// anything unmodelled (jumps included) forgets the stack, so a site is reported only
/// when the straight-line code proves it.
pub fn global_call_sites(
    table: &OpTable,
    code_bytes: &[u8],
    effect_of: impl Fn(u8, u32) -> Option<i32>,
) -> Vec<(u32, u32)> {
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
        if op == Op::Cache {
            continue;
        }
        let Some((pops, pushes)) = effect_of(opcode, arg).and_then(|net| effect(op, arg, net)) else {
            // Unmodelled, or the model and the compiler disagree: trust nothing.
            stack.clear();
            continue;
        };
        if op == Op::Call {
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

    // A toy instruction set: 1 LOAD_FAST, 2 LOAD_GLOBAL, 3 CALL, 4 BINARY_OP,
    // 0 CACHE, 9 EXTENDED_ARG, 7 unknown.
    fn table() -> OpTable {
        let mut ops = [Op::Unknown; 256];
        ops[1] = Op::Produces(1);
        ops[2] = Op::LoadGlobal;
        ops[3] = Op::Call;
        ops[4] = Op::Produces(1);
        ops[0] = Op::Cache;
        OpTable { ops, extended_arg: 9 }
    }

    /// The net effects a compiler of the toy set would report.
    fn net(op: u8, arg: u32) -> Option<i32> {
        match op {
            1 => Some(1),
            2 => Some(1 + (arg & 1) as i32),
            3 => Some(-(arg as i32) - 1),
            4 => Some(-1),
            _ => None,
        }
    }

    #[test]
    fn finds_global_callee_across_nested_calls() {
        let t = table();
        // f(g(x) + x): LOAD_GLOBAL f+NULL, LOAD_GLOBAL g+NULL, LOAD_FAST, CALL 1,
        // LOAD_FAST, BINARY_OP, CALL 1
        let code = [2, 1, 0, 0, 2, 3, 1, 0, 3, 1, 1, 0, 4, 0, 3, 1];
        assert_eq!(global_call_sites(&t, &code, net), vec![(8, 1), (14, 0)]);
    }

    #[test]
    fn call_layout_comes_from_the_interpreter() {
        let t = table();
        // The same CALL 1, from an interpreter whose calls also pop a kwargs slot
        // (net -3 instead of -2): the callee pair is one deeper, below LOAD_FAST x2.
        let wide = |op: u8, arg: u32| if op == 3 { Some(-(arg as i32) - 2) } else { net(op, arg) };
        assert_eq!(global_call_sites(&t, &[2, 1, 1, 0, 1, 0, 3, 1], wide), vec![(6, 0)]);
        // Read with the narrow layout, the callee pair would be (NULL-tag, x): no site.
        assert!(global_call_sites(&t, &[2, 1, 1, 0, 1, 0, 3, 1], net).is_empty());
    }

    #[test]
    fn unknown_instruction_or_missing_null_leaves_sites_alone() {
        let t = table();
        // LOAD_GLOBAL f+NULL, <unknown 7>, CALL 0
        assert!(global_call_sites(&t, &[2, 1, 7, 0, 3, 0], net).is_empty());
        // LOAD_GLOBAL f without NULL, LOAD_FAST, CALL 0 (callee pair from two loads)
        assert!(global_call_sites(&t, &[2, 0, 1, 0, 3, 0], net).is_empty());
        // A compiler that says LOAD_GLOBAL pops something: not the load we model.
        let bad = |op: u8, arg: u32| if op == 2 { Some(0) } else { net(op, arg) };
        assert!(global_call_sites(&t, &[2, 1, 1, 0, 3, 1], bad).is_empty());
        // A compiler with no stack effect for the call.
        let none = |op: u8, arg: u32| if op == 3 { None } else { net(op, arg) };
        assert!(global_call_sites(&t, &[2, 1, 3, 0], none).is_empty());
    }

    #[test]
    fn extended_arg_builds_the_name_index() {
        let t = table();
        // EXTENDED_ARG 1, LOAD_GLOBAL 3 → arg 0x103 → name 0x81, then CALL 0
        assert_eq!(global_call_sites(&t, &[9, 1, 2, 3, 3, 0], net), vec![(4, 0x81)]);
    }
}
