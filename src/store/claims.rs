//! Which due deliveries a claim takes, once the backend has read candidates in due order: the
//! rule both backends share, pure so it tests without a database.

use std::collections::{HashMap, HashSet};

/// A due, pending delivery as a claim reads it, in due order.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: String,
    pub webhook_id: String,
    /// Leased until then (by this or another instance), if at all.
    pub lease_until: Option<i64>,
    /// Its registration is active.
    pub active: bool,
}

/// The candidates a claim at `now_ms` takes, in their order: free (no lease, or one that ran
/// out), of an active registration that is not `busy`, at most `per_webhook` of one
/// registration and `limit` in all.
pub fn choose(
    candidates: &[Candidate],
    now_ms: i64,
    limit: usize,
    per_webhook: u32,
    busy: &HashSet<&str>,
) -> Vec<String> {
    let mut per: HashMap<&str, u32> = HashMap::new();
    let mut chosen = Vec::new();
    for c in candidates {
        if chosen.len() >= limit {
            break;
        }
        let free = c.lease_until.is_none_or(|until| until < now_ms);
        if !free || !c.active || busy.contains(c.webhook_id.as_str()) {
            continue;
        }
        let n = per.entry(&c.webhook_id).or_insert(0);
        if *n < per_webhook {
            *n += 1;
            chosen.push(c.id.clone());
        }
    }
    chosen
}

/// Of `chosen` (ids [`choose`] took from `candidates`), those of registrations it brought up to
/// `per_webhook`, in their order, and those registrations. A second, per-registration look for
/// the rest of a claim leaves these registrations out and keeps these picks, as they could take
/// no more.
pub fn capped<'a>(
    candidates: &'a [Candidate],
    chosen: &[String],
    per_webhook: u32,
) -> (Vec<String>, Vec<&'a str>) {
    let taken: HashSet<&str> = chosen.iter().map(String::as_str).collect();
    let mut per: HashMap<&str, u32> = HashMap::new();
    let mut order: Vec<(&str, &str)> = Vec::new();
    for c in candidates.iter().filter(|c| taken.contains(c.id.as_str())) {
        *per.entry(&c.webhook_id).or_insert(0) += 1;
        order.push((&c.id, &c.webhook_id));
    }
    let full: HashSet<&str> = per
        .into_iter()
        .filter(|(_, n)| *n >= per_webhook)
        .map(|(w, _)| w)
        .collect();
    let kept = order
        .into_iter()
        .filter(|(_, w)| full.contains(w))
        .map(|(id, _)| id.to_owned())
        .collect();
    (kept, full.into_iter().collect())
}

/// How many free rows of the global due order a claim of `limit` looks at first (the window):
/// twice what it may take, so that one registration at its cap does not leave the claim short.
/// The backend skips leased rows before counting, so an engine's own leases at the head of that
/// order do not use the window up. A full window that still leaves the claim short (busy,
/// inactive or capped registrations at the head) is the backend's cue to look per registration.
pub fn window(limit: u32) -> i64 {
    (i64::from(limit) * 2).max(16)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, webhook: &str) -> Candidate {
        Candidate {
            id: id.into(),
            webhook_id: webhook.into(),
            lease_until: None,
            active: true,
        }
    }

    #[test]
    fn takes_in_order_up_to_the_limit_and_the_cap_per_registration() {
        let all = [
            c("1", "a"),
            c("2", "a"),
            c("3", "a"),
            c("4", "b"),
            c("5", "c"),
        ];
        assert_eq!(
            choose(&all, 0, 10, 2, &HashSet::new()),
            ["1", "2", "4", "5"]
        );
        assert_eq!(choose(&all, 0, 3, 2, &HashSet::new()), ["1", "2", "4"]);
    }

    #[test]
    fn skips_leased_inactive_and_busy() {
        let mut leased = c("1", "a");
        leased.lease_until = Some(100);
        let mut expired = c("2", "a");
        expired.lease_until = Some(50);
        let mut off = c("3", "b");
        off.active = false;
        let all = [leased, expired, off, c("4", "busy"), c("5", "c")];
        let busy = HashSet::from(["busy"]);
        assert_eq!(choose(&all, 100, 10, 10, &busy), ["2", "5"]);
    }

    #[test]
    fn the_registrations_at_their_cap_keep_their_picks() {
        let all = [
            c("1", "a"),
            c("2", "b"),
            c("3", "a"),
            c("4", "a"),
            c("5", "b"),
        ];
        let chosen = choose(&all, 0, 10, 2, &HashSet::new());
        assert_eq!(chosen, ["1", "2", "3", "5"]);
        let (kept, mut full) = capped(&all, &chosen, 2);
        full.sort_unstable();
        assert_eq!(
            (kept, full),
            (
                vec!["1".into(), "2".into(), "3".into(), "5".into()],
                vec!["a", "b"]
            )
        );

        let chosen = choose(&all, 0, 10, 3, &HashSet::new());
        let (kept, full) = capped(&all, &chosen, 3);
        assert_eq!(
            (kept, full),
            (vec!["1".into(), "3".into(), "4".into()], vec!["a"])
        );

        let (kept, full) = capped(&all, &[], 1);
        assert!(kept.is_empty() && full.is_empty());
    }

    #[test]
    fn the_window_is_more_than_a_claim() {
        for limit in [1, 16, 128, 256, 1000] {
            assert!(window(limit) >= 2 * i64::from(limit));
        }
    }
}
