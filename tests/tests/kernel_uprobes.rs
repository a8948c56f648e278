//! Kernel tier: user-space probes and sampling for real. A C program built
//! here calls `work(i)` (and `lwork(i)` of a shared library) exactly 10,000
//! times, with USDT marks inside `work`, one behind a semaphore:
//! function and return probes, `$argN`, `$return`, `@entry`, marks and their
//! arguments, `process.begin/end` and `timer.profile` are checked against
//! numbers known in advance. Needs root, BPF, a C compiler and <sys/sdt.h>
//! (Debian's systemtap-sdt-dev). The tests run their busy children one at a
//! time (`rstap_tests::serial`), so that `timer.profile`'s child does not
//! compete with another test's.

use rstap_tests::{cc, rstap, skip_or_fail, text};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

const CALLS: i64 = 10_000;
/// Σ i for i < CALLS.
const SUM: i64 = CALLS * (CALLS - 1) / 2;

const LIB: &str = "long lwork(long x) { return x + 1; }\n";

const PROGRAM: &str = r#"#define _SDT_HAS_SEMAPHORES 1
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>
unsigned short rstap_step_semaphore __attribute__((unused)) __attribute__((section(".probes")));
unsigned short rstap_guarded_semaphore __attribute__((unused)) __attribute__((section(".probes")));
long lwork(long x);
__attribute__((noinline)) long work(long x) {
  int small = (int)(x - 5000);
  char c = (char)(x & 0x7f);
  STAP_PROBE4(rstap, step, x, small, c, 42);
  if (rstap_guarded_semaphore) STAP_PROBE1(rstap, guarded, x * 7);
  asm volatile("" ::: "memory");
  return x * 2 + 1;
}
int main(int argc, char **argv) {
  long n = argc > 1 ? atol(argv[1]) : 10000, s = 0;
  for (long i = 0; i < n; i++) s += work(i) + lwork(i);
  printf("semaphore=%d\n", rstap_guarded_semaphore);
  return s == 0;
}
"#;

/// A child that keeps one CPU busy for half a second.
const SPIN: &str = r#"#include <time.h>
int main(void) {
  struct timespec t0, t;
  volatile unsigned long x = 0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  do {
    for (int i = 0; i < 100000; i++) x++;
    clock_gettime(CLOCK_MONOTONIC, &t);
  } while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 500000000L);
  return 0;
}
"#;

/// A child that alternates for 1.2 s between spinning in `spin_user` and
/// reading /dev/zero (the kernel's time), then waits to be killed, so that
/// its maps are there when its user addresses are named.
const HOT: &str = r#"#include <fcntl.h>
#include <time.h>
#include <unistd.h>
static char buf[1 << 20];
static long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1000 + t.tv_nsec / 1000000;
}
__attribute__((noinline)) void spin_user(long ms) {
  volatile unsigned long x = 0;
  for (long end = now_ms() + ms; now_ms() < end;)
    for (int i = 0; i < 100000; i++) x++;
}
__attribute__((noinline)) void zeroes(int fd, long ms) {
  for (long end = now_ms() + ms; now_ms() < end;)
    if (read(fd, buf, sizeof buf) < 0) return;
}
int main(void) {
  int fd = open("/dev/zero", O_RDONLY);
  for (int i = 0; i < 30; i++) { spin_user(20); zeroes(fd, 20); }
  pause();
  return 0;
}
"#;

/// The built programs: `work` at -O2 (marks' arguments in registers),
/// `work0` at -O0 (in stack memory), `spin`, `hot` and `libwork.so`.
type Built = rstap_tests::Programs;

