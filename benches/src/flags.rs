//! The benchmark binaries' command lines: `--name value` pairs.

/// The command line's `--name value` pairs, in order.
pub fn pairs() -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        out.push((flag, value));
    }
    Ok(out)
}

/// The count given to `flag`: a number, at least 1.
pub fn count(flag: &str, value: &str) -> Result<u64, String> {
    value
        .parse::<u64>()
        .map(|n| n.max(1))
        .map_err(|e| format!("{flag}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_are_at_least_one_and_errors_name_the_flag() {
        assert_eq!(count("--rounds", "0"), Ok(1));
        assert_eq!(count("--calls", "250"), Ok(250));
        assert!(count("--calls", "x").is_err_and(|e| e.starts_with("--calls: ")));
    }
}
