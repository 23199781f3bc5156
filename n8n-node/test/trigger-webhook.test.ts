import { createHmac } from 'node:crypto';
import type { IDataObject } from 'n8n-workflow';
import { Webhook } from 'standardwebhooks';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import {
	DEDUPE_CAPACITY,
	DEDUPE_FIELD,
	DEDUPE_WINDOW_HOURS,
} from '../nodes/WaBridge/shared/dedupe';
import { WaBridgeTrigger } from '../nodes/WaBridgeTrigger/WaBridgeTrigger.node';
import envelope from './fixtures/envelope-session-disconnected.json';
import webhookCreated from './fixtures/webhook-created.json';
import { omit, webhookContext } from './helpers';

const trigger = new WaBridgeTrigger();
const SECRET = webhookCreated.secret;
const NOW = 1_795_000_000; // a fixed "now", in Unix seconds
const BODY = JSON.stringify(envelope);

/** Signs like the bridge: Standard Webhooks headers plus the OpenWA-compatible extras. */
function bridgeHeaders(
	body: string,
	opts: { id?: string; timestamp?: number; secret?: string } = {},
): Record<string, string> {
	const id = opts.id ?? envelope.idempotencyKey;
	const timestamp = opts.timestamp ?? NOW;
	const secret = opts.secret ?? SECRET;
	const signer = secret.startsWith('whsec_')
		? new Webhook(secret)
		: new Webhook(secret, { format: 'raw' });
	return {
		'content-type': 'application/json',
		'webhook-id': id,
		'webhook-timestamp': String(timestamp),
		'webhook-signature': signer.sign(id, new Date(timestamp * 1000), body),
		'x-openwa-event': envelope.event,
		'x-openwa-idempotency-key': id,
		'x-openwa-delivery-id': envelope.deliveryId,
		'x-openwa-retry-count': '0',
		'x-openwa-signature': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`,
	};
}

function deliver(opts: {
	headers: Record<string, string | string[]>;
	rawBody?: string;
	staticData?: IDataObject;
	dedupe?: boolean;
}) {
	const staticData: IDataObject = opts.staticData ?? {
		webhookId: webhookCreated.id,
		secret: SECRET,
	};
	const params = opts.dedupe === undefined ? {} : { options: { dedupe: opts.dedupe } };
	return {
		...webhookContext({ headers: opts.headers, rawBody: opts.rawBody ?? BODY, staticData, params }),
		staticData,
	};
}

beforeEach(() => {
	vi.useFakeTimers();
	vi.setSystemTime(NOW * 1000);
});

afterEach(() => {
	vi.useRealTimers();
});

describe('webhook(): signature', () => {
	it('accepts a correctly signed delivery and emits the envelope', async () => {
		const { ctx, response } = deliver({ headers: bridgeHeaders(BODY) });
		const result = await trigger.webhook.call(ctx);
		expect(result.noWebhookResponse).toBeUndefined();
		expect(result.workflowData).toEqual([[{ json: envelope }]]);
		expect(response.ended).toBe(false);
	});

	it('refuses a tampered body with 401 and starts nothing', async () => {
		const headers = bridgeHeaders(BODY);
		const tampered = BODY.replace('LOGOUT', 'UNPAIRED');
		const { ctx, response } = deliver({ headers, rawBody: tampered });
		const result = await trigger.webhook.call(ctx);
		expect(result).toEqual({ noWebhookResponse: true });
		expect(result.workflowData).toBeUndefined();
		expect(response.statusCode).toBe(401);
		expect(response.ended).toBe(true);
		expect(JSON.parse(response.body ?? '{}').detail).toMatch(/no signature matches/);
	});

	it('refuses a delivery signed with another secret', async () => {
		const headers = bridgeHeaders(BODY, {
			secret: 'whsec_' + Buffer.alloc(24, 7).toString('base64'),
		});
		const { ctx, response } = deliver({ headers });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
	});

	it('refuses a stale timestamp (older than 5 minutes)', async () => {
		const headers = bridgeHeaders(BODY, { timestamp: NOW - 301 });
		const { ctx, response } = deliver({ headers });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
		expect(response.body).toMatch(/too old/);
	});

	it('accepts a timestamp just inside the tolerance', async () => {
		const headers = bridgeHeaders(BODY, { timestamp: NOW - 299 });
		const { ctx } = deliver({ headers });
		expect((await trigger.webhook.call(ctx)).workflowData).toBeDefined();
	});

	it('refuses a timestamp too far in the future', async () => {
		const headers = bridgeHeaders(BODY, { timestamp: NOW + 301 });
		const { ctx, response } = deliver({ headers });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
	});

	for (const missing of ['webhook-id', 'webhook-timestamp', 'webhook-signature']) {
		it(`refuses a delivery without ${missing}`, async () => {
			const headers = bridgeHeaders(BODY);
			delete headers[missing];
			const { ctx, response } = deliver({ headers });
			expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
			expect(response.statusCode).toBe(401);
			expect(response.body).toContain(missing);
		});
	}

	it('refuses an unsigned delivery (only the OpenWA headers)', async () => {
		const openwaOnly = omit(
			bridgeHeaders(BODY),
			'webhook-id',
			'webhook-timestamp',
			'webhook-signature',
		);
		const { ctx, response } = deliver({ headers: openwaOnly });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
	});

	it('accepts when one of several signatures matches (key rotation)', async () => {
		const headers = bridgeHeaders(BODY);
		const other = new Webhook('whsec_' + Buffer.alloc(32, 1).toString('base64'));
		const wrong = other.sign(envelope.idempotencyKey, new Date(NOW * 1000), BODY);
		headers['webhook-signature'] = `v2,abc ${wrong} ${headers['webhook-signature']} v1,bm90LWl0`;
		const { ctx } = deliver({ headers });
		expect((await trigger.webhook.call(ctx)).workflowData).toEqual([[{ json: envelope }]]);
	});

	it('refuses when none of several signatures matches', async () => {
		const headers = bridgeHeaders(BODY);
		headers['webhook-signature'] = 'v1,bm90LWl0 v1a,xyz';
		const { ctx, response } = deliver({ headers });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
	});

	it('verifies with a plain (non-whsec) secret', async () => {
		const plain = 'a-plain-shared-secret-of-some-length';
		const headers = bridgeHeaders(BODY, { secret: plain });
		const { ctx } = deliver({
			headers,
			staticData: { webhookId: webhookCreated.id, secret: plain },
		});
		expect((await trigger.webhook.call(ctx)).workflowData).toEqual([[{ json: envelope }]]);
	});

	it('refuses everything while it holds no secret', async () => {
		const { ctx, response } = deliver({ headers: bridgeHeaders(BODY), staticData: {} });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(401);
	});

	it('verifies the raw bytes, not a re-serialisation of the parsed body', async () => {
		// Same JSON value, different bytes (spacing): signed as sent, so it must verify as sent.
		const spaced = JSON.stringify(envelope, null, 2);
		const { ctx } = deliver({ headers: bridgeHeaders(spaced), rawBody: spaced });
		expect((await trigger.webhook.call(ctx)).workflowData).toEqual([[{ json: envelope }]]);
	});

	it('falls back to the parsed body when n8n kept no raw body', async () => {
		const { ctx } = webhookContext({
			headers: bridgeHeaders(BODY),
			body: envelope,
			staticData: { webhookId: webhookCreated.id, secret: SECRET },
		});
		expect((await trigger.webhook.call(ctx)).workflowData).toEqual([[{ json: envelope }]]);
	});

	it('answers 400 to a signed body that is not a JSON object', async () => {
		const body = '["not", "an", "envelope"]';
		const { ctx, response } = deliver({ headers: bridgeHeaders(body), rawBody: body });
		expect(await trigger.webhook.call(ctx)).toEqual({ noWebhookResponse: true });
		expect(response.statusCode).toBe(400);
	});

	it('accepts header values given as arrays', async () => {
		const headers: Record<string, string | string[]> = bridgeHeaders(BODY);
		headers['webhook-signature'] = [headers['webhook-signature'] as string];
		const { ctx } = deliver({ headers });
		expect((await trigger.webhook.call(ctx)).workflowData).toBeDefined();
	});
});

describe('webhook(): deduplication', () => {
	it('drops a second delivery with the same idempotency key', async () => {
		const staticData = { webhookId: webhookCreated.id, secret: SECRET };
		const first = deliver({ headers: bridgeHeaders(BODY), staticData });
		expect((await trigger.webhook.call(first.ctx)).workflowData).toBeDefined();

		// The retry: same webhook-id, new attempt timestamp.
		const retry = deliver({ headers: bridgeHeaders(BODY, { timestamp: NOW + 5 }), staticData });
		const result = await trigger.webhook.call(retry.ctx);
		expect(result.workflowData).toBeUndefined();
		expect(result.noWebhookResponse).toBeUndefined();
		expect(retry.response.statusCode).toBeUndefined(); // n8n answers 200 itself
	});

	it('keeps a delivery with a different key', async () => {
		const staticData = { webhookId: webhookCreated.id, secret: SECRET };
		await trigger.webhook.call(deliver({ headers: bridgeHeaders(BODY), staticData }).ctx);

		const other = { ...envelope, idempotencyKey: envelope.idempotencyKey.replace('8f14', '0b7a') };
		const body = JSON.stringify(other);
		const second = deliver({
			headers: bridgeHeaders(body, { id: other.idempotencyKey }),
			rawBody: body,
			staticData,
		});
		expect((await trigger.webhook.call(second.ctx)).workflowData).toEqual([[{ json: other }]]);
	});

	it('emits duplicates when deduplication is off', async () => {
		const staticData = { webhookId: webhookCreated.id, secret: SECRET };
		for (let i = 0; i < 2; i++) {
			const { ctx } = deliver({ headers: bridgeHeaders(BODY), staticData, dedupe: false });
			expect((await trigger.webhook.call(ctx)).workflowData).toBeDefined();
		}
		expect(staticData).not.toHaveProperty(DEDUPE_FIELD);
	});

	it('does not remember keys of refused deliveries', async () => {
		const staticData = { webhookId: webhookCreated.id, secret: SECRET };
		const headers = bridgeHeaders(BODY);
		await trigger.webhook.call(deliver({ headers, rawBody: BODY + ' ', staticData }).ctx);
		const { ctx } = deliver({ headers, staticData });
		expect((await trigger.webhook.call(ctx)).workflowData).toBeDefined();
	});

	it('honours the window and capacity options', async () => {
		const staticData: IDataObject = { webhookId: webhookCreated.id, secret: SECRET };
		const send = async (key: string, at: number) => {
			vi.setSystemTime(at * 1000);
			const body = JSON.stringify({ ...envelope, idempotencyKey: key });
			const { ctx } = webhookContext({
				headers: bridgeHeaders(body, { id: key, timestamp: at }),
				rawBody: body,
				staticData,
				params: { options: { dedupe: true, dedupeWindowHours: 1, dedupeCapacity: 2 } },
			});
			return (await trigger.webhook.call(ctx)).workflowData !== undefined;
		};
		expect(await send('a', NOW)).toBe(true);
		expect(await send('a', NOW + 3599)).toBe(false); // within the hour: a repeat
		expect(await send('a', NOW + 3600)).toBe(true); // the hour is over: runs again
		expect(await send('b', NOW + 3601)).toBe(true);
		expect(await send('c', NOW + 3602)).toBe(true); // capacity 2: 'a' is forgotten
		expect(await send('a', NOW + 3603)).toBe(true);
		expect((staticData[DEDUPE_FIELD] as { keys: string[] }).keys).toEqual(['c', 'a']);
	});

	it('uses the default limits without options', async () => {
		const staticData: IDataObject = { webhookId: webhookCreated.id, secret: SECRET };
		await trigger.webhook.call(deliver({ headers: bridgeHeaders(BODY), staticData }).ctx);
		const later = NOW + DEDUPE_WINDOW_HOURS * 3600 - 1;
		vi.setSystemTime(later * 1000);
		const retry = deliver({ headers: bridgeHeaders(BODY, { timestamp: later }), staticData });
		expect((await trigger.webhook.call(retry.ctx)).workflowData).toBeUndefined();
		expect((staticData[DEDUPE_FIELD] as { keys: string[] }).keys).toHaveLength(1);
		expect(DEDUPE_CAPACITY).toBeGreaterThanOrEqual(10_000);
	});
});
