//! What the engine holds: claimed (leased) deliveries, in flight or queued per registration.
//! Claiming ahead lets a finished attempt start the next one at once, without a claim
//! transaction per delivery.
//!
//! Free slots go round-robin: registrations with queued deliveries wait in `order`, and one that
//! gets a slot moves to the back (or leaves, if it has nothing more queued), so under a saturated
//! global limit every busy registration gets its share of the freed slots (a registration at its
//! own cap keeps its place and is served first once it has room again). Only registrations with
//! something queued are in `order`, so finding a free slot never walks past those that only have
//! attempts in flight (with 100 registrations, about half of them at any time).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use foldhash::HashMapExt;
use governor::DefaultDirectRateLimiter;

use super::attempt;
use crate::store::{ClaimedDelivery, DeliveryId, HeldLease, Webhook, WebhookId};

/// Deliveries held (in flight or queued) per registration, in lanes' worth. Sixteen: a
/// registration draining a backlog claims about 64 at a time instead of 16 (drain of a 200,000
/// backlog measured 3,704 → 5,656 deliveries/s); the engine's global hold limit still caps the sum.
pub const HOLD_FACTOR: usize = 16;

/// Deliveries held for one registration: in flight, and claimed ones waiting for a lane.
#[derive(Default)]
struct Lane {
    in_flight: usize,
    queued: VecDeque<ClaimedDelivery>,
}

impl Lane {
    fn held(&self) -> usize {
        self.in_flight + self.queued.len()
    }
}

/// What a registration change did to the deliveries queued for it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Refreshed {
    /// Queued deliveries whose registration data was replaced.
    pub updated: usize,
    /// Queued deliveries dropped (the registration is gone or inactive).
    pub dropped: Vec<HeldLease>,
}

/// The lanes' maps are looked up a few times per attempt, by ids the bridge made itself: a fast
/// hash (foldhash, seeded per process) rather than SipHash, which had 2–3% of the engine's
/// samples in the fan-out to 100 registrations.
type FastMap<K, V> = foldhash::HashMap<K, V>;

pub struct Lanes {
    per_webhook: FastMap<WebhookId, Lane>,
    /// Registrations with queued deliveries, in the order they get free slots. A registration
    /// is here exactly when its lane's queue is not empty.
    order: VecDeque<WebhookId>,
    /// Every held delivery id and the token of its claim (a claim may return one again if its
    /// lease ran out meanwhile).
    ids: FastMap<DeliveryId, i64>,
    /// Rate limiters of rate-limited registrations, with the rate they were built for.
    limiters: HashMap<WebhookId, (f64, Arc<DefaultDirectRateLimiter>)>,
    /// Lanes per registration.
    per_webhook_cap: usize,
}

impl Lanes {
    pub fn new(per_webhook_cap: usize) -> Self {
        Self {
            per_webhook: FastMap::new(),
            order: VecDeque::new(),
            ids: FastMap::new(),
            limiters: HashMap::new(),
            per_webhook_cap: per_webhook_cap.max(1),
        }
    }

    /// Most deliveries held per registration.
    pub fn hold_cap(&self) -> usize {
        self.per_webhook_cap * HOLD_FACTOR
    }

