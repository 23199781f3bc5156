import { describe, expect, it } from 'vitest';

import { WaBridgeApi } from '../credentials/WaBridgeApi.credentials';
import { WaBridge } from '../nodes/WaBridge/WaBridge.node';
import { describeRefusal } from '../nodes/WaBridge/shared/transport';
import events from './fixtures/events.json';
import problemNotFound from './fixtures/problem-not-found.json';
import problemReserved from './fixtures/problem-reserved-event.json';
import problemTwo from './fixtures/problem-two-errors.json';
import problemUnauthorized from './fixtures/problem-unauthorized.json';
import problemUnknown from './fixtures/problem-unknown-event.json';
import testDelivery from './fixtures/test-delivery.json';
import validateInvalid from './fixtures/validate-invalid.json';
import validateValid from './fixtures/validate-valid.json';
import { API_KEY, executeContext, FakeBridge } from './helpers';

const node = new WaBridge();

describe('Event: Get Many', () => {
	it('lists the available events, one item each', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 200, body: events },
		]);
		const { ctx } = executeContext({ bridge, params: { resource: 'event', operation: 'getAll' } });
		const [items] = await node.execute.call(ctx);
		expect(items.map((i) => i.json.name)).toEqual([
			'message.received',
			'message.sent',
			'message.ack',
			'session.qr',
			'session.authenticated',
			'session.disconnected',
			'session.status',
		]);
		expect(items[0]).toMatchObject({ pairedItem: { item: 0 }, json: { status: 'available' } });
	});

	it('includes reserved events on request', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 200, body: events },
		]);
		const { ctx } = executeContext({
			bridge,
			params: { resource: 'event', operation: 'getAll', includeReserved: true },
		});
		const [items] = await node.execute.call(ctx);
		expect(items).toHaveLength(events.events.length);
		expect(items.filter((i) => i.json.status === 'reserved').map((i) => i.json.name)).toEqual([
			'group.join',
			'group.leave',
			'group.update',
		]);
	});
});

describe('Webhook: Validate', () => {
	const params = {
		resource: 'webhook',
		operation: 'validate',
		url: 'https://n8n.example.com/webhook/abc/webhook',
		events: 'session.qr, session.status,,',
		sessionId: 'default',
	};

	it('posts the registration and returns the bridge answer', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/validate', status: 200, body: validateValid },
		]);
		const { ctx } = executeContext({ bridge, params });
		const [items] = await node.execute.call(ctx);
		expect(bridge.calls[0].body).toEqual({
			url: 'https://n8n.example.com/webhook/abc/webhook',
			events: ['session.qr', 'session.status'],
			sessionId: 'default',
		});
		expect(items).toEqual([{ json: validateValid, pairedItem: { item: 0 } }]);
	});

	it('returns an invalid verdict as data, not as an error', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/validate', status: 200, body: validateInvalid },
		]);
		const { ctx } = executeContext({
			bridge,
			params: { ...params, events: 'session.connected', sessionId: '' },
		});
		const [items] = await node.execute.call(ctx);
		expect(items[0].json).toEqual(validateInvalid);
		expect(bridge.calls[0].body).not.toHaveProperty('sessionId');
	});

	it('turns a refusal into a readable error', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/validate', status: 400, body: problemReserved },
		]);
		const { ctx } = executeContext({ bridge, params: { ...params, events: 'group.join' } });
		await expect(node.execute.call(ctx)).rejects.toThrow(/group\.join is reserved/);
	});

	it('reports the error as an item when "continue on fail" is on', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/validate', status: 401, body: problemUnauthorized },
		]);
		const { ctx } = executeContext({ bridge, params, continueOnFail: true });
		const [items] = await node.execute.call(ctx);
		expect(items).toHaveLength(1);
		expect(String(items[0].json.error)).toMatch(/API key/);
		expect(items[0].pairedItem).toEqual({ item: 0 });
	});
});

describe('Webhook: Send Test', () => {
	it('asks for a test delivery of the given event', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/wh_1/test', status: 202, body: testDelivery },
		]);
		const { ctx } = executeContext({
			bridge,
			params: {
				resource: 'webhook',
				operation: 'sendTest',
				webhookId: 'wh_1',
				event: 'session.status',
			},
		});
		const [items] = await node.execute.call(ctx);
		expect(bridge.calls[0].body).toEqual({ event: 'session.status' });
		expect(items[0].json).toEqual(testDelivery);
	});

	it('lets the bridge pick the event when none is given', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/wh_1/test', status: 202, body: testDelivery },
		]);
		const { ctx } = executeContext({
			bridge,
			params: { resource: 'webhook', operation: 'sendTest', webhookId: 'wh_1', event: '' },
		});
		await node.execute.call(ctx);
		expect(bridge.calls[0].body).toEqual({});
	});

	it('explains an unknown registration', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/wh_gone/test', status: 404, body: problemNotFound },
		]);
		const { ctx } = executeContext({
			bridge,
			params: { resource: 'webhook', operation: 'sendTest', webhookId: 'wh_gone' },
		});
		await expect(node.execute.call(ctx)).rejects.toThrow(/No webhook with id/);
	});

	it('processes every input item', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/a/test', status: 202, body: testDelivery },
			{ method: 'POST', path: '/v1/webhooks/b/test', status: 202, body: testDelivery },
		]);
		const { ctx } = executeContext({
			bridge,
			items: [{ json: {} }, { json: {} }],
			params: { resource: 'webhook', operation: 'sendTest', event: '' },
		});
		// Per-item parameters: a and b.
		let call = 0;
		const perItem = ctx.getNodeParameter.bind(ctx);
		(ctx as unknown as { getNodeParameter: unknown }).getNodeParameter = (
			name: string,
			index: number,
			fallback?: unknown,
		) => (name === 'webhookId' ? ['a', 'b'][call++] : perItem(name, index, fallback));
		const [items] = await node.execute.call(ctx);
		expect(items.map((i) => i.pairedItem)).toEqual([{ item: 0 }, { item: 1 }]);
		expect(bridge.calls.map((c) => c.path)).toEqual(['/v1/webhooks/a/test', '/v1/webhooks/b/test']);
	});
});

