//! "Did you mean": the nearest known name by edit distance, never one with the opposite effect.
//! Used by the parser (attributes, executors), the analyzer (inputs, steps, actions, members) and
//! `runbook actions`.

/// The closest word within two edits, for "did you mean".
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (edit_distance(word, c), *c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d > 0)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Whether an action name's verb adds (`ensure-`, `create-`, `assign-`...) or takes away
/// (`delete-`, `remove-`, `detach-`...); None for reads and anything else.
fn effect(action: &str) -> Option<bool> {
    let verb = action.rsplit(['.', ':']).next().unwrap_or(action);
    let verb = verb.split('-').next().unwrap_or(verb).to_ascii_lowercase();
    const ADDS: &[&str] = &[
        "ensure",
        "create",
        "add",
        "assign",
        "attach",
        "put",
        "enable",
        "provision",
        "register",
    ];
    const TAKES: &[&str] = &[
        "delete",
        "remove",
        "detach",
        "unassign",
        "disable",
        "deregister",
        "revoke",
        "destroy",
        "drop",
    ];
    if ADDS.iter().any(|v| verb.starts_with(v)) {
        Some(true)
    } else if TAKES.iter().any(|v| verb.starts_with(v)) {
        Some(false)
    } else {
        None
    }
}

/// The candidates a "did you mean" may offer for `word`: never one with the opposite effect
/// (`delete-user` must not become `ensure-user`, whatever the edit distance).
pub fn same_effect<'a>(word: &str, candidates: &[&'a str]) -> Vec<&'a str> {
    let want = effect(word);
    candidates
        .iter()
        .copied()
        .filter(|c| match (want, effect(c)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        })
        .collect()
}

/// Levenshtein distance in characters (strsim's: clap already brings it in).
pub fn edit_distance(a: &str, b: &str) -> usize {
    strsim::levenshtein(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_count_characters_not_bytes() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("é", "e"), 1);
        assert_eq!(
            closest("ensure-usr", &["ensure-user", "remove-user"]),
            Some("ensure-user")
        );
        assert_eq!(closest("same", &["same"]), None);
    }
}
