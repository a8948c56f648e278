//! Kernel tier: a hand-assembled program counts this process's getppid calls
//! into a per-CPU array; the sum read back through the raw map layer must be
//! exact. Needs root and BPF: elsewhere it prints why it skipped, unless
//! RSTAP_REQUIRE_KERNEL_TESTS=1 makes that a failure.

use rstap_compiler::backend::bpf::insn::{Alu, Insn, Jmp, Size, helper};
use rstap_compiler::backend::bpf::object::{MapDef, MapKind, ProgramDef};
use rstap_runtime::bpf::load::{HardwareEvent, PerfEventConfig, SamplePolicy, SoftwareEvent};
use rstap_runtime::bpf::{
    AttachError, BpfObject, DirectLink, LoadError, MissingFeature, Update, prog,
};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

const CALLS: u64 = 100_000;

/// The programs count or send every getppid call of this process, whichever
/// thread makes it, and the test harness runs tests on parallel threads: tests
/// that call getppid hold this lock throughout.
static GETPPID: Mutex<()> = Mutex::new(());

fn exclusive_getppid() -> MutexGuard<'static, ()> {
    GETPPID.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Whether `test` must skip: not root. Prints why, or panics when kernel
/// tests are required.
fn cannot_run_kernel_tests(test: &str) -> bool {
    if effective_uid() == 0 {
        return false;
    }
    let why = "needs root (BPF programs and tracepoints)";
    if std::env::var("RSTAP_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
        panic!("{test}: {why}, and RSTAP_REQUIRE_KERNEL_TESTS=1");
    }
    println!("skipped {test}: {why}");
    true
}

/// The effective uid, from /proc/self/status (no unsafe libc call needed).
fn effective_uid() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .and_then(|euid| euid.parse().ok())
        .unwrap_or(u32::MAX)
}

/// Loading failed for lack of BPF itself (not a bug of ours): skip or fail.
fn skip_without_bpf(test: &str, e: &LoadError) -> bool {
    let text = e.to_string();
    let no_bpf = ["Operation not permitted", "Function not implemented"]
        .iter()
        .any(|s| text.contains(s));
    if !no_bpf || std::env::var("RSTAP_REQUIRE_KERNEL_TESTS").as_deref() == Ok("1") {
        return false;
    }
    println!("skipped {test}: this kernel does not let us load BPF programs ({text})");
    true
}

/// The one-counter per-CPU array [`count_calls_of`] adds to.
fn counts_map() -> MapDef {
    MapDef {
        name: "counts".into(),
        kind: MapKind::PerCpuArray,
        key_size: 4,
        value_size: 8,
        max_entries: 1,
        flags: 0,
    }
}

/// `if (pid_tgid >> 32 == tgid) { v = lookup(counts, 0); if (v) *v += 1; }`
fn count_calls_of(tgid: u32) -> Vec<Insn> {
    let mut insns = vec![
        Insn::call(helper::GET_CURRENT_PID_TGID),
        Insn::alu_imm(Alu::Rsh, 0, 32),
        Insn::jump_imm(Jmp::Jne, 0, tgid as i32, 10), // → exit
        Insn::store_imm(Size::W, 10, -4, 0),
    ];
    insns.extend(Insn::ld_map(1, 0));
    insns.extend([
        Insn::mov_reg(2, 10),
        Insn::alu_imm(Alu::Add, 2, -4),
        Insn::call(helper::MAP_LOOKUP_ELEM),
        Insn::jump_imm(Jmp::Jeq, 0, 0, 3), // → exit
        Insn::load(Size::DW, 1, 0, 0),
        Insn::alu_imm(Alu::Add, 1, 1),
        Insn::store(Size::DW, 0, 0, 1),
        // exit:
        Insn::mov_imm(0, 0),
        Insn::exit(),
    ]);
    insns
}