fn built() -> Option<&'static Built> {
    static BUILT: OnceLock<Option<Built>> = OnceLock::new();
    Built::once(&BUILT, "uprobes", |dir| {
        std::fs::create_dir_all(dir).expect("temp dir");
        let sources = [
            ("w.c", PROGRAM),
            ("lib.c", LIB),
            ("spin.c", SPIN),
            ("hot.c", HOT),
        ];
        for (name, src) in sources {
            std::fs::write(dir.join(name), src).expect("write a C source");
        }
        let rpath = format!("-Wl,-rpath,{}", dir.display());
        let ok = cc(
            &["-O2", "-fPIC", "-shared", "-o", "libwork.so", "lib.c"],
            dir,
        ) && cc(&["-O1", "-o", "spin", "spin.c"], dir)
            && cc(&["-O1", "-o", "hot", "hot.c"], dir);
        if !ok {
            skip_or_fail("a C compiler (cc) is needed to build the traced programs");
            return None;
        }
        for (out, opt) in [("work", "-O2"), ("work0", "-O0")] {
            let args = [opt, "-o", out, "w.c", "-L.", "-lwork", &rpath];
            if !cc(&args, dir) {
                skip_or_fail(
                    "<sys/sdt.h> is needed to build the USDT test program (Debian: systemtap-sdt-dev)",
                );
                return None;
            }
        }
        Some(())
    })
}

fn setup() -> Option<&'static Built> {
    if !rstap_tests::bpf_or_skip() {
        return None;
    }
    built()
}

fn run(script: &str, cmd: &str) -> Output {
    Command::new(rstap())
        .args(["-e", script, "-c", cmd])
        .output()
        .expect("run rstap")
}

/// Runs `script` with `cmd` as the child; its stdout, after checking the run
/// succeeded.
fn stdout_of(script: &str, cmd: &str) -> String {
    let out = run(script, cmd);
    assert!(
        out.status.success(),
        "rstap failed:\n{}\n{}",
        text(&out.stderr),
        text(&out.stdout)
    );
    text(&out.stdout)
}

fn has_line(stdout: &str, line: &str) {
    assert!(
        stdout.lines().any(|l| l == line),
        "expected the line `{line}` in:\n{stdout}"
    );
}

#[test]
fn function_probes_count_every_call_and_read_arguments_and_returns() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let work = b.path("work");
    let script = format!(
        r#"global calls, args, rets, rsum, lat, mismatched
probe process("{work}").function("work") {{
  if (pid() != target()) next
  calls++; args += $arg1
}}
probe process("{work}").function("work").return {{
  if (pid() != target()) next
  rets++; rsum += $return
  lat <<< ktime_get_ns() - @entry(ktime_get_ns())
  if ($return != 2 * @entry($arg1) + 1) mismatched++
}}
probe end {{
  printf("calls=%d args=%d rets=%d rsum=%d\n", calls, args, rets, rsum)
  printf("latencies=%d positive=%d mismatched=%d\n", @count(lat), @min(lat) > 0, mismatched)
}}"#
    );
    let stdout = stdout_of(&script, &work);
    // Σ (2i + 1) = 2·SUM + CALLS.
    has_line(
        &stdout,
        &format!(
            "calls={CALLS} args={SUM} rets={CALLS} rsum={}",
            2 * SUM + CALLS
        ),
    );
    has_line(
        &stdout,
        &format!("latencies={CALLS} positive=1 mismatched=0"),
    );
}

#[test]
fn entry_values_of_recursive_calls_stay_apart() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let dir = &b.dir;
    std::fs::write(
        dir.join("fib.c"),
        "__attribute__((noinline)) long fib(long n) { asm volatile(\"\"); return n < 2 ? n : fib(n - 1) + fib(n - 2); }\nint main(void) { return fib(15) != 610; }\n",
    )
    .expect("write fib.c");
    assert!(cc(&["-O1", "-o", "fib", "fib.c"], dir), "cc fib.c");
    let fib = b.path("fib");
    // fib(15) makes 1973 calls; a return sees its own call's argument only if
    // @entry values are kept per frame, not per thread.
    let script = format!(
        r#"global f, good, bad
probe begin {{ f[0] = 0; f[1] = 1; for (i = 2; i <= 15; i++) f[i] = f[i - 1] + f[i - 2] }}
probe process("{fib}").function("fib").return {{
  if (pid() != target()) next
  if ($return == f[@entry($arg1)]) good++; else bad++
}}
probe end {{ printf("good=%d bad=%d\n", good, bad) }}"#
    );
    let stdout = stdout_of(&script, &fib);
    has_line(&stdout, "good=1973 bad=0");
}

