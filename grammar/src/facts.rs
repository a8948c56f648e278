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
///
/// Greedy, going back only to the latest `*`: time is at most pattern × text.
/// Trying every split at every `*` (recursively) took minutes on a probe point
/// with a few dozen `*` (found by the check fuzzer).
pub fn fnmatch(pattern: &str, text: &str) -> bool {
    let (p, t) = (pattern.as_bytes(), text.as_bytes());
    let (mut pi, mut ti) = (0, 0);
    // After the latest `*`: where the pattern goes on, and the text offset the
    // `*` has swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            if p[pi] == b'*' {
                pi += 1;
                star = Some((pi, ti));
                continue;
            }
            if let Some(next) = t.get(ti).and_then(|&c| one(p, pi, c)) {
                pi = next;
                ti += 1;
                continue;
            }
        } else if ti == t.len() {
            return true;
        }
        // A mismatch: the latest `*` takes one more byte, if there is one.
        match star {
            Some((after, taken)) if taken < t.len() => {
                star = Some((after, taken + 1));
                pi = after;
                ti = taken + 1;
            }
            _ => return false,
        }
    }
}

/// Whether the pattern element at `p[pi]` (not `*`) matches the byte `c`;
/// the index after the element if it does.
fn one(p: &[u8], pi: usize, c: u8) -> Option<usize> {
    match p[pi] {
        b'?' => Some(pi + 1),
        b'[' => match p[pi..].iter().position(|&b| b == b']') {
            Some(close) if close > 1 => {
                let set = &p[pi + 1..pi + close];
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
                (hit != negate).then_some(pi + close + 1)
            }
            // `[` without a set is itself.
            _ => (c == b'[').then_some(pi + 1),
        },
        b => (c == b).then_some(pi + 1),
    }
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

    /// The recursive matcher `fnmatch` replaced: right, but exponential.
    fn by_every_split(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some(b'*') => (0..=t.len()).any(|k| by_every_split(&p[1..], &t[k..])),
            Some(_) => match t.first().and_then(|&c| one(p, 0, c)) {
                Some(next) => by_every_split(&p[next..], &t[1..]),
                None => false,
            },
        }
    }

    /// Every string of up to `n` symbols from `alphabet`.
    fn strings(alphabet: &[u8], n: usize) -> Vec<Vec<u8>> {
        let mut all = vec![Vec::new()];
        let mut last = vec![Vec::new()];
        for _ in 0..n {
            last = last
                .iter()
                .flat_map(|s| {
                    alphabet.iter().map(move |&c| {
                        let mut s = s.clone();
                        s.push(c);
                        s
                    })
                })
                .collect();
            all.extend(last.iter().cloned());
        }
        all
    }

    #[test]
    fn greedy_matching_agrees_with_trying_every_split() {
        let texts = strings(b"ab[", 4);
        for p in strings(b"ab*?[]!", 4) {
            let pattern = String::from_utf8_lossy(&p).into_owned();
            for t in &texts {
                let text = String::from_utf8_lossy(t).into_owned();
                assert_eq!(
                    fnmatch(&pattern, &text),
                    by_every_split(&p, t),
                    "{pattern:?} against {text:?}"
                );
            }
        }
    }

    #[test]
    fn many_stars_match_in_linear_steps() {
        // Every split: about C(200, 100) tries. Greedy: at most 200 × 201 steps.
        let pattern = format!("{}b", "a*".repeat(100));
        let text = "a".repeat(200);
        assert!(!fnmatch(&pattern, &text));
        assert!(fnmatch(&pattern, &format!("{text}b")));
    }

    #[test]
    fn release_splits_into_version_and_suffix() {
        let f = Facts::for_release("6.18.44-fc-v657");
        assert_eq!(f.kernel_v, "6.18.44");
        assert_eq!(f.kernel_vr, "6.18.44-fc-v657");
    }
}
