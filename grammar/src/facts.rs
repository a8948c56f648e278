//! What the preprocessor may ask about the target: filled by the runtime from `uname`
//! and `/proc/config.gz`, or by a test with fixed values. Plain data, no syscalls.

use std::collections::BTreeMap;

/// Facts that `%( ... %)` conditions compare against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    /// Kernel release without the local suffix (`6.18.44`): `kernel_v`.
    pub kernel_v: String,
    /// Full kernel release (`6.18.44-fc-v657`): `kernel_vr`.
    pub kernel_vr: String,
    /// `uname -m` as stap names it (`x86_64`, `arm64`, `i386`).
    pub arch: String,
    /// Kernel configuration: `CONFIG_SMP` → `y`. Unset options are absent.
    pub config: BTreeMap<String, String>,
    /// The language version scripts may test with `systemtap_v`.
    pub systemtap_v: String,
    /// `runtime`: rstap implements the kernel runtime's language, so `kernel`.
    pub runtime: String,
    pub privilege: String,
    pub guru_mode: bool,
}

impl Default for Facts {
    fn default() -> Facts {
        Facts {
            kernel_v: "6.18.0".to_string(),
            kernel_vr: "6.18.0".to_string(),
            arch: "x86_64".to_string(),
            config: BTreeMap::new(),
            systemtap_v: "4.8".to_string(),
            runtime: "kernel".to_string(),
            privilege: "stapdev".to_string(),
            guru_mode: false,
        }
    }
}

impl Facts {
    /// Facts for a kernel release string as `uname -r` prints it.
    pub fn for_release(release: &str) -> Facts {
        let version_end = release.find(|c: char| !(c.is_ascii_digit() || c == '.'));
        Facts {
            kernel_v: release[..version_end.unwrap_or(release.len())].to_string(),
            kernel_vr: release.to_string(),
            ..Facts::default()
        }
    }

    /// Reads `CONFIG_X=value` lines (the `.config` format); `# CONFIG_X is not set` is skipped.
    pub fn with_config_text(mut self, text: &str) -> Facts {
        for line in text.lines() {
            if let Some((name, value)) = line.split_once('=')
                && name.starts_with("CONFIG_")
            {
                let value = value.trim().trim_matches('"');
                self.config.insert(name.to_string(), value.to_string());
            }
        }
        self
    }
}

/// GNU `strverscmp`: digit runs compare as numbers, with leading zeros as fractions.
pub fn strverscmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            let sj = j;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let (da, db) = (&a[si..i], &b[sj..j]);
            let fractional = da[0] == b'0' || db[0] == b'0';
            let ord = if fractional {
                da.cmp(db)
            } else {
                da.len().cmp(&db.len()).then_with(|| da.cmp(db))
            };
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

/// Shell-style pattern match (`*`, `?`, `[...]`), as stap's `fnmatch` comparisons.
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|k| go(&p[1..], &t[k..])),
            Some(b'?') => !t.is_empty() && go(&p[1..], &t[1..]),
            Some(b'[') => match (p.iter().position(|&c| c == b']'), t.first()) {
                (Some(close), Some(&c)) if close > 1 => {
                    let set = &p[1..close];
                    let (negate, set) = match set.first() {
                        Some(b'!') | Some(b'^') => (true, &set[1..]),
                        _ => (false, set),
                    };
                    let mut hit = false;
                    let mut k = 0;
                    while k < set.len() {
                        if k + 2 < set.len() && set[k + 1] == b'-' {
                            hit |= set[k] <= c && c <= set[k + 2];
                            k += 3;
                        } else {
                            hit |= set[k] == c;
                            k += 1;
                        }
                    }
                    hit != negate && go(&p[close + 1..], &t[1..])
                }
                _ => t.first() == Some(&b'[') && go(&p[1..], &t[1..]),
            },
            Some(&c) => t.first() == Some(&c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cmp::Ordering::*;

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(strverscmp("2.6.30", "2.6.9"), Greater);
        assert_eq!(strverscmp("6.18.44", "6.18.44"), Equal);
        assert_eq!(strverscmp("3.10", "3.10.0"), Less);
        assert_eq!(strverscmp("4.8", "4.10"), Less);
    }

    #[test]
    fn globs_match_like_fnmatch() {
        assert!(fnmatch("6.*", "6.18.44"));
        assert!(fnmatch("x86_?4", "x86_64"));
        assert!(fnmatch("[ab]rm*", "arm64"));
        assert!(!fnmatch("i?86", "x86_64"));
    }

    #[test]
    fn release_splits_into_version_and_suffix() {
        let f = Facts::for_release("6.18.44-fc-v657");
        assert_eq!(f.kernel_v, "6.18.44");
        assert_eq!(f.kernel_vr, "6.18.44-fc-v657");
    }
}