    /// Registrations holding enough that claiming more for them is pointless now.
    pub fn busy(&self) -> Vec<WebhookId> {
        let half = self.hold_cap() / 2;
        self.per_webhook
            .iter()
            .filter(|(_, lane)| lane.held() >= half.max(1))
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Deliveries held, in flight or queued.
    pub fn held(&self) -> usize {
        self.ids.len()
    }

    /// Is this delivery held?
    #[cfg(test)]
    pub fn holds(&self, delivery_id: &DeliveryId) -> bool {
        self.ids.contains_key(delivery_id)
    }

    /// The leases of every held delivery, to renew.
    pub fn leases(&self) -> Vec<HeldLease> {
        self.ids
            .iter()
            .map(|(id, token)| HeldLease {
                delivery_id: id.clone(),
                claim_token: *token,
            })
            .collect()
    }

    /// Queues a claimed delivery; false if it is already held. A delivery held and claimed
    /// again (its lease ran out while this process held it, e.g. renewals failed) is now held
    /// under the new claim: its token is taken, so that renewal and the result of a queued one
    /// go by the claim that holds it.
    pub fn hold(&mut self, d: ClaimedDelivery) -> bool {
        if let Some(token) = self.ids.get_mut(&d.id) {
            if *token != d.claim_token {
                *token = d.claim_token;
                if let Some(queued) = self
                    .per_webhook
                    .get_mut(&d.webhook_id)
                    .and_then(|lane| lane.queued.iter_mut().find(|q| q.id == d.id))
                {
                    queued.claim_token = d.claim_token;
                }
            }
            return false;
        }
        self.ids.insert(d.id.clone(), d.claim_token);
        let lane = match self.per_webhook.get_mut(&d.webhook_id) {
            Some(lane) => lane,
            None => self.per_webhook.entry(d.webhook_id.clone()).or_default(),
        };
        if lane.queued.is_empty() {
            self.order.push_back(d.webhook_id.clone());
        }
        lane.queued.push_back(d);
        true
    }

    /// Takes the next queued deliveries that have a free lane, as long as `room` allows, one
    /// registration at a time in round-robin order.
    pub fn ready(&mut self, mut room: usize) -> Vec<ClaimedDelivery> {
        let mut out = Vec::new();
        while room > 0 {
            // One pass: each registration with a free lane gets one slot (everything in `order`
            // has a queued delivery). Remembered: where it was, and whether it has more queued.
            let mut served = Vec::new();
            for (pos, id) in self.order.iter().enumerate() {
                if room == 0 {
                    break;
                }
                let Some(lane) = self.per_webhook.get_mut(id) else {
                    continue;
                };
                if lane.in_flight >= self.per_webhook_cap {
                    continue;
                }
                let Some(d) = lane.queued.pop_front() else {
                    continue;
                };
                lane.in_flight += 1;
                room -= 1;
                out.push(d);
                served.push((pos, !lane.queued.is_empty()));
            }
            if served.is_empty() {
                break;
            }
            // The served ones leave their places; those with more queued go to the back, in the
            // order they were served.
            let mut back = Vec::with_capacity(served.len());
            for (pos, more) in served.into_iter().rev() {
                if let Some(id) = self.order.remove(pos)
                    && more
                {
                    back.push(id);
                }
            }
            self.order.extend(back.into_iter().rev());
        }
        out
    }

    pub fn limiter(&mut self, d: &ClaimedDelivery) -> Option<Arc<DefaultDirectRateLimiter>> {
        let Some(rate) = d.rate_limit else {
            self.limiters.remove(&d.webhook_id);
            return None;
        };
        if let Some((r, l)) = self.limiters.get(&d.webhook_id)
            && *r == rate
        {
            return Some(Arc::clone(l));
        }
        let l = Arc::new(attempt::limiter(rate)?);
        self.limiters
            .insert(d.webhook_id.clone(), (rate, Arc::clone(&l)));
        Some(l)
    }

    /// An attempt finished. True when its registration now holds little enough that claiming
    /// more for it is worth a look.
    pub fn finished(&mut self, webhook_id: &WebhookId, delivery_id: &DeliveryId) -> bool {
        self.ids.remove(delivery_id);
        let half = (self.hold_cap() / 2).max(1);
        let Some(lane) = self.per_webhook.get_mut(webhook_id) else {
            return true;
        };
        lane.in_flight = lane.in_flight.saturating_sub(1);
        let held = lane.held();
        if held == 0 {
            // Nothing queued, so not in `order` either.
            self.per_webhook.remove(webhook_id);
        }
        held < half
    }

    /// The leases of these deliveries were lost (another claim holds them now). Queued ones are
    /// dropped: they must not be sent by this process. In-flight ones are only forgotten for
    /// renewal (their result is fenced by the claim token). Returns how many queued ones were
    /// dropped.
    pub fn lost(&mut self, delivery_ids: &[DeliveryId]) -> usize {
        let mut dropped = 0;
        let mut emptied = Vec::new();
        for id in delivery_ids {
            if self.ids.remove(id).is_none() {
                continue;
            }
            for (webhook_id, lane) in &mut self.per_webhook {
                if let Some(pos) = lane.queued.iter().position(|d| &d.id == id) {
                    lane.queued.remove(pos);
                    dropped += 1;
                    if lane.queued.is_empty() {
                        emptied.push(webhook_id.clone());
                    }
                    break;
                }
            }
        }
        for w in emptied {
            self.unqueue(&w);
        }
        dropped
    }

    /// Does this registration have deliveries queued (not yet started)?
    pub fn has_queued(&self, webhook_id: &WebhookId) -> bool {
        self.per_webhook
            .get(webhook_id)
            .is_some_and(|lane| !lane.queued.is_empty())
    }

    /// Registrations with deliveries queued (not yet started).
    pub fn with_queued(&self) -> Vec<WebhookId> {
        self.per_webhook
            .iter()
            .filter(|(_, lane)| !lane.queued.is_empty())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Applies the current state of a registration (`None`: deleted) to the deliveries queued
    /// for it: new URL, secret, headers and rate limit, or, for a registration that is gone or
    /// inactive, drops them (the caller hands their leases back).
    pub fn refresh(&mut self, webhook_id: &WebhookId, current: Option<&Webhook>) -> Refreshed {
        let mut out = Refreshed::default();
        let Some(lane) = self.per_webhook.get_mut(webhook_id) else {
            return out;
        };
        match current {
            Some(w) if w.active => {
                for d in &mut lane.queued {
                    d.url.clone_from(&w.url);
                    d.secret = w.secret.clone();
                    d.headers.clone_from(&w.headers);
                    d.rate_limit = w.rate_limit;
                    out.updated += 1;
                }
            }
            _ => {
                out.dropped = lane
                    .queued
                    .drain(..)
                    .map(|d| HeldLease {
                        delivery_id: d.id,
                        claim_token: d.claim_token,
                    })
                    .collect();
                for l in &out.dropped {
                    self.ids.remove(&l.delivery_id);
                }
                self.unqueue(webhook_id);
            }
        }
        out
    }

    /// Ids of claimed deliveries that were never started (to hand back on shutdown), with the
    /// tokens of their claims; they are no longer held afterwards.
    pub fn take_queued(&mut self) -> Vec<HeldLease> {
        let mut out = Vec::new();
        for lane in self.per_webhook.values_mut() {
            for d in lane.queued.drain(..) {
                self.ids.remove(&d.id);
                out.push(HeldLease {
                    delivery_id: d.id,
                    claim_token: d.claim_token,
                });
            }
        }
        self.per_webhook.retain(|_, lane| lane.held() > 0);
        self.order.clear();
        out
    }

    /// A registration's queue was emptied other than by starting its deliveries: it leaves
    /// `order`, and its lane goes if nothing of it is in flight either.
    fn unqueue(&mut self, webhook_id: &WebhookId) {
        if let Some(pos) = self.order.iter().position(|id| id == webhook_id) {
            self.order.remove(pos);
        }
        if self
            .per_webhook
            .get(webhook_id)
            .is_some_and(|l| l.held() == 0)
        {
            self.per_webhook.remove(webhook_id);
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use std::collections::{BTreeMap, HashMap, VecDeque};

    use super::*;
    use crate::secret::WebhookSecret;

    /// A claimed delivery `n` of registration `webhook` (also used by `claiming`'s tests).
    pub(in crate::delivery) fn delivery(webhook: &str, n: usize) -> ClaimedDelivery {
        ClaimedDelivery {
            id: DeliveryId::from_stored(format!("{webhook}-d{n}")),
            webhook_id: WebhookId::from_stored(webhook),
            url: crate::target_url::TargetUrl::parse(&format!("http://127.0.0.1:9/{webhook}"))
                .unwrap(),
            secret: WebhookSecret::generate(),
            headers: BTreeMap::new(),
            rate_limit: None,
            event: "message.received".into(),
            session_id: "s1".into(),
            idempotency_key: format!("k-{webhook}-{n}"),
            occurred: "2026-11-28T10:00:00Z".into(),
            data: "{}".into(),
            is_test: false,
            attempts: 0,
            retry_base: 0,
            claim_token: i64::try_from(n).unwrap() + 1,
        }
    }

    fn webhook(id: &str, url: &str, active: bool) -> Webhook {
        Webhook {
            id: WebhookId::from_stored(id),
            url: crate::target_url::TargetUrl::parse(url).unwrap(),
            events: vec!["*".into()],
            session_id: None,
            description: None,
            headers: BTreeMap::from([("X-New".into(), "1".into())]),
            secret: WebhookSecret::generate(),
            active,
            rate_limit: Some(5.0),
            disabled_reason: None,
            created_at_ms: 0,
            updated_at_ms: 1,
        }
    }

    fn ids(leases: &[HeldLease]) -> Vec<&str> {
        leases.iter().map(|l| l.delivery_id.as_str()).collect()
    }

    /// Queues `n` deliveries for each registration, interleaved as a claim would return them.
    fn lanes_with(cap: usize, webhooks: &[&str], n: usize) -> Lanes {
        let mut lanes = Lanes::new(cap);
        for i in 0..n {
            for w in webhooks {
                assert!(lanes.hold(delivery(w, i)));
            }
        }
        lanes
    }

    #[test]
    fn a_delivery_is_held_once_and_the_per_registration_cap_holds() {
        let mut lanes = lanes_with(2, &["a"], 5);
        assert!(!lanes.hold(delivery("a", 0)), "already held");
        assert_eq!(lanes.held(), 5);
        let got = lanes.ready(10);
        assert_eq!(
            got.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            ["a-d0", "a-d1"],
            "two lanes, oldest first"
        );
        assert!(lanes.ready(10).is_empty(), "both lanes busy");
        assert_eq!(lanes.held(), 5, "in flight and queued are held");
    }

    #[test]
    fn a_delivery_claimed_again_is_held_under_the_new_claim() {
        let mut lanes = lanes_with(1, &["a"], 2);
        let mut again = delivery("a", 1);
        again.claim_token = 99;
        assert!(!lanes.hold(again));
        assert_eq!(lanes.held(), 2);
        assert!(
            lanes
                .leases()
                .iter()
                .any(|l| l.delivery_id == "a-d1" && l.claim_token == 99)
        );
        let first = lanes.ready(1);
        lanes.finished(&WebhookId::from_stored("a"), &first[0].id);
        assert_eq!(lanes.ready(1)[0].claim_token, 99);
    }

    #[test]
    fn a_finished_attempt_frees_its_slot() {
        let mut lanes = lanes_with(1, &["a"], 3);
        let first = lanes.ready(10);
        assert_eq!(first.len(), 1);
        assert!(lanes.ready(10).is_empty());
        lanes.finished(&WebhookId::from_stored("a"), &first[0].id);
        assert!(!lanes.holds(&first[0].id));
        let next = lanes.ready(10);
        assert_eq!(next[0].id, "a-d1");
        lanes.finished(&WebhookId::from_stored("a"), &next[0].id);
        let last = lanes.ready(10);
        assert_eq!(last[0].id, "a-d2");
        assert!(
            lanes.finished(&WebhookId::from_stored("a"), &last[0].id),
            "an empty lane wants a claim"
        );
        assert_eq!(lanes.held(), 0);
        assert!(lanes.per_webhook.is_empty() && lanes.order.is_empty());
    }

    #[test]
    fn the_global_room_is_respected() {
        let mut lanes = lanes_with(4, &["a", "b", "c"], 4);
        assert_eq!(lanes.ready(5).len(), 5);
        assert_eq!(lanes.ready(0).len(), 0);
    }

    /// The global limit is saturated (3 slots, 5 busy registrations with 2 lanes each): every
    /// freed slot goes to the registration that waited longest, so over many freed slots each
    /// one gets the same share, within one.
    #[test]
    fn freed_slots_are_shared_fairly_when_the_global_limit_is_saturated() {
        let names = ["a", "b", "c", "d", "e"];
        let slots = 3;
        let freed = 1000;
        let mut lanes = lanes_with(2, &names, freed + slots);
        let mut running: VecDeque<ClaimedDelivery> = lanes.ready(slots).into();
        assert_eq!(running.len(), slots);
        let mut got: HashMap<WebhookId, usize> = HashMap::new();
        for _ in 0..freed {
            // The oldest attempt finishes; its slot is given again.
            let done = running.pop_front().unwrap();
            lanes.finished(&done.webhook_id, &done.id);
            let next = lanes.ready(1);
            assert_eq!(next.len(), 1, "a freed slot is used at once");
            *got.entry(next[0].webhook_id.clone()).or_default() += 1;
            running.extend(next);
            for w in names {
                let in_flight = running.iter().filter(|d| d.webhook_id == w).count();
                assert!(in_flight <= 2, "{w} exceeds its lanes");
            }
        }
        let counts: Vec<usize> = names
            .iter()
            .map(|w| got.get(*w).copied().unwrap_or(0))
            .collect();
        let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
        assert!(
            max - min <= 1,
            "each registration gets its share of {freed} freed slots: {counts:?}"
        );
        assert_eq!(counts.iter().sum::<usize>(), freed);
    }

    /// A registration at its own cap keeps its place: once it has room it is served first.
    #[test]
    fn a_registration_at_its_cap_is_served_first_when_it_has_room() {
        let mut lanes = lanes_with(1, &["a", "b", "c"], 3);
        let first = lanes.ready(2);
        assert_eq!(
            first
                .iter()
                .map(|d| d.webhook_id.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        lanes.finished(&WebhookId::from_stored("a"), &first[0].id);
        let next = lanes.ready(1);
        assert_eq!(next[0].webhook_id, "c", "c waited longest");
        let more = lanes.ready(1);
        assert_eq!(more[0].webhook_id, "a");
    }

    #[test]
    fn lost_leases_drop_queued_deliveries_and_forget_running_ones() {
        let mut lanes = lanes_with(1, &["a"], 3);
        let running = lanes.ready(1);
        assert_eq!(lanes.leases().len(), 3);
        let dropped = lanes.lost(&[
            running[0].id.clone(),
            DeliveryId::from_stored("a-d2"),
            DeliveryId::from_stored("unknown"),
        ]);
        assert_eq!(dropped, 1, "only queued deliveries are dropped");
        assert!(!lanes.holds(&DeliveryId::from_stored("a-d2")) && !lanes.holds(&running[0].id));
        assert_eq!(lanes.held(), 1);
        lanes.finished(&WebhookId::from_stored("a"), &running[0].id);
        let next = lanes.ready(1);
        assert_eq!(next.len(), 1);
        assert_eq!(next[0].id, "a-d1", "the lost one is never started");
        lanes.finished(&WebhookId::from_stored("a"), &next[0].id);
        assert!(lanes.ready(1).is_empty());
        assert_eq!(lanes.held(), 0);
    }

    #[test]
    fn a_changed_registration_updates_or_drops_its_queued_deliveries() {
        let mut lanes = lanes_with(1, &["a", "b"], 3);
        let running = lanes.ready(2);
        assert_eq!(running.len(), 2);
        let fresh = webhook("a", "http://127.0.0.1:9/new", true);
        let r = lanes.refresh(&WebhookId::from_stored("a"), Some(&fresh));
        assert_eq!(r.updated, 2);
        lanes.finished(&WebhookId::from_stored("a"), &running[0].id);
        let next = lanes.ready(1);
        assert_eq!(next[0].url, "http://127.0.0.1:9/new");
        assert_eq!(next[0].secret.expose(), fresh.secret.expose());
        assert_eq!(next[0].headers, fresh.headers);
        assert_eq!(next[0].rate_limit, Some(5.0));

        let r = lanes.refresh(
            &WebhookId::from_stored("b"),
            Some(&webhook("b", "http://x", false)),
        );
        assert_eq!(
            ids(&r.dropped),
            ["b-d1", "b-d2"],
            "inactive: queued ones dropped"
        );
        lanes.finished(&WebhookId::from_stored("b"), &running[1].id);
        assert!(lanes.ready(5).iter().all(|d| d.webhook_id == "a"));
        let r = lanes.refresh(&WebhookId::from_stored("a"), None);
        assert_eq!(ids(&r.dropped), ["a-d2"], "deleted");
        assert_eq!(lanes.held(), 1, "only the running one");
    }

    /// `order` holds exactly the registrations with something queued, each once, and a lane
    /// exists only while it holds something.
    fn assert_consistent(lanes: &Lanes) {
        let mut in_order: Vec<&str> = lanes.order.iter().map(WebhookId::as_str).collect();
        in_order.sort_unstable();
        let mut queued: Vec<&str> = lanes
            .per_webhook
            .iter()
            .filter(|(_, l)| !l.queued.is_empty())
            .map(|(id, _)| id.as_str())
            .collect();
        queued.sort_unstable();
        assert_eq!(
            in_order, queued,
            "order is the registrations with queued deliveries"
        );
        assert!(
            lanes.per_webhook.values().all(|l| l.held() > 0),
            "no empty lanes"
        );
        let held: usize = lanes.per_webhook.values().map(Lane::held).sum();
        assert_eq!(held, lanes.held(), "every held delivery is in a lane");
    }

    /// Every operation, interleaved over a few registrations, keeps `order` and the lanes
    /// consistent, and every held delivery is either started once or given back.
    #[test]
    fn a_mixed_sequence_keeps_the_lanes_consistent() {
        let names = ["a", "b", "c", "d"];
        let mut lanes = Lanes::new(2);
        let mut running: Vec<ClaimedDelivery> = Vec::new();
        let mut started: HashMap<String, usize> = HashMap::new();
        let mut next = 0usize;
        // A fixed pseudo-random walk (a linear congruential generator), the same on every run.
        let mut x: u64 = 7;
        for step in 0..2_000 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let pick = usize::try_from(x >> 33).unwrap();
            let w = names[pick % names.len()];
            match pick % 7 {
                0 | 1 => {
                    assert!(lanes.hold(delivery(w, next)));
                    next += 1;
                }
                2 | 3 => {
                    for d in lanes.ready(pick % 4) {
                        *started.entry(d.id.as_str().to_owned()).or_default() += 1;
                        running.push(d);
                    }
                }
                4 if !running.is_empty() => {
                    let d = running.remove(pick % running.len());
                    lanes.finished(&d.webhook_id, &d.id);
                }
                5 => {
                    let queued: Vec<DeliveryId> = lanes
                        .per_webhook
                        .get(&WebhookId::from_stored(w))
                        .map(|l| l.queued.iter().map(|d| d.id.clone()).collect())
                        .unwrap_or_default();
                    if let Some(id) = queued.first() {
                        assert_eq!(lanes.lost(std::slice::from_ref(id)), 1);
                    }
                }
                6 if step % 50 == 0 => {
                    let active = pick % 3 != 0;
                    lanes.refresh(
                        &WebhookId::from_stored(w),
                        Some(&webhook(w, "http://127.0.0.1:9/x", active)),
                    );
                }
                _ => {}
            }
            assert_consistent(&lanes);
            for w in names {
                let n = running.iter().filter(|d| d.webhook_id == w).count();
                assert!(n <= 2, "{w} exceeds its lanes at step {step}");
            }
        }
        assert!(
            started.values().all(|n| *n == 1),
            "a delivery started twice"
        );
        lanes.take_queued();
        assert_consistent(&lanes);
        assert_eq!(lanes.held(), running.len());
    }

    #[test]
    fn queued_deliveries_are_taken_for_hand_back() {
        let mut lanes = lanes_with(1, &["a", "b"], 2);
        let running = lanes.ready(1);
        let back = lanes.take_queued();
        assert_eq!(back.len(), 3);
        assert_eq!(lanes.held(), 1);
        assert!(lanes.holds(&running[0].id));
        assert!(lanes.ready(5).is_empty());
    }
}
