//! The clocks the runtimes convert between: the kernel's event times and
//! `bpf_ktime_get_ns` are CLOCK_MONOTONIC, `gettimeofday_*` is the wall clock.

/// `clock` now, in ns (0 if it cannot be read).
pub(crate) fn now_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    #[expect(unsafe_code, reason = "clock_gettime has no safe wrapper in std")]
    // SAFETY: `ts` is a valid, writable timespec for the duration of the call.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    if rc == 0 {
        ts.tv_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(ts.tv_nsec)
    } else {
        0
    }
}

/// CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns: what turns a kernel time
/// into wall-clock time.
pub(crate) fn wall_offset_ns() -> i64 {
    now_ns(libc::CLOCK_REALTIME) - now_ns(libc::CLOCK_MONOTONIC)
}
