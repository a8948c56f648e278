//! The JIT against the interpreter in process, on a MIR program built by hand.

use super::EngineKind;
use crate::engine::{Engine, Host, Limits};
use rstap_compiler::hir::{BinOp, Context, PointKind, PrintKind};
use rstap_compiler::mir::{
    Block, Body, CmpOp, Function, Inst, PrintSpec, Probe, Program, Reg, Term, Ty,
};
use rstap_grammar::Span;

fn block(insts: Vec<Inst>, term: Term) -> Block {
    Block {
        insts,
        term,
        actions: 1,
        catch: None,
    }
}

/// `function half(n) { return n / 2 }`, and a begin probe that sums
/// `half(i) / (i - 3)` for i in 0..6 under `try`, printing the caught
/// message with i, then the sum: a loop, a call, a `division by 0` caught.
fn program() -> Program {
    let (n, two, q) = (Reg(0), Reg(1), Reg(2));
    let half = Function {
        name: "half".into(),
        params: vec![n],
        ret: Some(Ty::Long),
        next: None,
        body: Body {
            regs: vec![Ty::Long; 3],
            blocks: vec![block(
                vec![
                    Inst::Const { dst: two, value: 2 },
                    Inst::Binary {
                        dst: q,
                        op: BinOp::Div,
                        a: n,
                        b: two,
                        at: Span::default(),
                    },
                ],
                Term::Return(Some(q)),
            )],
            ..Body::default()
        },
    };
    // r0 i, r1 sum, r2 limit, r3 cond, r4 one, r5 three, r6 h, r7 d, r8 msg
    let r = |i| Reg(i);
    let println = |args| Inst::Print {
        dst: None,
        spec: Box::new(PrintSpec {
            kind: PrintKind::Println,
            format: Vec::new(),
        }),
        args,
    };
    let mut body_block = block(
        vec![
            Inst::Call {
                dst: Some(r(6)),
                func: rstap_compiler::mir::FuncId(0),
                args: vec![r(0)],
                at: Span::default(),
            },
            Inst::Binary {
                dst: r(7),
                op: BinOp::Sub,
                a: r(0),
                b: r(5),
                at: Span::default(),
            },
            Inst::Binary {
                dst: r(7),
                op: BinOp::Div,
                a: r(6),
                b: r(7),
                at: Span::default(),
            },
            Inst::Binary {
                dst: r(1),
                op: BinOp::Add,
                a: r(1),
                b: r(7),
                at: Span::default(),
            },
        ],
        Term::Jump(rstap_compiler::mir::BlockId(3)),
    );
    body_block.catch = Some((rstap_compiler::mir::BlockId(4), Some(r(8))));
    let b = rstap_compiler::mir::BlockId;
    let begin = Body {
        regs: [vec![Ty::Long; 8], vec![Ty::Str]].concat(),
        blocks: vec![
            block(
                vec![
                    Inst::Const {
                        dst: r(2),
                        value: 6,
                    },
                    Inst::Const {
                        dst: r(4),
                        value: 1,
                    },
                    Inst::Const {
                        dst: r(5),
                        value: 3,
                    },
                ],
                Term::Jump(b(1)),
            ),
            block(
                vec![Inst::Compare {
                    dst: r(3),
                    op: CmpOp::Lt,
                    a: r(0),
                    b: r(2),
                }],
                Term::Branch {
                    cond: r(3),
                    then: b(2),
                    otherwise: b(5),
                },
            ),
            body_block,
            block(
                vec![Inst::Binary {
                    dst: r(0),
                    op: BinOp::Add,
                    a: r(0),
                    b: r(4),
                    at: Span::default(),
                }],
                Term::Jump(b(1)),
            ),
            block(vec![println(vec![r(8), r(0)])], Term::Jump(b(3))),
            block(vec![println(vec![r(1)])], Term::Return(None)),
        ],
        ..Body::default()
    };
    Program {
        globals: Vec::new(),
        functions: vec![half],
        probes: vec![Probe {
            kind: PointKind::Begin(0),
            name: "begin".into(),
            written: "begin".into(),
            context: Context::User,
            body: begin,
            span: Span::default(),
        }],
        unread: Vec::new(),
    }
}

