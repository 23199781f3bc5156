import { randomBytes } from 'node:crypto';
import { Webhook, WebhookVerificationError } from 'standardwebhooks';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { keyFromSecret, sign, verify } from '../nodes/WaBridge/shared/signature';
import vector from './fixtures/standard-webhooks-vector.json';

// The published Standard Webhooks test vector (reference libraries).
const VECTOR = vector;
const PLAIN_SECRET = ['plain', 'shared', 'words'].join('-');

afterEach(() => {
	vi.useRealTimers();
});

describe('published test vector', () => {
	it('signs to the published signature', () => {
		expect(sign(VECTOR.secret, VECTOR.id, VECTOR.timestamp, VECTOR.body)).toBe(VECTOR.signature);
	});

	it('verifies the published signature', () => {
		expect(
			verify({
				secret: VECTOR.secret,
				id: VECTOR.id,
				timestamp: String(VECTOR.timestamp),
				signature: VECTOR.signature,
				body: Buffer.from(VECTOR.body),
				now: VECTOR.timestamp + 10,
			}),
		).toEqual({ valid: true });
	});

	it('rejects the vector with one changed byte', () => {
		const result = verify({
			secret: VECTOR.secret,
			id: VECTOR.id,
			timestamp: String(VECTOR.timestamp),
			signature: VECTOR.signature,
			body: VECTOR.body.replace('test_user', 'test_usex'),
			now: VECTOR.timestamp,
		});
		expect(result.valid).toBe(false);
	});
});

describe('cross-check with the official standardwebhooks library', () => {
	const randomSecret = () =>
		`whsec_${randomBytes(24 + Math.floor(Math.random() * 40)).toString('base64')}`;
	const randomBody = (i: number) =>
		JSON.stringify({
			event: 'message.received',
			i,
			text: randomBytes(1 + (i % 64)).toString('hex'),
			unicode: 'olá 👋 \u00e9\u0301 "quoted" \\ slash',
		});

	it('verifies what the official library signs', () => {
		const now = Math.floor(Date.now() / 1000);
		for (let i = 0; i < 50; i++) {
			const secret = randomSecret();
			const id = `msg_${randomBytes(8).toString('hex')}`;
			const body = randomBody(i);
			const header = new Webhook(secret).sign(id, new Date(now * 1000), body);
			expect(verify({ secret, id, timestamp: String(now), signature: header, body, now })).toEqual({
				valid: true,
			});
		}
	});

	it('signs what the official library verifies', () => {
		const now = Math.floor(Date.now() / 1000);
		for (let i = 0; i < 50; i++) {
			const secret = randomSecret();
			const id = `msg_${randomBytes(8).toString('hex')}`;
			const body = randomBody(i);
			const headers = {
				'webhook-id': id,
				'webhook-timestamp': String(now),
				'webhook-signature': sign(secret, id, now, body),
			};
			expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
		}
	});

	it('agrees with the official library on plain (raw) secrets', () => {
		const now = Math.floor(Date.now() / 1000);
		const secret = PLAIN_SECRET;
		const body = randomBody(1);
		const official = new Webhook(secret, { format: 'raw' });
		expect(sign(secret, 'msg_1', now, body)).toBe(
			official.sign('msg_1', new Date(now * 1000), body),
		);
		expect(keyFromSecret(secret).toString('utf8')).toBe(secret);
	});

	it('agrees with the official library on the tolerance', () => {
		const now = 1_800_000_000;
		vi.useFakeTimers();
		vi.setSystemTime(now * 1000);
		const secret = randomSecret();
		const body = randomBody(2);
		for (const offset of [-301, -300, 0, 300, 301]) {
			const ts = now + offset;
			const signature = sign(secret, 'msg_t', ts, body);
			const ours = verify({
				secret,
				id: 'msg_t',
				timestamp: String(ts),
				signature,
				body,
				now,
			}).valid;
			let theirs = true;
			try {
				new Webhook(secret).verify(body, {
					'webhook-id': 'msg_t',
					'webhook-timestamp': String(ts),
					'webhook-signature': signature,
				});
			} catch (error) {
				expect(error).toBeInstanceOf(WebhookVerificationError);
				theirs = false;
			}
			expect({ offset, valid: ours }).toEqual({ offset, valid: theirs });
		}
	});
});

describe('verify edge cases', () => {
	const secret = VECTOR.secret;
	const base = {
		secret,
		id: VECTOR.id,
		timestamp: String(VECTOR.timestamp),
		signature: VECTOR.signature,
		body: VECTOR.body,
		now: VECTOR.timestamp,
	};

	it('refuses a non-numeric timestamp', () => {
		expect(verify({ ...base, timestamp: '1649367553.5' }).valid).toBe(false);
		expect(verify({ ...base, timestamp: 'soon' }).valid).toBe(false);
	});

	it('refuses a header with no v1 entry', () => {
		expect(verify({ ...base, signature: 'v2,abc' })).toEqual({
			valid: false,
			reason: 'no v1 signature in webhook-signature',
		});
	});

	it('refuses a truncated signature without throwing', () => {
		expect(verify({ ...base, signature: VECTOR.signature.slice(0, 20) }).valid).toBe(false);
	});

	it('refuses empty headers', () => {
		expect(verify({ ...base, id: '' }).valid).toBe(false);
		expect(verify({ ...base, signature: [] }).valid).toBe(false);
	});

	it('decodes whsec_ secrets and takes other secrets as UTF-8', () => {
		expect(keyFromSecret('whsec_AAEC').equals(Buffer.from([0, 1, 2]))).toBe(true);
		expect(keyFromSecret('héllo').equals(Buffer.from('héllo', 'utf8'))).toBe(true);
	});
});