describe('requests', () => {
	it('go to the base URL without a doubled slash, through the credentials', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 200, body: events },
		]);
		const { ctx } = executeContext({ bridge, params: { resource: 'event', operation: 'getAll' } });
		await node.execute.call(ctx);
		expect(bridge.calls[0].options.url).toBe('http://127.0.0.1:8787/v1/events');
		expect(bridge.calls[0].credentialsType).toBe('waBridgeApi');
	});
});

describe('credentials', () => {
	const credentials = new WaBridgeApi();

	it('sends the key as X-API-Key', () => {
		expect(credentials.authenticate).toEqual({
			type: 'generic',
			properties: { headers: { 'X-API-Key': '={{$credentials.apiKey}}' } },
		});
		expect(API_KEY).toBeTruthy();
	});

	it('tests with a one-item listing of the registrations', () => {
		expect(credentials.test.request).toMatchObject({ url: '/v1/webhooks', qs: { limit: 1 } });
	});

	it('hides the API key', () => {
		const apiKey = credentials.properties.find((p) => p.name === 'apiKey');
		expect(apiKey?.typeOptions?.password).toBe(true);
	});
});

describe('describeRefusal', () => {
	it('leads with the bridge explanation of a reserved event', () => {
		expect(describeRefusal(400, problemReserved, 'register the webhook')).toBe(
			'The bridge refused to register the webhook: The registration has 1 problem. group.join is reserved: no engine emits it yet, so a registration for it would never fire. See /v1/events.',
		);
	});

	it('names the suggestion once', () => {
		const text = describeRefusal(400, problemUnknown, 'register the webhook');
		expect(text).toContain("Use 'session.authenticated'");
		expect(text.split('session.authenticated')).toHaveLength(2);
	});

	it('adds a suggestion the message does not name', () => {
		const problem = {
			...problemUnknown,
			errors: [{ ...problemUnknown.errors[0], message: 'unknown event' }],
		};
		expect(describeRefusal(400, problem, 'x')).toContain("Did you mean 'session.authenticated'?");
	});

	it('appends a suggestion that is a sentence as a sentence', () => {
		const problem = {
			...problemReserved,
			errors: [
				{
					...problemReserved.errors[0],
					message: 'group.join is reserved on this bridge: no configured engine emits it',
					suggestion: 'OpenWA 0.24.0 emits it: add openwa to WABRIDGE_SOURCES.',
				},
			],
		};
		expect(describeRefusal(400, problem, 'register the webhook')).toBe(
			'The bridge refused to register the webhook: The registration has 1 problem. group.join is reserved on this bridge: no configured engine emits it. OpenWA 0.24.0 emits it: add openwa to WABRIDGE_SOURCES.',
		);
	});

	it('carries every message and pointer of a problem with several errors', () => {
		const problem = {
			type: 'urn:wabridge:problem:invalid-request',
			title: 'The request is invalid',
			status: 400,
			detail: 'The registration has 2 problems.',
			errors: [
				{ pointer: '/events/0', code: 'reserved_event', message: 'presence.update is reserved on this bridge' },
				{ pointer: '/events/1', code: 'unknown_event', message: "'call.ended' is not an event name", suggestion: 'call.missed' },
			],
		};
		const text = describeRefusal(400, problem, 'register the webhook');
		expect(text).toContain('presence.update is reserved on this bridge.');
		expect(text).toContain("'call.ended' is not an event name Did you mean 'call.missed'?");
	});

	it('lists every error', () => {
		const text = describeRefusal(400, problemTwo, 'register the webhook');
		expect(text).toContain('WABRIDGE_ALLOW_TARGETS');
		expect(text).toContain("did you mean 'session.qr'?");
	});

	it('falls back to the status and text of a non-problem body', () => {
		expect(describeRefusal(502, 'upstream down', 'list its events')).toBe(
			'The bridge answered 502 while trying to list its events: upstream down',
		);
	});
});

describe('refusalError', () => {
	it('puts the explanation in the message and the pointers in the description', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks/validate', status: 400, body: problemReserved },
		]);
		const { ctx } = executeContext({
			bridge,
			params: {
				resource: 'webhook',
				operation: 'validate',
				url: 'http://x/y',
				events: 'group.join',
			},
		});
		const error = (await node.execute.call(ctx).then(
			() => undefined,
			(e: unknown) => e,
		)) as { message: string; description?: string; httpCode?: string };
		expect(error.message).toContain('would never fire');
		expect(error.description).toBe(
			'The registration has 1 problem.\ngroup.join is reserved: no engine emits it yet, so a registration for it would never fire. See /v1/events. (at /events/0)',
		);
		expect(error.httpCode).toBe('400');
	});

	it('does not repeat a detail that is the only error message', () => {
		const problem = {
			...problemReserved,
			detail: problemReserved.errors[0].message,
		};
		const text = describeRefusal(400, problem, 'register the webhook');
		expect(text.split('would never fire')).toHaveLength(2);
	});
});
