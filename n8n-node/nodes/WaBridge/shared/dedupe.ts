import type { IDataObject } from 'n8n-workflow';

/** How many idempotency keys the trigger remembers; the oldest are forgotten first. */
export const DEDUPE_CAPACITY = 1000;

/** Where the keys live in the node's workflow static data. */
export const DEDUPE_FIELD = 'seenIdempotencyKeys';

/**
 * Remembers `key` in `staticData` and tells whether it was already there.
 *
 * The memory is a list in arrival order, capped at `capacity`: when full, the oldest key is
 * dropped. A delivery retried after its key fell out would run again, which is the price of
 * bounded memory; 1000 keys cover far more than the bridge's retry window in practice.
 */
export function seenBefore(
	staticData: IDataObject,
	key: string,
	capacity: number = DEDUPE_CAPACITY,
): boolean {
	const stored = staticData[DEDUPE_FIELD];
	const keys: string[] = Array.isArray(stored)
		? stored.filter((k): k is string => typeof k === 'string')
		: [];
	if (keys.includes(key)) {
		staticData[DEDUPE_FIELD] = keys;
		return true;
	}
	keys.push(key);
	while (keys.length > capacity) keys.shift();
	staticData[DEDUPE_FIELD] = keys;
	return false;
}
