import { createHmac, timingSafeEqual } from 'crypto';

/** Prefix of a Standard Webhooks secret; the rest is the base64 of the HMAC key. */
export const SECRET_PREFIX = 'whsec_';

/** Signatures older or newer than this (seconds) are refused, as in the reference libraries. */
export const TOLERANCE_SECONDS = 5 * 60;

/**
 * The HMAC key for a secret: the base64-decoded part after `whsec_`, or the UTF-8 bytes of
 * any other (plain) secret.
 */
export function keyFromSecret(secret: string): Buffer {
	if (secret.startsWith(SECRET_PREFIX)) {
		return Buffer.from(secret.slice(SECRET_PREFIX.length), 'base64');
	}
	return Buffer.from(secret, 'utf8');
}

function toBuffer(body: Buffer | string): Buffer {
	return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

function mac(key: Buffer, id: string, timestamp: string, body: Buffer): Buffer {
	return createHmac('sha256', key).update(`${id}.${timestamp}.`, 'utf8').update(body).digest();
}

/** The `webhook-signature` value for one message: `v1,<base64 HMAC-SHA256>`. */
export function sign(
	secret: string,
	id: string,
	timestamp: number | string,
	body: Buffer | string,
): string {
	const digest = mac(keyFromSecret(secret), id, String(timestamp), toBuffer(body));
	return `v1,${digest.toString('base64')}`;
}

export type HeaderValue = string | string[] | undefined;

export interface VerifyInput {
	secret: string;
	id: HeaderValue;
	timestamp: HeaderValue;
	signature: HeaderValue;
	body: Buffer | string;
	/** Current time in Unix seconds. */
	now: number;
	toleranceSeconds?: number;
}

export type VerifyResult = { valid: true } | { valid: false; reason: string };

function single(value: HeaderValue): string | undefined {
	if (Array.isArray(value)) return value.length > 0 ? value.join(' ') : undefined;
	return value;
}

/**
 * Checks a delivery the Standard Webhooks way: the three headers are present, the timestamp
 * is within the tolerance of `now`, and one of the space-separated `v1,` signatures is the
 * HMAC-SHA256 of "{id}.{timestamp}.{body}" (compared in constant time).
 */
export function verify(input: VerifyInput): VerifyResult {
	const id = single(input.id)?.trim();
	const timestamp = single(input.timestamp)?.trim();
	const signature = single(input.signature)?.trim();
	if (!id || !timestamp || !signature) {
		const missing = [
			!id ? 'webhook-id' : undefined,
			!timestamp ? 'webhook-timestamp' : undefined,
			!signature ? 'webhook-signature' : undefined,
		].filter((h) => h !== undefined);
		return { valid: false, reason: `missing header(s): ${missing.join(', ')}` };
	}
	if (!/^\d{1,15}$/.test(timestamp)) {
		return { valid: false, reason: 'webhook-timestamp is not a Unix time in seconds' };
	}
	const tolerance = input.toleranceSeconds ?? TOLERANCE_SECONDS;
	const age = input.now - Number(timestamp);
	if (age > tolerance) {
		return { valid: false, reason: `webhook-timestamp is too old (${age} s)` };
	}
	if (age < -tolerance) {
		return { valid: false, reason: `webhook-timestamp is too far in the future (${-age} s)` };
	}

	const expected = mac(keyFromSecret(input.secret), id, timestamp, toBuffer(input.body));
	let sawV1 = false;
	let matched = false;
	for (const entry of signature.split(' ')) {
		const comma = entry.indexOf(',');
		if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
		sawV1 = true;
		const candidate = Buffer.from(entry.slice(comma + 1), 'base64');
		// Compare every candidate, even after a match, so timing does not tell which one matched.
		if (candidate.length === expected.length && timingSafeEqual(candidate, expected)) {
			matched = true;
		}
	}
	if (matched) return { valid: true };
	if (!sawV1) return { valid: false, reason: 'no v1 signature in webhook-signature' };
	return { valid: false, reason: 'no signature matches' };
}