#[test]
fn getppid_calls_are_counted_exactly() {
    const TEST: &str = "getppid_calls_are_counted_exactly";
    let _getppid = exclusive_getppid();
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    // compile
    let counts = counts_map();
    let program = ProgramDef {
        name: "count_getppid".into(),
        section: "tracepoint/syscalls/sys_enter_getppid".into(),
        insns: count_calls_of(std::process::id()),
    };
    let (maps, programs) = ([counts], [program]);

    // load + attach
    let started = Instant::now();
    let mut bpf = match BpfObject::load(&maps, &programs, &[]) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected the counting program to load: {e}"),
    };
    let loaded = started.elapsed();
    bpf.attach_tracepoint("count_getppid", "syscalls", "sys_enter_getppid")
        .unwrap_or_else(|e| panic!("expected sys_enter_getppid to attach: {e}"));
    let attached = started.elapsed();
    println!(
        "load {:.2} ms, load+attach {:.2} ms",
        loaded.as_secs_f64() * 1e3,
        attached.as_secs_f64() * 1e3
    );

    // trigger
    for _ in 0..CALLS {
        std::hint::black_box(getppid());
    }

    // assert
    let map = bpf.map("counts").expect("the object has a `counts` map");
    let per_cpu = map
        .lookup_per_cpu(&0u32.to_ne_bytes())
        .unwrap_or_else(|e| panic!("expected to read the per-CPU counts: {e}"))
        .expect("an array map always has key 0");
    assert_eq!(
        per_cpu.len(),
        rstap_runtime::bpf::maps::possible_cpus().expect("possible CPUs"),
        "one value per possible CPU"
    );
    let total: u64 = per_cpu
        .iter()
        .map(|v| u64::from_ne_bytes(v.as_slice().try_into().expect("8-byte values")))
        .sum();
    assert_eq!(
        total, CALLS,
        "expected exactly {CALLS} getppid calls counted, per CPU: {per_cpu:?}"
    );

    // After detaching, calls are no longer counted.
    bpf.detach_all();
    assert_eq!(bpf.attachments(), 0);
    getppid();
    let after: u64 = map_total(&bpf);
    assert_eq!(after, CALLS, "a detached program must not count");
}

fn map_total(bpf: &BpfObject) -> u64 {
    bpf.map("counts")
        .and_then(|m| m.lookup_per_cpu(&0u32.to_ne_bytes()).ok().flatten())
        .expect("per-CPU counts readable")
        .iter()
        .map(|v| u64::from_ne_bytes(v.as_slice().try_into().expect("8-byte values")))
        .sum()
}

/// getppid(2): std's `parent_id` is `libc::getppid` without the unsafe call.
fn getppid() -> u32 {
    std::os::unix::process::parent_id()
}

#[test]
fn kprobes_attach_or_say_why_not() {
    const TEST: &str = "kprobes_attach_or_say_why_not";
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    let program = ProgramDef {
        name: "on_vfs_read".into(),
        section: "kprobe/vfs_read".into(),
        insns: vec![Insn::mov_imm(0, 0), Insn::exit()],
    };
    let (maps, programs): ([MapDef; 0], _) = ([], [program]);
    let mut bpf = match BpfObject::load(&maps, &programs, &[]) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected a kprobe program to load (attach is what may fail): {e}"),
    };
    let kernel_has_kprobes = Path::new("/sys/kernel/tracing/kprobe_events").exists()
        || Path::new("/sys/bus/event_source/devices/kprobe/type").exists();
    let result = bpf.attach_kprobe("on_vfs_read", "vfs_read", 0);
    if kernel_has_kprobes {
        result.unwrap_or_else(|e| {
            panic!("this kernel has kprobes; expected vfs_read to attach: {e}")
        });
        return;
    }
    let Err(e) = result else {
        panic!("this kernel has no kprobes, yet attaching to vfs_read succeeded");
    };
    assert!(
        matches!(
            e,
            AttachError::Unsupported {
                missing: MissingFeature::Kprobes,
                ..
            }
        ),
        "expected the missing-kprobes error, got: {e}"
    );
    assert_eq!(
        e.to_string(),
        "cannot attach `on_vfs_read` to kernel function vfs_read: this kernel has no kprobes \
         (CONFIG_KPROBE_EVENTS); use a tracepoint (kernel.trace(\"...\")) instead"
    );
}

/// `if (pid_tgid >> 32 == tgid) ringbuf_output(events, &pid_tgid, 8, 0);`
fn send_pid_tgid_of(tgid: u32) -> Vec<Insn> {
    let mut insns = vec![
        Insn::call(helper::GET_CURRENT_PID_TGID),
        Insn::mov_reg(6, 0),
        Insn::alu_imm(Alu::Rsh, 0, 32),
        Insn::jump_imm(Jmp::Jne, 0, tgid as i32, 8), // → exit
        Insn::store(Size::DW, 10, -8, 6),
    ];
    insns.extend(Insn::ld_map(1, 0));
    insns.extend([
        Insn::mov_reg(2, 10),
        Insn::alu_imm(Alu::Add, 2, -8),
        Insn::mov_imm(3, 8),
        Insn::mov_imm(4, 0),
        Insn::call(helper::RINGBUF_OUTPUT),
        // exit:
        Insn::mov_imm(0, 0),
        Insn::exit(),
    ]);
    insns
}

