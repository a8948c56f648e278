//! Why the kernel refuses BPF to this process, in one sentence: which
//! capabilities it lacks (CAP_BPF and CAP_PERFMON, or root's CAP_SYS_ADMIN),
//! and what kernel lockdown forbids.

/// Capability numbers (linux/capability.h).
const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

/// The sentence for a BPF operation the kernel refused with EPERM/EACCES.
pub fn denied() -> String {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let lockdown = std::fs::read_to_string("/sys/kernel/security/lockdown").unwrap_or_default();
    sentence(effective_caps(&status), lockdown_mode(&lockdown))
}

fn sentence(caps: Option<u64>, lockdown: Option<&str>) -> String {
    let has = |cap: u32| caps.is_some_and(|c| c & (1 << cap) != 0);
    let missing: Vec<&str> = [(CAP_BPF, "CAP_BPF"), (CAP_PERFMON, "CAP_PERFMON")]
        .into_iter()
        .filter(|&(cap, _)| !has(cap) && !has(CAP_SYS_ADMIN))
        .map(|(_, name)| name)
        .collect();
    let mut s = if missing.is_empty() {
        "the kernel refused BPF (Operation not permitted) although this process has CAP_BPF and CAP_PERFMON: a seccomp filter or a security module may forbid it".to_string()
    } else {
        format!(
            "the kernel refused BPF: it needs root, or CAP_BPF and CAP_PERFMON, and this process lacks {}",
            missing.join(" and ")
        )
    };
    match lockdown {
        Some("confidentiality") => s.push_str(
            "; the kernel is also locked down (confidentiality), which forbids BPF programs to read kernel memory",
        ),
        Some("integrity") => s.push_str(
            "; the kernel is also locked down (integrity), which forbids BPF programs to write user memory",
        ),
        _ => {}
    }
    s
}

/// `CapEff:` of /proc/self/status.
fn effective_caps(status: &str) -> Option<u64> {
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// The selected mode of /sys/kernel/security/lockdown (`none [integrity]
/// confidentiality`), unless it is `none`.
fn lockdown_mode(text: &str) -> Option<&str> {
    let mode = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix('[')?.strip_suffix(']'))?;
    (mode != "none").then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_missing_capabilities() {
        let none = effective_caps("Name:\tx\nCapEff:\t0000000000000000\n");
        assert_eq!(
            sentence(none, None),
            "the kernel refused BPF: it needs root, or CAP_BPF and CAP_PERFMON, and this process lacks CAP_BPF and CAP_PERFMON"
        );
        let perfmon_only = Some(1u64 << CAP_PERFMON);
        assert!(sentence(perfmon_only, None).ends_with("lacks CAP_BPF"));
        let admin = Some(1u64 << CAP_SYS_ADMIN);
        assert!(sentence(admin, None).contains("although"));
    }

    #[test]
    fn says_what_lockdown_forbids() {
        assert_eq!(
            lockdown_mode("none [integrity] confidentiality\n"),
            Some("integrity")
        );
        assert_eq!(lockdown_mode("[none] integrity confidentiality\n"), None);
        assert_eq!(lockdown_mode(""), None);
        let all = Some(u64::MAX);
        assert!(sentence(all, Some("confidentiality")).contains("read kernel memory"));
    }
}
