//! BPF code generation from checked scripts (fixture kernel): what compiles,
//! the maps it asks for, jumps that stay inside their program, handlers that fit
//! the stack, and clear refusals for what kernel context cannot run yet. The
//! bytecode itself is tested by loading and running it (kernel tier).

mod support;

use rstap_compiler::backend::bpf::codegen::{CodegenError, Compiled, ErrorMsg, Target, compile};
use rstap_compiler::backend::bpf::insn::Insn;
use rstap_compiler::backend::bpf::layout::{MapKind, Role, Storage};
use rstap_compiler::check::{self, Library};
use rstap_compiler::mir;
use rstap_grammar::{ParseOptions, SourceMap, parse};
use support::FixtureKernel;

fn codegen(script: &str) -> Result<Compiled, CodegenError> {
    let mut files = SourceMap::new();
    let id = files.add("t.stp", script);
    let ast = parse(&files, id, &ParseOptions::default())
        .unwrap_or_else(|d| panic!("does not parse:\n{}", d.render(&files)));
    let library = Library::from_files(Vec::new());
    let kernel = FixtureKernel::new();
    let checked = check::check(&ast, &library, &kernel, &check::Options::default())
        .unwrap_or_else(|d| panic!("does not check:\n{}", d.render(&files)));
    compile(
        &mir::lower(&checked.program),
        &kernel,
        Target {
            max_entries: 2048,
            wall_offset_ns: 0,
            max_string: 0,
            possible_cpus: 2,
        },
    )
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
    assert_eq!(
        kinds,
        vec![MapKind::Array, MapKind::RingBuf, MapKind::PerCpuArray]
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
            r#"probe kernel.trace("sched:sched_switch") { x = sprintf("%d", 1); println(x) }"#,
            "printing",
        ),
        (
            r#"probe kernel.trace("sched:sched_switch") { println(isinstr($prev_comm, "sh")) }"#,
            "isinstr",
        ),
        (
            r#"global a; function f(x) { return x + 1 } probe kernel.trace("sched:sched_switch") { a[1] = f($prev_pid) }"#,
            "function call",
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
