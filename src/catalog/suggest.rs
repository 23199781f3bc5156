//! "Did you mean": the right name for a wrong one, from the catalog's wrong-names data first,
//! then from edit distance against what may be subscribed.

use super::Catalog;
use crate::validation::{clip, closest};

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
    let candidates = candidates
        .iter()
        .map(String::as_str)
        .filter(|c| *c != "*" || lowered.contains('*'));
    // Allow roughly one typo per four characters, at least two.
    let allowed = (lowered.len() / 4).max(2);
    closest(&lowered, candidates, allowed).map(str::to_owned)
}

/// The one text for a name that is no event: `'name' is not an event name`, then the wrong-name
/// table's reason and `Use 'x'.` (`why`), or `; did you mean 'x'?`, or, without a suggestion,
/// where the names are listed. The name is clipped as every error quotes a value.
pub fn unknown_event_message(name: &str, suggestion: Option<&str>, why: Option<&str>) -> String {
    let name = clip(name);
    match (suggestion, why) {
        (Some(s), Some(why)) => format!("'{name}' is not an event name: {why} Use '{s}'."),
        (Some(s), None) => format!("'{name}' is not an event name; did you mean '{s}'?"),
        (None, _) => format!("'{name}' is not an event name; GET /v1/events lists the names"),
    }
}
