//! "Did you mean": the right name for a wrong one, from the catalog's wrong-names data first,
//! then from edit distance against what may be subscribed.

use super::Catalog;

/// Names longer than this get no suggestion.
const MAX_PLAUSIBLE_LEN: usize = 64;

/// The best replacement for `name`, if there is a convincing one.
pub fn suggest(catalog: &Catalog, name: &str) -> Option<String> {
    // No event name is near this long: the edit distance is not worth its cost.
    if name.len() > MAX_PLAUSIBLE_LEN {
        return None;
    }
    if let Some(wrong) = catalog.wrong_name(name) {
        return Some(wrong.use_instead.clone());
    }
    let lowered = name
        .trim()
        .to_ascii_lowercase()
        .replace(['_', '-', ' '], "_");
    if lowered.is_empty() {
        return None;
    }
    let candidates = catalog.subscribable_patterns();
    if let Some(exact) = candidates.iter().find(|c| **c == lowered) {
        return Some(exact.clone());
    }
    if let Some(wrong) = catalog.wrong_name(&lowered) {
        return Some(wrong.use_instead.clone());
    }
    // `*` is one edit away from any one-character name: offer "everything" only to someone who
    // typed a wildcard.
    let (best, distance) = candidates
        .iter()
        .filter(|c| c.as_str() != "*" || lowered.contains('*'))
        .map(|c| (c, strsim::damerau_levenshtein(&lowered, c)))
        .min_by_key(|(_, d)| *d)?;
    // Allow roughly one typo per four characters, at least two.
    let allowed = (lowered.len() / 4).max(2);
    (distance <= allowed).then(|| best.clone())
}