#[test]
fn wildcards_shell_path_lookup_and_shared_libraries_by_path() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let lib = b.path("libwork.so");
    let script = format!(
        r#"global w, l
probe process("work").function("wor*") {{ if (pid() == target()) w[ppfunc()]++ }}
probe process("{lib}").function("lwork").return {{ if (pid() == target()) l += $return }}"#
    );
    // `work` has no slash: it is found through $PATH, as a shell would.
    let path = format!(
        "{}:{}",
        b.dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new(rstap())
        .args(["-e", &script, "-c", &b.path("work")])
        .env("PATH", path)
        .output()
        .expect("run rstap");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    has_line(&stdout, &format!("w[\"work\"]={CALLS}"));
    has_line(&stdout, &format!("l={}", SUM + CALLS));
}

#[test]
fn usdt_marks_fire_as_often_as_hit_with_their_arguments_and_semaphores() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    // -O2 keeps the arguments in registers, -O0 in the frame (`-8@-24(%rbp)`).
    for bin in ["work", "work0"] {
        let path = b.path(bin);
        let script = format!(
            r#"global n, x, small, c, k, g, names
probe process("{path}").mark("step") {{
  if (pid() != target()) next
  n++; x += $arg1; small += $arg2; c += $arg3; k += $arg4
  names[$$provider, $$name]++
}}
probe process("{path}").provider("rstap").mark("guarded") {{
  if (pid() == target()) g += $arg1
}}
probe end {{
  printf("n=%d x=%d small=%d c=%d k=%d g=%d\n", n, x, small, c, k, g)
  foreach ([p, m] in names) printf("%s:%s=%d\n", p, m, names[p, m])
}}"#
        );
        let stdout = stdout_of(&script, &path);
        // Σ (i & 0x7f) over 0..10000: 78 full cycles of 0..127, then 0..15.
        let chars = 78 * (127 * 128 / 2) + 15 * 16 / 2;
        has_line(
            &stdout,
            &format!(
                "n={CALLS} x={SUM} small={} c={chars} k={} g={}",
                SUM - 5000 * CALLS,
                42 * CALLS,
                7 * SUM
            ),
        );
        has_line(&stdout, &format!("rstap:step={CALLS}"));
        // The guarded mark fired because attaching it raised its semaphore.
        has_line(&stdout, "semaphore=1");
    }
    // Once the last run's probes are gone the semaphore is down again. They
    // are closed by a child rstap leaves behind (closing waits for the
    // kernel's grace periods), so a run right after may still see them.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let untraced = Command::new(b.path("work"))
            .output()
            .expect("run work untraced");
        let seen = text(&untraced.stdout);
        if seen == "semaphore=0\n" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the semaphore stayed raised after the run: {seen}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// 250 ints thrown and caught.
const THROWS: &str = r#"int main() {
  int caught = 0;
  for (int i = 0; i < 250; i++) { try { throw i; } catch (int v) { caught += v; } }
  return caught != 250 * 249 / 2;
}
"#;

