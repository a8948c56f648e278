//! BPF code generation from checked scripts (fixture kernel): what compiles,
//! the maps it asks for, jumps that stay inside their program, handlers that fit
//! the stack, and clear refusals for what kernel context cannot run yet. The
//! bytecode itself is tested by loading and running it (kernel tier).

#[path = "support/limits.rs"]
mod limits;
mod support;

use rstap_compiler::backend::bpf::codegen::{
    CodegenError, Compiled, ErrorMsg, ErrorSite, Target, compile,
};
use rstap_compiler::backend::bpf::insn::{Insn, PSEUDO_MAP_VALUE, helper};
use rstap_compiler::backend::bpf::layout::{MapKind, Role, Storage};
use rstap_compiler::check::{self, Library};
use rstap_compiler::mir;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

const TARGET: Target = limits::STAP_LIMITS;

fn codegen(script: &str) -> Result<Compiled, CodegenError> {
    codegen_for(script, TARGET)
}

fn codegen_for(script: &str, target: Target) -> Result<Compiled, CodegenError> {
    codegen_on(script, target, &FixtureKernel::new())
}

fn codegen_on(
    script: &str,
    target: Target,
    kernel: &FixtureKernel,
) -> Result<Compiled, CodegenError> {
    codegen_with(script, target, kernel, &check::Options::default())
}

fn codegen_with(
    script: &str,
    target: Target,
    kernel: &FixtureKernel,
    options: &check::Options,
) -> Result<Compiled, CodegenError> {
    let mut files = SourceMap::new();
    let id = files.add("t.stp", script);
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("does not parse:\n{}", d.render(&files)));
    let library = Library::from_files(Vec::new());
    let checked = check::check(&ast, &library, kernel, options)
        .unwrap_or_else(|d| panic!("does not check:\n{}", d.render(&files)));
    compile(&mir::lower(&checked.program), kernel, target)
}

/// Every jump lands inside its program, and the program ends in `exit`.
fn well_formed(insns: &[Insn]) {
    let n = i64::try_from(insns.len()).expect("program size");
    let mut i = 0usize;
    while i < insns.len() {
        let ins = insns[i];
        if ins.code == 0x18 {
            i += 2;
            continue;
        }
        let class = ins.code & 0x07;
        let op = ins.code & 0xf0;
        if class == 0x05 && op != 0x80 && op != 0x90 {
            let target = i64::try_from(i).expect("index") + 1 + i64::from(ins.off);
            assert!(
                (0..n).contains(&target),
                "jump at {i} to {target} leaves the program of {n}"
            );
        }
        i += 1;
    }
    assert_eq!(
        insns.last().map(|i| i.code),
        Some(0x95),
        "a program ends in exit"
    );
}

#[test]
fn dropwatch_counting_compiles_to_one_program_and_a_per_cpu_hash() {
    let c = codegen(
        r#"global drops
probe kernel.trace("skb:kfree_skb") { drops[$location] <<< 1 }
probe end { foreach (l in drops) printf("%d\n", @count(drops[l])) }"#,
    )
    .expect("compiles");
    assert_eq!(
        c.programs.len(),
        1,
        "only the tracepoint runs in the kernel"
    );
    well_formed(&c.programs[0].insns);
    assert_eq!(
        c.errors
            .iter()
            .map(|e| e.msg.without_operands())
            .collect::<Vec<_>>(),
        ["Array overflow, check MAXMAPENTRIES"],
        "the only thing the handler reports is a full array"
    );
    let map = &c.maps[0];
    assert_eq!(map.kind, MapKind::PerCpuHash);
    assert!(matches!(&map.role, Role::Global(0, g) if g.storage == Storage::StatsArray));
    assert_eq!(
        (map.key_size, map.value_size, map.max_entries),
        (8, 32, 2048)
    );
}

#[test]
fn prints_become_ring_buffer_records_with_a_lost_counter() {
    let c = codegen(
        r#"global n
probe kernel.trace("sched:sched_switch") { n++; printf("%d -> %d\n", $prev_pid, $next_pid) }
probe kernel.trace("sched:sched_process_exec") { println(pid()) }"#,
    )
    .expect("compiles");
    assert_eq!(c.programs.len(), 2);
    for p in &c.programs {
        well_formed(&p.insns);
    }
    assert_eq!(c.prints.len(), 2, "one print site per call");
    let kinds: Vec<MapKind> = c.maps.iter().map(|m| m.kind).collect();
    // n, the ring and its lost counter, and `target` (whose second slot
    // tells every program the run is ending).
    assert_eq!(
        kinds,
        vec![
            MapKind::Array,
            MapKind::RingBuf,
            MapKind::PerCpuArray,
            MapKind::Array
        ]
    );
    // Every map reference points into the object's map list.
    for p in &c.programs {
        for i in p.insns.iter().filter(|i| i.code == 0x18 && i.src == 1) {
            assert!(usize::try_from(i.imm).is_ok_and(|m| m < c.maps.len()));
        }
    }
}

