//! Kernel tier: the examples that sample or trace the C programs built here
//! (timer.profile stacks, uprobes, USDT).

use super::*;

#[test]
fn profile_samples_a_busy_child_and_prints_its_hot_stacks() {
    if !kernel_ok() {
        return;
    }
    let Some(dir) = programs() else { return };
    let spin = dir.join("spin").display().to_string();
    // Every 10th of the child's samples prints its stack ($1 = 10).
    let out = traced("profile.stp", &spin, &["10"]);
    let total = out
        .lines()
        .find(|l| l.ends_with(" samples"))
        .map(numbers)
        .unwrap_or_else(|| panic!("the samples line:\n{out}"));
    assert!(total.len() == 1 && total[0] > 0, "{out}");
    assert!(
        out.contains("    PID COMM              SAMPLES  SHARE\n"),
        "{out}"
    );
    let headers: Vec<&str> = out.lines().filter(|l| l.starts_with("sample ")).collect();
    assert!(!headers.is_empty(), "at least one stack:\n{out}");
    for (i, h) in headers.iter().enumerate() {
        assert!(
            h.starts_with(&format!("sample {} of ", 10 * (i + 1))),
            "every 10th sample: {h}"
        );
    }
    // The child's rows (its shell's before the exec, then spin's) hold all
    // its samples: at least 10 for each stack printed. The table shows the
    // top 10 rows only, and other tests' processes share the machine: the
    // shell's row (a sample or two) may fall below the tenth, but then it
    // holds no more samples than the tenth row.
    let pid = numbers(headers[0])[1];
    // (pid, samples) of each row: its first and next-to-last words (a
    // name such as `kworker/0:1` holds numbers of its own).
    let rows: Vec<(i64, i64)> = out
        .lines()
        .filter(|l| l.ends_with('%'))
        .filter_map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            let number = |i: usize| words.get(i)?.parse::<i64>().ok();
            Some((number(0)?, number(words.len().checked_sub(2)?)?))
        })
        .collect();
    let child: i64 = rows.iter().filter(|r| r.0 == pid).map(|r| r.1).sum();
    let cut = if rows.len() == 10 {
        rows.iter().map(|r| r.1).min().unwrap_or(0)
    } else {
        0
    };
    assert!(
        child + cut >= 10 * headers.len() as i64 && child < 10 * (headers.len() as i64 + 1),
        "{} stacks for {child} samples (rows cut below {cut}):\n{out}",
        headers.len()
    );
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().nth(1) == Some("spin") && l.ends_with('%')),
        "a row for spin:\n{out}"
    );
    assert!(
        out.contains(" : hot+0x") && out.contains(" : main+0x"),
        "the stacks name hot and main:\n{out}"
    );
}

#[test]
fn funclatency_counts_each_function_and_times_every_call() {
    let Some(demo) = demo() else { return };
    let _alone = demo_alone();
    let out = traced(
        "funclatency.stp",
        &format!("{demo} 1000"),
        &[&demo, "demo_*"],
    );
    for (name, calls) in [
        ("demo_leaf", 2000),
        ("demo_middle", 1000),
        ("demo_top", 1000),
    ] {
        let line = line_starting(&out, &format!("{name}: {calls} calls, avg "));
        assert!(line.ends_with(" ns"), "{line}");
        let section: String = out
            .split_inclusive('\n')
            .skip_while(|l| !l.starts_with(&format!("{name}: ")))
            .skip(1)
            .take_while(|l| !l.starts_with("demo_"))
            .collect();
        assert_eq!(histogram_total(&section), calls, "{out}");
    }
    // Sorted by calls: the leaf first.
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("demo_leaf: ")),
        "{out}"
    );
}

#[test]
fn usdt_counts_every_mark_and_sums_its_first_argument() {
    let Some(demo) = demo() else { return };
    let _alone = demo_alone();
    let out = traced("usdt.stp", &format!("{demo} 100"), &[&demo]);
    let lines: Vec<&str> = out.lines().collect();
    // The program's own line (Σ 6i + 4 for i < 100), then the report.
    assert_eq!(lines.len(), 5, "{out}");
    assert_eq!(lines[0], "30100");
    assert_eq!(
        lines[1],
        "MARK                                   HITS       SUM(ARG1)"
    );
    assert_eq!(
        lines[2],
        "demo:request                            100            4950"
    );
    let mut rest = vec![lines[3], lines[4]];
    rest.sort_unstable();
    assert_eq!(
        rest,
        [
            "demo:done                                 1             100",
            "demo:noargs                               1               0",
        ]
    );
}

#[test]
fn calltrace_prints_the_call_tree_indented_by_depth() {
    let Some(demo) = demo() else { return };
    let _alone = demo_alone();
    let out = traced("calltrace.stp", &format!("{demo} 2"), &[&demo, "demo_*"]);
    let mut lines = out.lines().filter(|l| l.contains("): "));
    let mut times = Vec::new();
    let mut tree = Vec::new();
    let mut pid = String::new();
    for l in lines.by_ref() {
        let (time, rest) = l.trim_start().split_once(' ').expect("time, then the call");
        times.push(
            time.parse::<i64>()
                .unwrap_or_else(|_| panic!("a time: {l}")),
        );
        let (who, call) = rest.split_once(':').expect("who:call");
        if pid.is_empty() {
            pid = who.to_string();
        }
        assert_eq!(who, pid, "one thread: {l}");
        tree.push(call.to_string());
    }
    assert!(
        pid.starts_with("demo(") && pid.ends_with(')'),
        "execname(tid): {out}"
    );
    let round = [
        " -> demo_top",
        "   -> demo_middle",
        "     -> demo_leaf",
        "     <- demo_leaf",
        "     -> demo_leaf",
        "     <- demo_leaf",
        "   <- demo_middle",
        " <- demo_top",
    ];
    let expected: Vec<String> = round.iter().chain(&round).map(|s| s.to_string()).collect();
    assert_eq!(tree, expected, "{out}");
    assert_eq!(times[0], 0, "the first call at 0 us: {out}");
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time goes forward: {out}"
    );
}

#[test]
fn stopwatch_times_the_inside_of_a_function_against_the_whole_run() {
    let Some(demo) = demo() else { return };
    let _alone = demo_alone();
    let out = traced(
        "stopwatch.stp",
        &format!("{demo} 500"),
        &[&demo, "demo_leaf"],
    );
    let line = line_starting(&out, "demo_leaf: ");
    let n = numbers(line);
    assert!(
        line.starts_with("demo_leaf: 1000 calls, ") && n.len() == 4,
        "{line}"
    );
    let (inside, run, share) = (n[1], n[2], n[3]);
    assert!(
        inside > 0 && inside < run && share == inside * 100 / run,
        "{line}"
    );
}