#[test]
fn a_debian_librarys_own_usdt_marks_fire_for_every_throw_and_catch() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let Some(lib) = rstap_tests::libstdcxx() else {
        skip_or_fail("no libstdc++.so.6 here (Debian: libstdc++6)");
        return;
    };
    std::fs::write(b.dir.join("throws.cc"), THROWS).expect("write throws.cc");
    if !Command::new("g++")
        .args(["-O1", "-o", "throws", "throws.cc"])
        .current_dir(&b.dir)
        .status()
        .is_ok_and(|s| s.success())
    {
        skip_or_fail("g++ is needed to build the C++ test program");
        return;
    }
    // throw's second argument is the thrown type's std::type_info, whose
    // name ("i" for int) follows its vtable pointer.
    let script = format!(
        r#"global throws, catches, ints
probe process("{lib}").mark("throw") {{
  if (pid() != target()) next
  throws++
  if (user_string(user_long($arg2 + 8)) == "i") ints++
}}
probe process("{lib}").provider("libstdcxx").mark("catch") {{ if (pid() == target()) catches++ }}
probe end {{ printf("throws=%d catches=%d ints=%d\n", throws, catches, ints) }}"#
    );
    let stdout = stdout_of(&script, &b.path("throws"));
    assert_eq!(stdout, "throws=250 catches=250 ints=250\n");
}

#[test]
fn process_begin_and_end_see_the_child() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let spin = b.path("spin");
    let script = format!(
        r#"probe process.begin {{ if (pid() == target()) printf("begin %s\n", execname()) }}
probe process.end {{ if (pid() == target()) printf("end %s\n", execname()) }}
probe process("{spin}").begin {{ if (pid() == target()) printf("path begin\n") }}
probe process("{spin}").end {{ if (pid() == target()) printf("path end\n") }}"#
    );
    let stdout = stdout_of(&script, &spin);
    for line in ["begin spin", "end spin", "path begin", "path end"] {
        has_line(&stdout, line);
    }
    assert_eq!(stdout.lines().count(), 4, "{stdout}");
}

#[test]
fn timer_profile_attributes_most_busy_samples_to_the_busy_child() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    // Other tasks may be busy too (this can be a shared machine): the child,
    // busy for its whole life, must have at least half the samples of the
    // busiest other thread. Its samples name it, but for the few before its
    // shell has exec'd it.
    let script = r#"global n, child, named
probe timer.profile {
  if (pid() == target()) { child++; if (execname() == "spin") named++ }
  else if (pid() != 0) n[tid()]++
}
probe end {
  most = 0
  foreach (t in n) if (n[t] > most) most = n[t]
  printf("child=%d named=%d busiest=%d\n", child, named, most)
}"#;
    let stdout = stdout_of(script, &b.path("spin"));
    let line = stdout
        .lines()
        .find(|l| l.starts_with("child="))
        .unwrap_or_else(|| panic!("no summary line:\n{stdout}"));
    let numbers: Vec<i64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let [child, named, busiest] = numbers[..] else {
        panic!("unexpected summary: {line}");
    };
    assert!(
        named > 0 && named <= child && 2 * named >= busiest,
        "{stdout}"
    );
}

#[test]
fn probefunc_names_the_sampled_user_and_kernel_functions() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    // Key form in timer.profile, print form in a perf probe. Every sample of
    // the child is counted once under its function's name: each pc is a key
    // of its own in the kernel, merged by name when read.
    let script = r#"global p, n, shown