#[test]
fn division_raises_a_runtime_error_through_the_output_ring() {
    let c = codegen(
        r#"global q
probe kernel.trace("sched:sched_switch") { q = $prev_pid / $next_pid + $prev_pid % 7 }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    assert_eq!(c.errors.len(), 2, "one error site per division or modulo");
    assert!(
        c.errors
            .iter()
            .all(|e| e.msg == ErrorMsg::Fixed("division by 0".into()))
    );
    assert!(
        c.maps.iter().any(|m| m.kind == MapKind::RingBuf),
        "errors travel in the ring"
    );
}

#[test]
fn arithmetic_branches_and_builtins_compile() {
    let c = codegen(
        r#"global n, big, last
probe kernel.trace("sched:sched_switch") {
  x = $prev_pid * 3 + ($next_pid << 2)
  if (x > 10 && pid() != 0) n++
  else { big = -x ^ 0x123456789; last = !x }
  for (i = 0; i < 3; i++) n += i
}"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
}

#[test]
fn a_long_handler_fits_the_stack_by_sharing_slots() {
    let mut body = String::new();
    for i in 0..200 {
        body.push_str(&format!("n += {i} * pid() + tid()\n"));
    }
    let c = codegen(&format!(
        "global n\nprobe kernel.trace(\"sched:sched_switch\") {{\n{body}}}"
    ))
    .expect("200 statements of temporaries fit in 512 bytes");
    well_formed(&c.programs[0].insns);
}

#[test]
fn what_kernel_context_cannot_run_yet_is_refused_with_a_sentence() {
    for (script, what) in [
        (
            r#"global a; probe kernel.trace("sched:sched_switch") { a[sprintf("%d", 1)] = 1 } probe end { println(a["1"]) }"#,
            "sprintf",
        ),
        (
            r#"probe kernel.trace("sched:sched_switch") { println(strtol($prev_comm, 10)) }"#,
            "strtol",
        ),
    ] {
        let err = codegen(script).expect_err("refused");
        assert!(
            err.msg.contains(what) && err.msg.contains("not supported in kernel-context probes"),
            "{script}: {}",
            err.msg
        );
    }
}

use rstap_compiler::backend::bpf::layout::{GlobalMap, MapSpec};

/// The map of global `index` in `c`, with its layout.
fn global_map(c: &Compiled, index: usize) -> (&MapSpec, &GlobalMap) {
    c.maps
        .iter()
        .find_map(|m| match &m.role {
            Role::Global(i, g) if *i == index => Some((m, g)),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no map for global {index} in {:?}", c.maps))
}

#[test]
fn aggregates_keep_exactly_the_histograms_and_variance_the_script_reads() {
    let c = codegen(
        r#"global s, h, v, plain
probe kernel.trace("sched:sched_switch") { s <<< $prev_pid; h[$next_pid] <<< 1; v <<< 2; plain <<< 3 }
probe end {
  print(@hist_linear(s, 0, 100, 10)); print(@hist_log(s))
  foreach (k in h) print(@hist_log(h[k]))
  println(@variance(v, 3), @count(plain))
}"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    let (m, s) = global_map(&c, 0);
    let layout = s.stat.as_ref().expect("an aggregate has a stat layout");
    assert_eq!(layout.variance, None, "nothing reads @variance(s)");
    let hists: Vec<(u32, u32)> = layout.hists.iter().map(|h| (h.offset, h.buckets)).collect();
    assert_eq!(
        hists,
        [(32, 13), (32 + 13 * 8, 128)],
        "13 linear buckets (underflow, 0..100 by 10, overflow), then 128 log buckets"
    );
    assert_eq!((m.kind, m.value_size), (MapKind::PerCpuArray, 32 + 141 * 8));
    let (m, h) = global_map(&c, 1);
    assert_eq!(h.storage, Storage::StatsArray);
    assert_eq!((m.kind, m.value_size), (MapKind::PerCpuHash, 32 + 128 * 8));
    let (m, v) = global_map(&c, 2);
    assert_eq!(v.stat.as_ref().and_then(|l| l.variance), Some(3));
    assert_eq!(m.value_size, 56, "count, sum, min, max, mean, M2, variance");
    assert_eq!(global_map(&c, 3).0.value_size, 32);
    let zeroes = c
        .maps
        .iter()
        .find(|m| m.role == Role::Zeroes)
        .expect("a histogram per element is too large to zero on the stack");
    assert_eq!(
        (zeroes.kind, zeroes.value_size),
        (MapKind::Array, 32 + 128 * 8)
    );
    let small = codegen(
        r#"global h
probe kernel.trace("sched:sched_switch") { h[$next_pid] <<< 1 }"#,
    )
    .expect("compiles");
    assert!(
        small.maps.iter().all(|m| m.role != Role::Zeroes),
        "a 32-byte element is zeroed on the stack"
    );
}

#[test]
fn sized_and_wrapping_arrays_choose_their_maps_and_overflow_messages() {
    let c = codegen(
        r#"global a[10], b%[4], s%[3], t
probe kernel.trace("sched:sched_switch") { a[$prev_pid] = 1; b[$next_pid] = 2; s[$prev_pid] <<< 1; t[$next_pid] <<< 1 }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    let kinds: Vec<(MapKind, u32)> = (0..4)
        .map(|i| {
            let (m, _) = global_map(&c, i);
            (m.kind, m.max_entries)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (MapKind::Hash, 10),
            (MapKind::LruHash, 4),
            (MapKind::LruPerCpuHash, 3),
            (MapKind::PerCpuHash, 2048),
        ]
    );
    let mut msgs: Vec<String> = c.errors.iter().map(|e| e.msg.without_operands()).collect();
    msgs.sort_unstable();
    assert_eq!(
        msgs,
        [
            "Array overflow, check MAXMAPENTRIES",
            "Array overflow, check size limit (10)"
        ],
        "wrapping arrays never overflow"
    );
}

/// How many `lock *(u64 *)(r + off) += r` a program has.
fn atomic_adds(insns: &[Insn]) -> usize {
    insns
        .iter()
        .filter(|i| i.code == 0xdb && i.imm == 0)
        .count()
}

/// The calls of helper `id` in a program.
fn calls_of(insns: &[Insn], id: i32) -> usize {
    insns
        .iter()
        .filter(|i| i.code == 0x85 && i.src == 0 && i.imm == id)
        .count()
}

#[test]
fn scalar_globals_are_read_and_written_at_their_address_without_a_lookup() {
    let c = codegen(
        r#"global a, b
probe kernel.trace("sched:sched_switch") { a = b * 3 + a; b = a }"#,
    )
    .expect("compiles");
    let insns = &c.programs[0].insns;
    well_formed(insns);
    assert_eq!(
        calls_of(insns, helper::MAP_LOOKUP_ELEM),
        0,
        "no map lookup for a scalar"
    );
    // Four accesses, each the address of the one-element map's value.
    let direct = |insns: &[Insn]| {
        insns
            .iter()
            .filter(|i| i.code == 0x18 && i.src == PSEUDO_MAP_VALUE)
            .count()
    };
    assert!(
        direct(insns) >= 4,
        "{} direct value addresses",
        direct(insns)
    );
    // A string scalar too (its handler looks up only its scratch area).
    let s = codegen(
        r#"global s
probe kernel.trace("sched:sched_switch") { s = execname(); if (s == "x") s = "y" }"#,
    )
    .expect("compiles");
    well_formed(&s.programs[0].insns);
    assert!(direct(&s.programs[0].insns) >= 3);
    // A keyed array still looks its element up.
    let keyed = codegen(
        r#"global a
probe kernel.trace("sched:sched_switch") { a[$prev_pid] = a[$next_pid] * 2 }"#,
    )
    .expect("compiles");
    assert!(calls_of(&keyed.programs[0].insns, helper::MAP_LOOKUP_ELEM) >= 1);
}

#[test]
fn increments_of_long_globals_are_atomic_adds() {
    let c = codegen(
        r#"global n, a
probe kernel.trace("sched:sched_switch") { n++; n += $prev_pid; a[$next_pid]++; a[$prev_pid] -= 2; --n }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    assert_eq!(atomic_adds(&c.programs[0].insns), 5);
    let used = codegen(
        r#"global n, a
probe kernel.trace("sched:sched_switch") { x = n++; a[1] = a[1] * 2; printf("%d\n", x) }"#,
    )
    .expect("compiles");
    assert_eq!(
        atomic_adds(&used.programs[0].insns),
        0,
        "an increment whose old value is used, or a product, stays a read and a write"
    );
}

#[test]
fn extraction_in_kernel_context_loops_over_cpus_and_checks_for_empty() {
    let c = codegen(
        r#"global s, h
probe kernel.trace("sched:sched_switch") {
  s <<< $prev_pid; h[$next_pid] <<< 1
  printf("%d %d\n", @count(s), @sum(h[$next_pid]))
}"#,
    )
    .expect("compiles");
    let insns = &c.programs[0].insns;
    well_formed(insns);
    assert_eq!(
        insns
            .iter()
            .filter(|i| i.code == 0x85 && i.imm == 195)
            .count(),
        2,
        "one bpf_map_lookup_percpu_elem loop per extraction"
    );
    assert!(
        insns
            .iter()
            .any(|i| i.code & 0x07 == 0x05 && i.code & 0xf0 == 0xa0 && i.off < 0),
        "the loop over CPUs jumps back"
    );
    assert!(
        c.errors
            .iter()
            .all(|e| e.msg.without_operands() != "empty aggregate"),
        "@count and @sum of an empty aggregate are 0"
    );
    let c = codegen(
        r#"global s
probe kernel.trace("sched:sched_switch") { s <<< 1; printf("%d %d %d %d\n", @min(s), @max(s), @avg(s), @hist_log(s)[3]) }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    let msgs: Vec<String> = c.errors.iter().map(|e| e.msg.without_operands()).collect();
    assert_eq!(
        msgs,
        [
            "empty aggregate",
            "empty aggregate",
            "empty aggregate",
            "empty aggregate",
            "histogram index out of range"
        ]
    );
    let c = codegen(
        r#"global s, h
probe kernel.trace("sched:sched_switch") { s <<< 1; h[2] <<< 3; printf("%d %d\n", @variance(s, 2), @variance(h[2])) }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    assert_eq!(
        c.programs[0]
            .insns
            .iter()
            .filter(|i| i.code == 0x85 && i.imm == 195)
            .count(),
        3,
        "a scalar's @variance walks the CPUs twice (mean, then spread), an element's once"
    );
    assert_eq!(
        c.errors
            .iter()
            .filter(|e| e.msg.without_operands() == "empty aggregate")
            .count(),
        2
    );
}

#[test]
fn an_aggregate_too_large_for_a_per_cpu_value_is_refused_with_a_sentence() {
    let prints: String = (0..32)
        .map(|i| format!("print(@hist_linear(s, {i}, {}, 10))\n", i + 1250))
        .collect();
    let err = codegen(&format!(
        "global s\nprobe kernel.trace(\"sched:sched_switch\") {{ s <<< 1 }}\nprobe end {{ {prints} }}"
    ))
    .expect_err("32 histograms of 128 buckets do not fit 32 KiB");
    assert!(
        err.msg.contains("global 's' keeps 32 histograms") && err.msg.contains("32768"),
        "{}",
        err.msg
    );
}

#[test]
fn function_calls_compile_inlined_with_their_overloads() {
    let c = codegen(
        r#"global t
function sq(x) { return x * x }
function hyp(a, b) { return sq(a) + sq(b) }
function f(x) { if (x > 1) next; return x * 2 }
function f(x) { return x + 100 }
function first(lim) { for (i = 0; ; i++) if (sq(i) > lim) return i }
probe kernel.trace("sched:sched_switch") { t += hyp($prev_pid, 4) + f($next_pid) + first($prev_pid) }"#,
    )
    .expect("calls compile once inlined");
    assert_eq!(c.programs.len(), 1);
    well_formed(&c.programs[0].insns);
}

/// The script text at each error `c` can raise (an inlined call's errors are
/// `error()`s: their text comes with the record).
fn raised_at<'s>(c: &Compiled, script: &'s str) -> Vec<&'s str> {
    c.errors
        .iter()
        .filter_map(|e| e.at)
        .map(|at| &script[at.start as usize..at.end as usize])
        .collect()
}

#[test]
fn next_with_no_overload_left_raises_at_the_call() {
    let script = r#"global t
function f(x) { if (x) next; return 1 }
probe kernel.trace("sched:sched_switch") { t += f($prev_pid) }"#;
    let c = codegen(script).expect("compiles");
    well_formed(&c.programs[0].insns);
    assert_eq!(raised_at(&c, script), ["f($prev_pid)"]);
}

#[test]
fn recursive_functions_are_refused_naming_the_function_at_the_call() {
    for (script, call) in [
        (
            r#"global t; function f(n) { return n > 0 ? f(n - 1) : 0 }
probe kernel.trace("sched:sched_switch") { t = f($prev_pid) }"#,
            "f(n - 1)",
        ),
        (
            r#"global t; function ping(n) { return pong(n) } function pong(n) { return n ? ping(n - 1) : 0 }
probe kernel.trace("sched:sched_switch") { t = ping($prev_pid) }"#,
            "ping(n - 1)",
        ),
    ] {
        let err = codegen(script).expect_err("recursion is refused");
        let name = &call[..call.find('(').expect("a call")];
        assert_eq!(
            err.msg,
            format!("recursive function '{name}' cannot run in a kernel-context probe")
        );
        let at = err.at.expect("at the call");
        assert_eq!(&script[at.start as usize..at.end as usize], call);
    }
}

#[test]
fn calls_past_maxnesting_raise_it_at_the_call() {
    let script = r#"global t
function inner(x) { return x + 1 }
function outer(x) { return inner(x) * 2 }
probe kernel.trace("sched:sched_switch") { t = outer($prev_pid) }"#;
    let deep = codegen_for(
        script,
        Target {
            max_nesting: 1,
            ..TARGET
        },
    )
    .expect("compiles");
    well_formed(&deep.programs[0].insns);
    assert_eq!(raised_at(&deep, script), ["inner(x)"]);
    let ok = codegen(script).expect("compiles");
    assert!(ok.errors.is_empty(), "{:?}", ok.errors);
}

#[test]
fn maxaction_is_counted_where_the_handler_could_exceed_it() {
    let looping = r#"global n, t
probe kernel.trace("sched:sched_switch") { for (i = 0; i < n; i++) t += i }"#;
    let c = codegen(looping).expect("compiles");
    well_formed(&c.programs[0].insns);
    assert_eq!(
        c.errors,
        vec![ErrorSite {
            msg: ErrorMsg::Fixed("MAXACTION exceeded".into()),
            at: None
        }],
        "stap's message, with no location as the user-space engine reports it"
    );
    let straight = r#"global t
probe kernel.trace("sched:sched_switch") { t++; t++; t++ }"#;
    let c = codegen(straight).expect("compiles");
    assert!(
        c.errors.is_empty() && c.maps.len() == 2,
        "three statements cannot exceed MAXACTION: no count, no output ring (t and `target` only)"
    );
    let c = codegen_for(
        straight,
        Target {
            max_action: 2,
            ..TARGET
        },
    )
    .expect("compiles");
    assert_eq!(
        c.errors.len(),
        1,
        "three statements exceed a MAXACTION of 2"
    );
}

#[test]
fn inlined_functions_size_string_key_columns_as_the_handler_does() {
    // `seen` reads a key longer than any the handler writes: the column must
    // hold it, or it would match the key cut to the column's width.
    let c = codegen(
        r#"global a
function seen(k) { return a[k] }
probe kernel.trace("sched:sched_switch") { a[execname()] = 1; a["a key longer than a comm"] += seen("a key longer than a comm, longer still") }"#,
    )
    .expect("compiles");
    let key = c
        .maps
        .iter()
        .find(|m| matches!(m.role, Role::Global(0, _)))
        .map(|m| m.key_size)
        .expect("the map of a");
    assert!(key >= 40, "a key column of {key} bytes");
}

#[test]
fn foreach_compiles_to_a_callback_and_needs_may_goto() {
    let script = r#"global a, n; probe kernel.trace("sched:sched_switch") { a[$prev_pid] = 1; foreach (k in a) n += k }"#;
    let c = codegen(script).expect("foreach compiles");
    assert_eq!(c.callbacks.len(), 1, "one key-collecting callback");
    assert!(
        c.maps.iter().any(|m| m.role == Role::Keys),
        "a key buffer map"
    );
    well_formed(&c.programs[0].insns);
    let mut old = FixtureKernel::new();
    old.may_goto = false;
    let err = codegen_on(script, TARGET, &old).expect_err("refused without may_goto");
    assert!(
        err.msg.contains("needs the may_goto instruction"),
        "{}",
        err.msg
    );
}

#[test]
fn string_searches_compile_to_may_goto_loops_and_need_them() {
    let script = r#"global n; probe kernel.trace("sched:sched_switch") { if (isinstr($prev_comm, "sh") && strpos($next_comm, "k") > 0) n++ }"#;
    let c = codegen(script).expect("isinstr and strpos compile");
    well_formed(&c.programs[0].insns);
    let may_gotos = c.programs[0]
        .insns
        .iter()
        .filter(|i| i.code == 0x05 | 0xe0)
        .count();
    assert_eq!(may_gotos, 4, "two loops for each search");
    let mut old = FixtureKernel::new();
    old.may_goto = false;
    let err = codegen_on(script, TARGET, &old).expect_err("refused without may_goto");
    assert!(
        err.msg.contains("isinstr() and strpos()") && err.msg.contains("may_goto"),
        "{}",
        err.msg
    );
    // substr and stringat need no loop, nor does a search short enough to
    // unroll (execname() for "ssh": 16 starts by 8 needle bytes).
    let script = r#"global n; probe kernel.trace("sched:sched_switch") { if (substr($prev_comm, 0, 2) == "sh" || stringat($next_comm, 1) == 107 || isinstr(execname(), "ssh")) n++ }"#;
    let c = codegen_on(script, TARGET, &old)
        .expect("substr, stringat and short searches compile anywhere");
    well_formed(&c.programs[0].insns);
    assert!(
        !c.programs[0].insns.iter().any(|i| i.code == 0x05 | 0xe0),
        "no may_goto"
    );
}

/// Loads (`ldx`) and stores (`stx`) of whole words relative to the frame
/// pointer: what a register living on the stack costs.
fn stack_words(insns: &[Insn]) -> usize {
    insns
        .iter()
        .filter(|i| (i.code == 0x79 && i.src == 10) || (i.code == 0x7b && i.dst == 10))
        .count()
}

#[test]
fn a_loop_counter_lives_in_a_machine_register() {
    let c = codegen(
        r#"global n
probe kernel.trace("syscalls:sys_enter_openat") { for (i = 0; i < 100; i++) n += i }"#,
    )
    .expect("compiles");
    let insns = &c.programs[0].insns;
    well_formed(insns);
    // With every register on the stack, 21 words go through the frame
    // pointer (5 of them `i`'s, 3 the MAXACTION count's); with `i` and the
    // count in r8 and r9, 11 do.
    let words = stack_words(insns);
    assert!(
        words <= 12,
        "the loop counter should live in a machine register, but {words} words go through the stack:\n{insns:?}"
    );
    assert!(
        insns.iter().any(|i| i.code == 0xbf && i.dst == 8),
        "something should be moved into r8"
    );
}

#[test]
fn the_maxaction_count_in_a_machine_register_has_a_home_of_its_own() {
    // The count is codegen's own register (no MIR instruction names it); in
    // r8 or r9 it still needs a home slot no other register shares, since a
    // string concatenation lends r8 and r9 inside the loop.
    let c = codegen(
        r#"global s
probe kernel.trace("syscalls:sys_enter_openat") { u = ""; for (i = 0; i < 6; i++) u = u . "ab"; s = u }"#,
    )
    .expect("compiles");
    let insns = &c.programs[0].insns;
    well_formed(insns);
    let homes = |reg: u8| -> Vec<i16> {
        insns
            .iter()
            .filter(|i| i.code == 0x7b && i.dst == 10 && i.src == reg)
            .map(|i| i.off)
            .collect()
    };
    let (r8, r9) = (homes(8), homes(9));
    assert!(
        !r8.is_empty() && !r9.is_empty(),
        "r8 and r9 are lent: {insns:?}"
    );
    assert!(
        r8.iter().all(|a| !r9.contains(a)),
        "r8 and r9 share a home slot: {insns:?}"
    );
}

/// Whether `insns` calls BPF helper `id`.
fn calls_helper(insns: &[Insn], id: i32) -> bool {
    insns
        .iter()
        .any(|i| i.code == 0x85 && i.src == 0 && i.imm == id)
}

const GET_FUNC_ARG: i32 = 183;
const GET_FUNC_RET: i32 = 184;

#[test]
fn a_btf_typed_function_runs_as_a_trampoline_reading_its_frame() {
    let fentry = Target {
        fentry: true,
        ..TARGET
    };
    let script = r#"probe kernel.function("vfs_read") { printf("%d\n", $count) }
probe kernel.function("vfs_read").return { printf("%d\n", $return) }"#;
    let c = codegen_for(script, fentry).expect("compiles");
    assert_eq!(c.programs.len(), 2);
    assert!(c.programs.iter().all(|p| p.trampoline));
    let (entry, exit) = (&c.programs[0].insns, &c.programs[1].insns);
    assert!(calls_helper(entry, GET_FUNC_ARG) && !calls_helper(entry, GET_FUNC_RET));
    assert!(calls_helper(exit, GET_FUNC_RET));
    // A kprobe reads the same values from `struct pt_regs` instead.
    let c = codegen_for(script, TARGET).expect("compiles");
    assert!(c.programs.iter().all(|p| !p.trampoline));
    assert!(
        !c.programs
            .iter()
            .any(|p| calls_helper(&p.insns, GET_FUNC_ARG))
    );
}

#[test]
fn kprobes_stay_kprobes_where_asked_or_where_no_trampoline_fits() {
    let fentry = Target {
        fentry: true,
        ..TARGET
    };
    // kprobe.function always means a kprobe; the kernel may lack fentry; a
    // wildcard's functions get kprobes (one program, see below).
    let kprobe = codegen_for(
        r#"probe kprobe.function("vfs_read") { printf("%d\n", $count) }"#,
        fentry,
    )
    .expect("compiles");
    assert!(!kprobe.programs[0].trampoline);
    let mut no_fentry = FixtureKernel::new();
    no_fentry.features.fentry = false;
    let c = codegen_on(
        r#"probe kernel.function("vfs_read") { printf("%d\n", $count) }"#,
        fentry,
        &no_fentry,
    )
    .expect("compiles");
    assert!(!c.programs[0].trampoline);
    let wildcard =
        codegen_for(r#"probe kernel.function("vfs_*") { next }"#, fentry).expect("compiles");
    assert!(wildcard.programs.iter().all(|p| !p.trampoline));
}

#[test]
fn a_wildcards_functions_share_one_program_when_their_code_is_the_same() {
    // vfs_read, vfs_readv, vfs_readlink, vfs_write: the handler does not
    // depend on the function, and prints through one shared site.
    let c = codegen(
        r#"global n
probe kernel.function("vfs_*") { n++; printf("hit %d\n", n) }"#,
    )
    .expect("compiles");
    assert_eq!(c.programs.len(), 1, "{:?}", c.programs.len());
    assert_eq!(c.programs[0].also.len(), 3);
    assert_eq!(c.prints.len(), 1);
    // Entries and returns never share a program.
    let c = codegen(
        r#"global n
probe kernel.function("vfs_read*"), kernel.function("vfs_read*").return { n++ }"#,
    )
    .expect("compiles");
    assert_eq!(c.programs.len(), 2);
}

#[test]
fn symbols_and_stacks_are_recorded_as_addresses_for_user_space_to_name() {
    use rstap_compiler::backend::bpf::codegen::{Deferred, MAX_FRAMES};
    use rstap_compiler::backend::bpf::insn::helper;
    use rstap_compiler::backend::bpf::layout::Col;
    let c = codegen(
        r#"probe kernel.trace("sched:sched_switch") {
  print_backtrace()
  s = symdata($prev_pid)
  printf("%s %s %d\n", symname($next_pid), s, 1)
  println(backtrace())
}"#,
    )
    .expect("compiles");
    let insns = &c.programs[0].insns;
    well_formed(insns);
    let stack = Col::Str(8 * (1 + MAX_FRAMES));
    let sites: Vec<(&[Col], &[Option<Deferred>])> = c
        .prints
        .iter()
        .map(|p| (p.args.as_slice(), p.deferred.as_slice()))
        .collect();
    assert_eq!(
        sites,
        [
            (&[stack][..], &[Some(Deferred::PrintBacktrace)][..]),
            (
                &[Col::Str(8), Col::Str(8), Col::Long][..],
                &[Some(Deferred::Symname), Some(Deferred::Symdata), None][..]
            ),
            (&[stack][..], &[Some(Deferred::Backtrace)][..]),
        ],
        "an address word or a stack per deferred argument"
    );
    let stack_walks = insns
        .iter()
        .filter(|i| i.code == 0x85 && i.imm == helper::GET_STACK)
        .count();
    assert_eq!(stack_walks, 2, "one bpf_get_stack per backtrace: {insns:?}");
}

#[test]
fn a_symbol_or_stack_used_other_than_printed_is_refused_naming_the_function() {
    for (script, func) in [
        (r#"if (backtrace() == "") println(1)"#, "backtrace()"),
        (r#"a[symname($prev_pid)] <<< 1"#, "symname()"),
        (r#"println("at " . symdata(0))"#, "symdata()"),
        (r#"x = symname(0); x = "y"; println(x)"#, "symname()"),
    ] {
        let script = format!(
            "global a\nprobe kernel.trace(\"sched:sched_switch\") {{ {script} }}\nprobe end {{ println(@count(a[\"\"])) }}"
        );
        let err = codegen(&script).expect_err("refused");
        assert_eq!(
            err.msg,
            format!(
                "in a kernel-context probe, {func} can only be printed: the kernel records addresses and rstap names them after the event"
            ),
            "{script}"
        );
    }
    // Copied and printed, it is fine.
    codegen(r#"probe kernel.trace("sched:sched_switch") { x = symname(0); y = x; println(y) }"#)
        .expect("a copy prints");
}

#[test]
fn probe_point_names_compile_to_string_constants() {
    let c = codegen(
        r#"probe kernel.trace("sched:sched_switch") { printf("%s|%s|%s\n", pp(), ppfunc(), probefunc()) }"#,
    )
    .expect("compiles");
    use rstap_compiler::backend::bpf::layout::Col;
    let pp = "kernel.trace(\"sched:sched_switch\")".len() as u32 + 1;
    assert_eq!(
        c.prints[0].args,
        [Col::Str(pp.next_multiple_of(8)), Col::Str(8), Col::Str(8)],
        "each column as wide as its constant"
    );
    assert!(c.prints[0].deferred.iter().all(Option::is_none));
}

#[test]
fn every_program_returns_at_once_after_exit_and_exit_sets_the_flag() {
    let c = codegen(
        r#"global n
probe kernel.trace("sched:sched_switch") { n++; if (n > 5) exit() }
probe kernel.trace("sched:sched_process_exec") { n-- }"#,
    )
    .expect("compiles");
    let target = c
        .maps
        .iter()
        .position(|m| m.name == "target")
        .expect("a target map");
    assert_eq!(
        (c.maps[target].max_entries, c.maps[target].value_size),
        (1, 16),
        "one value: target(), then the exiting flag"
    );
    for p in &c.programs {
        well_formed(&p.insns);
        // The first instruction after saving the context addresses the
        // flag in `target`'s value directly: it is read before anything else
        // happens, without a lookup.
        let first = p.insns[1];
        assert_eq!((first.code, first.src), (0x18, 2), "{:?}", &p.insns[..3]);
        assert_eq!(usize::try_from(first.imm).ok(), Some(target));
        assert_eq!(p.insns[2].imm, 8, "the second word");
    }
    // exit() stores 1 through the address of word EXITING.
    let exiting = c.programs[0]
        .insns
        .windows(2)
        .any(|w| w[0].code == 0xb7 && w[0].dst == 1 && w[0].imm == 1 && w[1].code == 0x7b);
    assert!(exiting, "exit() sets the flag");
}

#[test]
fn an_empty_handler_is_a_bare_return() {
    // Starting it after exit() changes nothing, so it does not read the flag.
    // (-u: an empty probe is kept.)
    let unoptimized = check::Options {
        unoptimized: true,
        ..check::Options::default()
    };
    let empty = r#"probe kernel.trace("sched:sched_switch") { }"#;
    let c = codegen_with(empty, TARGET, &FixtureKernel::new(), &unoptimized).expect("compiles");
    let codes: Vec<u8> = c.programs[0].insns.iter().map(|i| i.code).collect();
    assert!(
        !codes.contains(&0x18) && !codes.contains(&0x85),
        "no map, no helper call: {codes:x?}"
    );
    well_formed(&c.programs[0].insns);
}

#[test]
fn stp_pid_in_a_kernel_probe_is_the_loading_process() {
    let c = codegen(
        r#"global n
probe kernel.trace("skb:kfree_skb") { if (pid() == stp_pid()) n++ }"#,
    )
    .expect("compiles");
    well_formed(&c.programs[0].insns);
    assert!(
        c.programs[0]
            .insns
            .iter()
            .any(|i| i.code == 0xb7 && i.imm == TARGET.tracer_pid),
        "a move of the tracer's pid (4242) into a register"
    );
}

#[test]
fn a_sampling_probes_probefunc_is_stored_and_printed_but_never_tested() {
    // A token of the sampled pc, 26 bytes at most: as wide a key as needed.
    let c = codegen(
        r#"global p, last
probe timer.profile { p[probefunc()] <<< 1; last = "in " . probefunc(); println(probefunc()) }"#,
    )
    .expect("keys, values and prints compile");
    use rstap_compiler::backend::bpf::layout::Col;
    assert_eq!(c.prints[0].args, [Col::Str(32)]);
    for script in [
        r#"if (probefunc() == "schedule") println(1)"#,
        r#"x = "f=" . probefunc(); if (x =~ "^f=s") println(1)"#,
        r#"println(strlen(probefunc()))"#,
    ] {
        let err = codegen(&format!("probe timer.profile {{ {script} }}")).expect_err("refused");
        assert!(
            err.msg
                .starts_with("in a sampling probe, probefunc() can only be printed or stored"),
            "{script}: {}",
            err.msg
        );
    }
}