#[test]
fn ring_buffer_records_arrive_in_full() {
    const TEST: &str = "ring_buffer_records_arrive_in_full";
    let _getppid = exclusive_getppid();
    const RECORDS: usize = 1000;
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    // compile
    let events = MapDef {
        name: "events".into(),
        kind: MapKind::RingBuf,
        key_size: 0,
        value_size: 0,
        max_entries: 64 * 1024,
        flags: 0,
    };
    let program = ProgramDef {
        name: "send_getppid".into(),
        section: "tracepoint/syscalls/sys_enter_getppid".into(),
        insns: send_pid_tgid_of(std::process::id()),
    };
    let (maps, programs) = ([events], [program]);

    // load + attach
    let mut bpf = match BpfObject::load(&maps, &programs, &[]) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected the ring buffer program to load: {e}"),
    };
    let mut ring = bpf
        .take_ring_buffer("events")
        .unwrap_or_else(|e| panic!("expected to open the ring buffer: {e}"));
    assert!(bpf.map("events").is_none(), "a taken ring has no raw map");
    bpf.attach_tracepoint("send_getppid", "syscalls", "sys_enter_getppid")
        .unwrap_or_else(|e| panic!("expected sys_enter_getppid to attach: {e}"));

    // trigger
    for _ in 0..RECORDS {
        std::hint::black_box(getppid());
    }

    // assert
    let ready = ring.wait(Some(std::time::Duration::from_secs(1)));
    assert!(
        matches!(ready, Ok(true)),
        "expected the ring to be readable: {ready:?}"
    );
    let mut seen = 0;
    let got = ring.drain(|record| {
        let pid_tgid = u64::from_ne_bytes(record.try_into().expect("8-byte records"));
        assert_eq!(pid_tgid >> 32, u64::from(std::process::id()), "tgid");
        seen += 1;
    });
    assert_eq!(
        (got, seen),
        (RECORDS, RECORDS),
        "every getppid call sends one record"
    );
    let idle = ring.wait(Some(std::time::Duration::from_millis(10)));
    assert!(
        matches!(idle, Ok(false)),
        "a drained ring is not readable: {idle:?}"
    );
}

#[test]
fn perf_events_attach_on_every_cpu_or_say_why_not() {
    const TEST: &str = "perf_events_attach_on_every_cpu_or_say_why_not";
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    let program = |name: &str| ProgramDef {
        name: name.into(),
        section: "perf_event".into(),
        insns: vec![Insn::mov_imm(0, 0), Insn::exit()],
    };
    let (maps, programs): ([MapDef; 0], _) = ([], [program("on_clock"), program("on_cycles")]);
    let mut bpf = match BpfObject::load(&maps, &programs, &[]) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected perf_event programs to load: {e}"),
    };
    let cpus = rstap_runtime::bpf::load::online_cpus()
        .expect("/sys/devices/system/cpu/online")
        .len();
    bpf.attach_perf_event(
        "on_clock",
        PerfEventConfig::Software(SoftwareEvent::CpuClock),
        SamplePolicy::Frequency(99),
    )
    .unwrap_or_else(|e| panic!("expected the cpu-clock software event to attach: {e}"));
    assert!(
        bpf.attachments() >= 1,
        "one attachment per online CPU ({cpus})"
    );

    // Hardware counters exist on bare metal, not in a VM without a virtual PMU.
    let before = bpf.attachments();
    match bpf.attach_perf_event(
        "on_cycles",
        PerfEventConfig::Hardware(HardwareEvent::CpuCycles),
        SamplePolicy::Period(1_000_000),
    ) {
        Ok(()) => assert_eq!(bpf.attachments(), 2 * before),
        Err(e) => {
            assert!(
                matches!(
                    e,
                    AttachError::Unsupported {
                        missing: MissingFeature::HardwareCounters,
                        ..
                    }
                ),
                "expected success or the missing-PMU sentence, got: {e}"
            );
            assert_eq!(bpf.attachments(), before, "a failed attach leaves nothing");
            println!("{e}");
        }
    }
}

