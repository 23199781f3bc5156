import type { IDataObject } from 'n8n-workflow';
import { describe, expect, it } from 'vitest';

import {
	DEDUPE_CAPACITY,
	DEDUPE_FIELD,
	DEDUPE_MAX_CAPACITY,
	DEDUPE_WINDOW_HOURS,
	DEFAULT_LIMITS,
	LEGACY_DEDUPE_FIELD,
	limitsFromOptions,
	seenBefore,
} from '../nodes/WaBridge/shared/dedupe';

const T0 = 1_795_000_000;
const HOUR = 3600;

function stored(staticData: IDataObject): { keys: string[]; at: number[] } {
	return staticData[DEDUPE_FIELD] as { keys: string[]; at: number[] };
}

/** The bridge's default retry delays (seconds) and the largest jitter (+20 %). */
const DEFAULT_SCHEDULE = [0, 5, 5 * 60, 30 * 60, 2 * HOUR, 5 * HOUR, 10 * HOUR, 10 * HOUR];

describe('dedupe: the stated guarantee', () => {
	it('the default window covers every retry of the default schedule, even with +20 % jitter', () => {
		const lastRetry = DEFAULT_SCHEDULE.reduce((sum, d) => sum + d * 1.2, 0);
		expect(lastRetry).toBeLessThan(DEDUPE_WINDOW_HOURS * HOUR);

		const staticData: IDataObject = {};
		expect(seenBefore(staticData, 'k', T0)).toBe(false);
		let at = T0;
		for (const delay of DEFAULT_SCHEDULE.slice(1)) {
			at += delay * 1.2;
			expect(seenBefore(staticData, 'k', at)).toBe(true);
		}
	});

	it('recognises a repeat within the window while fewer than capacity keys arrived since', () => {
		const limits = { windowSeconds: 10 * HOUR, capacity: 100 };
		const staticData: IDataObject = {};
		seenBefore(staticData, 'first', T0, limits);
		for (let i = 0; i < 99; i++) seenBefore(staticData, `other-${i}`, T0 + i, limits);
		expect(seenBefore(staticData, 'first', T0 + 10 * HOUR - 1, limits)).toBe(true);
	});

	it('forgets a key once the window has passed', () => {
		const limits = { windowSeconds: HOUR, capacity: 100 };
		const staticData: IDataObject = {};
		seenBefore(staticData, 'k', T0, limits);
		expect(seenBefore(staticData, 'k', T0 + HOUR - 1, limits)).toBe(true);
		// A repeat does not renew the time: the window runs from the first acceptance.
		expect(seenBefore(staticData, 'k', T0 + HOUR, limits)).toBe(false);
	});

	it('forgets the oldest keys first beyond the capacity', () => {
		const limits = { windowSeconds: 100 * HOUR, capacity: 3 };
		const staticData: IDataObject = {};
		for (const k of ['a', 'b', 'c', 'd']) expect(seenBefore(staticData, k, T0, limits)).toBe(false);
		expect(stored(staticData).keys).toEqual(['b', 'c', 'd']);
		expect(seenBefore(staticData, 'd', T0, limits)).toBe(true);
		expect(seenBefore(staticData, 'a', T0, limits)).toBe(false);
		expect(stored(staticData).keys).toEqual(['c', 'd', 'a']);
	});
});

describe('dedupe: memory is bounded by time and size', () => {
	it('never holds more than capacity keys', () => {
		const limits = { windowSeconds: 1000 * HOUR, capacity: 50 };
		const staticData: IDataObject = {};
		for (let i = 0; i < 500; i++) seenBefore(staticData, `k-${i}`, T0 + i, limits);
		expect(stored(staticData).keys).toHaveLength(50);
		expect(stored(staticData).at).toHaveLength(50);
		expect(stored(staticData).keys[0]).toBe('k-450');
	});

	it('drops expired keys on the next delivery, however few arrive', () => {
		const limits = { windowSeconds: HOUR, capacity: 1000 };
		const staticData: IDataObject = {};
		for (let i = 0; i < 10; i++) seenBefore(staticData, `old-${i}`, T0 + i, limits);
		seenBefore(staticData, 'new', T0 + 2 * HOUR, limits);
		expect(stored(staticData)).toEqual({ keys: ['new'], at: [T0 + 2 * HOUR] });
	});

	it('survives a clock that went back (keeps entries that are not expired)', () => {
		const limits = { windowSeconds: HOUR, capacity: 10 };
		const staticData: IDataObject = {};
		seenBefore(staticData, 'a', T0 + 100, limits);
		expect(seenBefore(staticData, 'a', T0, limits)).toBe(true);
	});

	it('ignores malformed stored data instead of failing', () => {
		const staticData: IDataObject = { [DEDUPE_FIELD]: { keys: ['a', 5, 'b'], at: [T0, T0, 'x'] } };
		expect(seenBefore(staticData, 'a', T0 + 1)).toBe(true);
		expect(seenBefore(staticData, 'b', T0 + 1)).toBe(false);
		const garbage: IDataObject = { [DEDUPE_FIELD]: 'nonsense' };
		expect(seenBefore(garbage, 'a', T0)).toBe(false);
	});

	it('adopts the keys kept by version 0.1.0 as accepted now, and removes the old field', () => {
		const staticData: IDataObject = { [LEGACY_DEDUPE_FIELD]: ['old-1', 'old-2'] };
		expect(seenBefore(staticData, 'old-2', T0)).toBe(true);
		expect(staticData).not.toHaveProperty(LEGACY_DEDUPE_FIELD);
		expect(stored(staticData)).toEqual({ keys: ['old-1', 'old-2'], at: [T0, T0] });
	});
});

describe('dedupe: limits from the node options', () => {
	it('defaults', () => {
		expect(limitsFromOptions({})).toEqual(DEFAULT_LIMITS);
		expect(DEFAULT_LIMITS).toEqual({
			windowSeconds: DEDUPE_WINDOW_HOURS * HOUR,
			capacity: DEDUPE_CAPACITY,
		});
	});

	it('reads and clamps the options', () => {
		expect(limitsFromOptions({ dedupeWindowHours: 2, dedupeCapacity: 500 })).toEqual({
			windowSeconds: 2 * HOUR,
			capacity: 500,
		});
		expect(limitsFromOptions({ dedupeWindowHours: 0, dedupeCapacity: 0 })).toEqual({
			windowSeconds: 60,
			capacity: 1,
		});
		expect(limitsFromOptions({ dedupeWindowHours: 1e9, dedupeCapacity: 1e9 })).toEqual({
			windowSeconds: 30 * 24 * HOUR,
			capacity: DEDUPE_MAX_CAPACITY,
		});
		expect(limitsFromOptions({ dedupeWindowHours: 'x', dedupeCapacity: 'y' })).toEqual(
			DEFAULT_LIMITS,
		);
	});
});
