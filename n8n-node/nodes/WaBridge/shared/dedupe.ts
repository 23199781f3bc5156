import type { IDataObject } from 'n8n-workflow';

/**
 * How long an accepted idempotency key is remembered, in hours.
 *
 * The bridge's default retry schedule (0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h) puts the
 * last attempt 27 h 35 min after the first, and each delay may be stretched by up to 20 %
 * (jitter): at most 33 h 6 min. 36 hours cover that with room to spare.
 */
export const DEDUPE_WINDOW_HOURS = 36;

/** The most keys remembered at once; beyond it the oldest are forgotten first. */
export const DEDUPE_CAPACITY = 10_000;

/** The largest capacity the node accepts (the keys live in the workflow's static data). */
export const DEDUPE_MAX_CAPACITY = 100_000;

/** Where the keys live in the node's workflow static data. */
export const DEDUPE_FIELD = 'seenDeliveries';

/** Where version 0.1.0 kept its keys (a plain list, no times); read once, then removed. */
export const LEGACY_DEDUPE_FIELD = 'seenIdempotencyKeys';

export interface DedupeLimits {
	/** Keys accepted at least this long ago (seconds) are forgotten. */
	windowSeconds: number;
	/** At most this many keys are kept; the oldest go first. */
	capacity: number;
}

export const DEFAULT_LIMITS: DedupeLimits = {
	windowSeconds: DEDUPE_WINDOW_HOURS * 3600,
	capacity: DEDUPE_CAPACITY,
};

/** The stored memory: keys in the order they were accepted, with that time (Unix seconds). */
interface Memory {
	keys: string[];
	at: number[];
}

function clampInteger(value: unknown, min: number, max: number, fallback: number): number {
	const n = typeof value === 'number' ? value : Number(value);
	if (!Number.isFinite(n)) return fallback;
	return Math.min(max, Math.max(min, Math.floor(n)));
}

/**
 * The limits from the node's options (`dedupeWindowHours`, `dedupeCapacity`), each falling back
 * to its default and kept within sane bounds (window 1 minute to 30 days, capacity 1 to
 * {@link DEDUPE_MAX_CAPACITY}).
 */
export function limitsFromOptions(options: IDataObject): DedupeLimits {
	const hours =
		typeof options.dedupeWindowHours === 'number' ? options.dedupeWindowHours : Number.NaN;
	const windowSeconds = Number.isFinite(hours)
		? clampInteger(hours * 3600, 60, 30 * 24 * 3600, DEFAULT_LIMITS.windowSeconds)
		: DEFAULT_LIMITS.windowSeconds;
	const capacity = clampInteger(
		options.dedupeCapacity,
		1,
		DEDUPE_MAX_CAPACITY,
		DEFAULT_LIMITS.capacity,
	);
	return { windowSeconds, capacity };
}

function load(staticData: IDataObject, nowSeconds: number): Memory {
	const memory: Memory = { keys: [], at: [] };
	const stored = staticData[DEDUPE_FIELD] as { keys?: unknown; at?: unknown } | undefined;
	if (stored && Array.isArray(stored.keys) && Array.isArray(stored.at)) {
		const n = Math.min(stored.keys.length, stored.at.length);
		for (let i = 0; i < n; i++) {
			const key = stored.keys[i];
			const at = stored.at[i];
			if (typeof key === 'string' && typeof at === 'number' && Number.isFinite(at)) {
				memory.keys.push(key);
				memory.at.push(at);
			}
		}
	}
	// Keys kept by 0.1.0 carry no time: count them as accepted now, so none is forgotten early.
	const legacy = staticData[LEGACY_DEDUPE_FIELD];
	if (Array.isArray(legacy)) {
		for (const key of legacy) {
			if (typeof key === 'string' && !memory.keys.includes(key)) {
				memory.keys.push(key);
				memory.at.push(nowSeconds);
			}
		}
		delete staticData[LEGACY_DEDUPE_FIELD];
	}
	return memory;
}

/**
 * Remembers `key` in `staticData` and tells whether it was already there.
 *
 * Guarantee: a key is recognised as a repeat when it was first accepted less than
 * `limits.windowSeconds` ago **and** fewer than `limits.capacity` other keys were accepted
 * since. Memory is bounded by both: keys older than the window are dropped, and when more than
 * `capacity` keys are within the window, the oldest are dropped first. A repeat does not renew
 * its key's time (the bridge's retry window starts with the first attempt).
 *
 * With the defaults (36 h, 10,000 keys) every retry of the bridge's default schedule is caught
 * as long as the trigger accepts fewer than 10,000 deliveries in 36 hours (about 4.6 a minute
 * on average); above that, raise the capacity or deduplicate further down the workflow.
 */
export function seenBefore(
	staticData: IDataObject,
	key: string,
	nowSeconds: number,
	limits: DedupeLimits = DEFAULT_LIMITS,
): boolean {
	const memory = load(staticData, nowSeconds);
	const cutoff = nowSeconds - limits.windowSeconds;

	// Drop what the window no longer covers. Times are ascending unless the clock went back,
	// so test every entry rather than stopping at the first recent one.
	const keys: string[] = [];
	const at: number[] = [];
	for (let i = 0; i < memory.keys.length; i++) {
		if (memory.at[i] > cutoff) {
			keys.push(memory.keys[i]);
			at.push(memory.at[i]);
		}
	}

	const seen = keys.includes(key);
	if (!seen) {
		keys.push(key);
		at.push(nowSeconds);
	}
	const excess = keys.length - Math.max(1, limits.capacity);
	if (excess > 0) {
		keys.splice(0, excess);
		at.splice(0, excess);
	}
	staticData[DEDUPE_FIELD] = { keys, at };
	return seen;
}
