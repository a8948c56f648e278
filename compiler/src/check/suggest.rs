//! "similar:" suggestions for names that resolve to nothing, by edit distance.

/// Up to five of `candidates` closest to `name`, closest first (ties by name);
/// only those within a distance a typo could explain.
pub fn similar<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
    let limit = (name.chars().count() / 2).max(2);
    let mut scored: Vec<(usize, &str)> = candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .collect();
    scored.sort_unstable();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored.into_iter().take(5).map(|(_, c)| c).collect()
}

/// A note listing `similar`'s result, or nothing when there is none.
pub fn note(names: &[&str]) -> Option<String> {
    (!names.is_empty()).then(|| format!("similar: {}", names.join(", ")))
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diag = row[0];
        row[0] = i + 1;
        for (j, &cb) in b.iter().enumerate() {
            let sub = diag + usize::from(ca != cb);
            diag = row[j + 1];
            row[j + 1] = sub.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("same", "same"), 0);
    }

    #[test]
    fn close_names_first_far_ones_dropped() {
        let got = similar(
            "exeName",
            ["execname", "exit", "pid", "execnam", "completely_else"],
        );
        assert_eq!(
            got,
            vec!["execname", "execnam"],
            "exit is too far from exeName"
        );
    }
}