probe timer.profile { if (pid() == target()) { n++; p[probefunc()] <<< 1 } }
probe perf.sw.cpu_clock.sample(1000000) {
  if (pid() == target() && shown < 20) { shown++; printf("sample %s\n", probefunc()) }
}
probe timer.ms(1000) { exit() }
probe end {
  foreach (f in p- limit 8) printf("top %s %d\n", f, @count(p[f]))
  t = 0; foreach (f in p) t += @count(p[f])
  printf("n=%d t=%d\n", n, t)
}"#;
    let mut child = Command::new(b.path("hot"))
        .spawn()
        .expect("start the busy child");
    let out = Command::new(rstap())
        .args(["-x", &child.id().to_string(), "-e", script])
        .output()
        .expect("run rstap");
    let _ = child.kill();
    let _ = child.wait();
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let totals: Vec<i64> = stdout
        .lines()
        .find_map(|l| l.strip_prefix("n="))
        .map(|l| l.split(" t=").filter_map(|n| n.parse().ok()).collect())
        .unwrap_or_default();
    let [n, t] = totals[..] else {
        panic!("no totals line:\n{stdout}");
    };
    assert!(n > 100, "the child was busy for a second: {stdout}");
    assert_eq!(n, t, "each sample under exactly one name: {stdout}");
    let top: Vec<(&str, i64)> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("top ")?.rsplit_once(' '))
        .filter_map(|(f, c)| Some((f, c.parse().ok()?)))
        .collect();
    let kallsyms = std::fs::read_to_string("/proc/kallsyms").expect("read kallsyms");
    let kernel_function = |f: &str| {
        kallsyms.lines().any(|l| {
            let mut it = l.split_whitespace().skip(1);
            matches!(it.next(), Some("t" | "T")) && it.next() == Some(f)
        })
    };
    // A name, or the hex of a pc no file maps (the vDSO's), as stap prints it.
    for (f, _) in &top {
        assert!(
            !f.is_empty() && !f.contains('\x01'),
            "a function's name, not {f:?}: {stdout}"
        );
    }
    let count = |name: &str| top.iter().find(|(f, _)| *f == name).map_or(0, |t| t.1);
    let kernel: i64 = top
        .iter()
        .filter(|(f, _)| kernel_function(f))
        .map(|t| t.1)
        .sum();
    // The reads' time is the kernel's (Linux's /dev/zero handler), not that
    // of the user function calling read(2).
    assert!(
        4 * count("spin_user") >= n && 4 * kernel >= n && 4 * count("zeroes") < kernel,
        "half the time in spin_user, most of the rest in the kernel's reads: {stdout}"
    );
    let samples: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("sample "))
        .collect();
    assert!(
        samples.contains(&"spin_user")
            && samples.iter().all(|f| !f.is_empty() && !f.contains('\x01')),
        "printed names: {stdout}"
    );
}

#[test]
fn a_profile_keeps_one_array_entry_per_kernel_function_not_per_sampled_address() {
    if setup().is_none() {
        return;
    }
    let _alone = rstap_tests::serial();
    // Eight million one-byte reads and writes: about 1,200 samples in the
    // kernel, over 17-21 functions on a quiet machine (more under load, as
    // the scheduler and interrupts join in), at 64 to 128 addresses. With
    // room for 64 entries the array overflows (a runtime error, status 1)
    // when each address is its own key, as it did before the rounding.
    let script = r#"global p[64], n
probe timer.profile { if (pid() == target() && !user_mode()) { n++; p[probefunc()] <<< 1 } }
probe end { k = 0; foreach (f in p) k++; printf("samples=%d functions=%d\n", n, k) }"#;
    let out = run(script, "dd if=/dev/zero of=/dev/null bs=1 count=8000000");
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{}\n{stdout}", text(&out.stderr));
    let field = |name: &str| -> u64 {
        stdout
            .split_whitespace()
            .find_map(|w| w.strip_prefix(name)?.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {stdout:?}"))
    };
    let (samples, functions) = (field("samples="), field("functions="));
    assert!(samples >= 200, "too few samples to tell: {stdout}");
    assert!((1..=64).contains(&functions), "{stdout}");
}

#[test]
fn perf_sampling_runs_and_hardware_counters_fail_with_one_sentence() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let script = r#"global c, t
probe perf.sw.cpu_clock.sample(1000000) { if (pid() == target()) c++ }
probe perf.type(1).config(1).hz(1000) { if (pid() == target()) t++ }
probe end { printf("cpu_clock=%d task_clock=%d\n", c > 0, t > 0) }"#;
    let stdout = stdout_of(script, &b.path("spin"));
    has_line(&stdout, "cpu_clock=1 task_clock=1");
    if Path::new("/sys/bus/event_source/devices/cpu").exists() {
        return;
    }
    let out = Command::new(rstap())
        .args(["-e", "probe perf.hw.cpu_cycles { exit() }"])
        .output()
        .expect("run rstap");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("no hardware performance counters") && stderr.lines().count() == 1,
        "one sentence expected:\n{stderr}"
    );
}