fn host() -> Host {
    Host {
        comm: b"rstap".to_vec(),
        pid: 1,
        ppid: 0,
        uid: 0,
        gid: 0,
        target: 0,
        hz: 250,
        cpus: 1,
    }
}

fn run(prog: &Program, kind: EngineKind) -> (Vec<u8>, usize) {
    let mut e = Engine::new(prog, Limits::default(), host());
    e.set_engine(kind);
    let r = e.run_probe(0);
    assert!(r.is_ok(), "the begin probe failed: {r:?}");
    (e.out.clone(), e.jit_stats().compiled.len())
}

#[test]
fn compiled_bodies_print_what_the_interpreter_prints() {
    let prog = program();
    let (interp, none) = run(&prog, EngineKind::Interp);
    let (jit, compiled) = run(&prog, EngineKind::Jit);
    assert_eq!(
        String::from_utf8_lossy(&jit),
        String::from_utf8_lossy(&interp),
        "the JIT's output differs from the interpreter's"
    );
    assert_eq!(
        String::from_utf8_lossy(&interp),
        "division by 03\n2\n",
        "the interpreter's own output"
    );
    assert_eq!(none, 0, "the interpreter compiled something");
    assert_eq!(compiled, 2, "the probe and the function should be compiled");
}

#[test]
fn a_body_with_a_loop_is_compiled_at_once_a_loop_free_one_when_it_runs_again() {
    let mut prog = program();
    let looped = prog.probes[0].body.clone();
    assert!(looped.may_loop() && !prog.functions[0].body.may_loop());
    // A second probe: `println(7)`, no loop.
    let seven = Body {
        regs: vec![Ty::Long],
        blocks: vec![block(
            vec![
                Inst::Const {
                    dst: Reg(0),
                    value: 7,
                },
                Inst::Print {
                    dst: None,
                    spec: Box::new(PrintSpec {
                        kind: PrintKind::Println,
                        format: Vec::new(),
                    }),
                    args: vec![Reg(0)],
                },
            ],
            Term::Return(None),
        )],
        ..Body::default()
    };
    prog.probes.push(Probe {
        body: seven,
        ..prog.probes[0].clone()
    });
    let mut e = Engine::new(&prog, Limits::default(), host());
    e.set_engine(EngineKind::Jit);
    let compiled = |e: &Engine<'_>| -> Vec<String> {
        e.jit_stats()
            .compiled
            .iter()
            .map(|c| c.name.clone())
            .collect()
    };
    assert!(e.run_probe(1).is_ok());
    assert!(compiled(&e).is_empty(), "a body run once is interpreted");
    assert!(e.run_probe(1).is_ok());
    assert_eq!(compiled(&e), ["probe begin"], "compiled when it runs again");
    // The looping probe compiles on its first run; the function it calls
    // six times, on its second call.
    assert!(e.run_probe(0).is_ok());
    assert_eq!(compiled(&e).len(), 3, "{:?}", compiled(&e));
    assert_eq!(String::from_utf8_lossy(&e.out), "7\n7\ndivision by 03\n2\n");
}

#[test]
fn an_end_probe_is_interpreted_even_when_it_loops() {
    let mut prog = program();
    prog.probes[0].kind = PointKind::End(0);
    assert!(prog.probes[0].body.may_loop());
    let (interp, _) = run(&prog, EngineKind::Interp);
    let (jit, compiled) = run(&prog, EngineKind::Jit);
    assert_eq!(
        String::from_utf8_lossy(&jit),
        String::from_utf8_lossy(&interp)
    );
    // The function it calls six times still compiles on its second call.
    let mut e = Engine::new(&prog, Limits::default(), host());
    e.set_engine(EngineKind::Jit);
    assert!(e.run_probe(0).is_ok());
    let names: Vec<String> = e
        .jit_stats()
        .compiled
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert!(
        names.iter().all(|n| !n.starts_with("probe")),
        "the end probe was compiled: {names:?}"
    );
    assert_eq!(compiled, names.len());
}