#[test]
fn raw_maps_round_trip_run_time_sized_values() {
    const TEST: &str = "raw_maps_round_trip_run_time_sized_values";
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    let map = |name: &str, kind, key_size, value_size| MapDef {
        name: name.into(),
        kind,
        key_size,
        value_size,
        max_entries: 4,
        flags: 0,
    };
    let maps = [
        map("names", MapKind::Hash, 16, 12),
        map("stats", MapKind::PerCpuArray, 4, 12),
    ];
    let programs: [ProgramDef; 0] = [];
    let bpf = match BpfObject::load(&maps, &programs, &[]) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected the maps to be created: {e}"),
    };

    let names = bpf.map("names").expect("map `names`");
    let key = |s: &str| {
        let mut k = [0u8; 16];
        k[..s.len()].copy_from_slice(s.as_bytes());
        k
    };
    for (i, name) in ["ls", "cat", "sh"].iter().enumerate() {
        names
            .update(&key(name), &[i as u8; 12], Update::NoExist)
            .unwrap_or_else(|e| panic!("expected to insert {name}: {e}"));
    }
    assert_eq!(
        names.lookup(&key("cat")).expect("lookup"),
        Some(vec![1; 12])
    );
    let again = names
        .update(&key("cat"), &[9; 12], Update::NoExist)
        .expect_err("NoExist on an existing key must fail");
    assert!(
        again.to_string().contains("the key already exists"),
        "{again}"
    );
    let mut keys: Vec<_> = names.keys().map(|k| k.expect("iterate")).collect();
    keys.sort();
    assert_eq!(keys, [key("cat"), key("ls"), key("sh")]);
    assert!(names.delete(&key("cat")).expect("delete"));
    assert!(!names.delete(&key("cat")).expect("delete again"));
    assert_eq!(names.lookup(&key("cat")).expect("lookup"), None);
    let short = names
        .lookup(b"ls")
        .expect_err("a 2-byte key must be refused");
    assert_eq!(
        short.to_string(),
        "map `names` has 16-byte keys; the key given has 2 bytes"
    );

    let stats = bpf.map("stats").expect("map `stats`");
    assert!(stats.is_per_cpu());
    let cpus = rstap_runtime::bpf::maps::possible_cpus().expect("possible CPUs");
    let values: Vec<Vec<u8>> = (0..cpus).map(|c| vec![c as u8 + 1; 12]).collect();
    let slices: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    stats
        .update_per_cpu(&1u32.to_ne_bytes(), &slices, Update::Any)
        .unwrap_or_else(|e| panic!("expected a per-CPU update: {e}"));
    assert_eq!(
        stats.lookup_per_cpu(&1u32.to_ne_bytes()).expect("lookup"),
        Some(values),
        "12-byte values come back unpadded, one per possible CPU"
    );
    assert!(
        stats.lookup(&1u32.to_ne_bytes()).is_err(),
        "plain lookup on a per-CPU map"
    );
}

#[test]
fn programs_loaded_directly_get_their_maps_and_the_verifiers_log() {
    const TEST: &str = "programs_loaded_directly_get_their_maps_and_the_verifiers_log";
    if cannot_run_kernel_tests(TEST) {
        return;
    }
    let counts = counts_map();
    let kprobe = |name: &str, insns| ProgramDef {
        name: name.into(),
        section: "kprobe/vfs_read".into(),
        insns,
    };
    // r2 is read before it is written: the verifier refuses that.
    let bad = vec![Insn::mov_reg(0, 2), Insn::exit()];
    let maps = [counts];
    let programs = [
        kprobe("multi", count_calls_of(std::process::id())),
        kprobe("bad", bad),
    ];
    let later = std::collections::HashSet::from(["multi".to_string(), "bad".to_string()]);
    let mut bpf = match BpfObject::load_except(&maps, &programs, &[], &later) {
        Ok(bpf) => bpf,
        Err(e) if skip_without_bpf(TEST, &e) => return,
        Err(e) => panic!("expected the maps to be created: {e}"),
    };
    let multi = prog::Kind {
        prog_type: prog::BPF_PROG_TYPE_KPROBE,
        attach_type: prog::BPF_TRACE_KPROBE_MULTI,
        btf_id: 0,
    };
    // The map load names map 0: without its descriptor patched in, the
    // verifier would refuse the lookup.
    bpf.load_direct("multi", multi)
        .unwrap_or_else(|e| panic!("expected the program to verify as kprobe.multi: {e}"));
    let linked = bpf.link_direct(
        "multi",
        DirectLink::KprobeMulti {
            functions: &["vfs_read", "vfs_write"],
            ret: false,
        },
    );
    match linked {
        Ok(()) => assert_eq!(bpf.attachments(), 1, "one link for both functions"),
        Err(e) => assert!(
            e.to_string()
                .starts_with("cannot attach `multi` to 2 kernel functions (kprobe.multi): "),
            "{e}"
        ),
    }
    // A program the verifier refuses brings the verifier's log with it.
    let Err(LoadError::Program { verifier_log, .. }) = bpf.load_direct("bad", multi) else {
        panic!("expected the verifier to refuse reading r2");
    };
    assert!(verifier_log.contains("R2 !read_ok"), "{verifier_log}");
}