#[test]
fn dwarf_names_and_types_the_parameters_at_entry_and_return_and_umodname_names_the_object() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let dir = &b.dir;
    std::fs::write(
        dir.join("params.c"),
        r#"#include <unistd.h>
__attribute__((noinline)) int add(int a, short b, const char *name, unsigned char c) {
    asm volatile("");
    return a + b + c + name[0];
}
int main(void) {
    int s = 0;
    /* The string's page is in memory before the probe reads it. */
    if (((volatile const char *)"hello")[0] != 'h') return 2;
    for (int i = 0; i < 3; i++) s += add(-i, -300, "hello", 200);
    /* Addresses are named after the event, from /proc/PID/maps: stay
       alive a moment so the process is still there to be read. */
    usleep(300000);
    return s != 9;
}
"#,
    )
    .expect("write params.c");
    assert!(
        cc(&["-g", "-O1", "-o", "params", "params.c"], dir),
        "cc -g params.c"
    );
    let params = b.path("params");
    // Narrowed to their C types: an int -1 is -1, not 4294967295; a short
    // -300 is -300; an unsigned char 200 is 200. In the .return probe $a is
    // the value at the entry, as stap gives it.
    let script = format!(
        r#"probe process("{params}").function("add") {{
  if (pid() == target())
    printf("%d %d %s %d %s\n", $a, $b, user_string($name), $c, umodname($name))
}}
probe process("{params}").function("add").return {{
  if (pid() == target()) printf("a=%d returned %d\n", $a, $return)
}}"#
    );
    let stdout = stdout_of(&script, &params);
    assert_eq!(
        stdout,
        format!(
            "0 -300 hello 200 {params}\na=0 returned 4\n-1 -300 hello 200 {params}\na=-1 returned 3\n-2 -300 hello 200 {params}\na=-2 returned 2\n"
        ),
        "{stdout}"
    );
    // -L lists them with their C types.
    let out = Command::new(rstap())
        .args(["-L", &format!("process(\"{params}\").function(\"add\")")])
        .output()
        .expect("run rstap -L");
    assert_eq!(
        text(&out.stdout),
        format!(
            "process(\"{params}\").function(\"add\") $a:int $b:short int $name:char const* $c:unsigned char\n"
        )
    );
    // A name the function does not have is an error naming what it has.
    let out = run(
        &format!(r#"probe process("{params}").function("add") {{ println($nosuch) }}"#),
        &params,
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn statement_probes_fire_at_a_source_line_from_the_line_table() {
    let Some(b) = setup() else { return };
    let _alone = rstap_tests::serial();
    let dir = &b.dir;
    std::fs::write(
        dir.join("lines.c"),
        "__attribute__((noinline)) int work(int n) {\n    int s = 0;\n    for (int i = 0; i < n; i++) {\n        s += i * 3;\n    }\n    return s;\n}\nint main(void) {\n    int t = 0;\n    for (int k = 0; k < 4; k++) t += work(5);\n    return t != 120;\n}\n",
    )
    .expect("write lines.c");
    assert!(
        cc(&["-g", "-O0", "-o", "lines", "lines.c"], dir),
        "cc -g lines.c"
    );
    let lines = b.path("lines");
    // Line 4, the loop's body, runs 4 calls × 5 iterations; line 6 once a call.
    let script = format!(
        r#"global body, ret
probe process("{lines}").statement("work@lines.c:4") {{ if (pid() == target()) body++ }}
probe process("{lines}").statement("*@lines.c:6") {{ if (pid() == target()) ret++ }}
probe end {{ printf("body=%d return=%d\n", body, ret) }}"#
    );
    assert_eq!(stdout_of(&script, &lines), "body=20 return=4\n");
    // A line without code is an error at the probe point.
    let out = run(
        &format!(r#"probe process("{lines}").statement("work@lines.c:5") {{ }}"#),
        &lines,
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no statement of"),
        "{}",
        text(&out.stderr)
    );
}
