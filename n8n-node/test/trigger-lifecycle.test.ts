import { describe, expect, it } from 'vitest';

import { WaBridgeTrigger } from '../nodes/WaBridgeTrigger/WaBridgeTrigger.node';
import { eventOptions } from '../nodes/WaBridge/shared/events';
import events from './fixtures/events.json';
import eventsWithSources from './fixtures/events-sources.json';
import problemInternal from './fixtures/problem-internal.json';
import problemNotFound from './fixtures/problem-not-found.json';
import problemReserved from './fixtures/problem-reserved-event.json';
import problemUnauthorized from './fixtures/problem-unauthorized.json';
import problemUnknown from './fixtures/problem-unknown-event.json';
import webhookCreated from './fixtures/webhook-created.json';
import webhook from './fixtures/webhook.json';
import { FakeBridge, hookContext, loadOptionsContext, omit, WEBHOOK_URL } from './helpers';

const trigger = new WaBridgeTrigger();
const hooks = trigger.webhookMethods.default;
const SESSION_EVENTS = [
	'session.qr',
	'session.authenticated',
	'session.disconnected',
	'session.status',
];
const HOOK_PATH = `/v1/webhooks/${webhook.id}`;

function storedRegistration() {
	return {
		webhookId: webhook.id,
		secret: webhookCreated.secret,
		webhookUrl: WEBHOOK_URL,
		events: SESSION_EVENTS,
		sessionId: '',
	};
}

describe('create', () => {
	it('registers the webhook URL and events and keeps the id and secret', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks', status: 201, body: webhookCreated },
		]);
		const { ctx, staticData } = hookContext({ bridge, params: { events: SESSION_EVENTS } });

		await expect(hooks.create.call(ctx)).resolves.toBe(true);

		expect(bridge.calls).toHaveLength(1);
		const call = bridge.calls[0];
		expect(call.credentialsType).toBe('waBridgeApi');
		expect(call.body).toEqual({
			url: WEBHOOK_URL,
			events: SESSION_EVENTS,
			description: 'n8n workflow wf-42',
		});
		expect(staticData.webhookId).toBe(webhookCreated.id);
		expect(staticData.secret).toBe(webhookCreated.secret);
	});

	it('sends the session scope when one is set', async () => {
		const bridge = new FakeBridge([
			{
				method: 'POST',
				path: '/v1/webhooks',
				status: 201,
				body: { ...webhookCreated, sessionId: 'sales' },
			},
		]);
		const { ctx } = hookContext({
			bridge,
			params: { events: ['session.qr'], sessionId: ' sales ' },
		});
		await hooks.create.call(ctx);
		expect(bridge.calls[0].body).toMatchObject({ sessionId: 'sales', events: ['session.qr'] });
	});

	it('keeps names picked next to a wildcard (opt-in events are only delivered by name)', async () => {
		const bridge = new FakeBridge([
			{
				method: 'POST',
				path: '/v1/webhooks',
				status: 201,
				body: { ...webhookCreated, events: ['*', 'message.receipt'] },
			},
		]);
		const { ctx } = hookContext({
			bridge,
			params: { events: ['*', 'message.receipt', ' * ', 'message.*'] },
		});
		await hooks.create.call(ctx);
		expect((bridge.calls[0].body as { events: string[] }).events).toEqual([
			'*',
			'message.receipt',
			'message.*',
		]);
	});

	it('surfaces the bridge explanation when it refuses a reserved event', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks', status: 400, body: problemReserved },
		]);
		const { ctx, staticData } = hookContext({ bridge, params: { events: ['group.join'] } });

		const error = await hooks.create.call(ctx).then(
			() => undefined,
			(e: Error) => e,
		);
		expect(error).toBeDefined();
		expect(error?.constructor.name).toBe('NodeApiError');
		expect(error?.message).toContain('group.join is reserved');
		expect(error?.message).toContain('would never fire');
		expect(error?.message).not.toMatch(/^400|Bad request/i);
		expect(staticData.webhookId).toBeUndefined();
	});

	it('passes on the suggestion for an unknown event name', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks', status: 400, body: problemUnknown },
		]);
		const { ctx } = hookContext({
			bridge,
			params: { events: ['session.qr', 'session.connected'] },
		});
		await expect(hooks.create.call(ctx)).rejects.toThrow(/session\.authenticated/);
	});

	it('says the API key was refused on 401', async () => {
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks', status: 401, body: problemUnauthorized },
		]);
		const { ctx } = hookContext({ bridge, params: { events: ['session.qr'] } });
		await expect(hooks.create.call(ctx)).rejects.toThrow(/API key/);
	});

	it('refuses to register with no events', async () => {
		const { ctx, bridge } = hookContext({ params: { events: [] } });
		await expect(hooks.create.call(ctx)).rejects.toThrow(/at least one event/);
		expect(bridge.calls).toHaveLength(0);
	});

	it('fails, and removes the registration, when the answer lacks the secret', async () => {
		const withoutSecret = omit(webhookCreated, 'secret');
		const bridge = new FakeBridge([
			{ method: 'POST', path: '/v1/webhooks', status: 201, body: withoutSecret },
			{ method: 'DELETE', path: HOOK_PATH, status: 204 },
		]);
		const { ctx, staticData } = hookContext({ bridge, params: { events: ['session.qr'] } });
		await expect(hooks.create.call(ctx)).rejects.toThrow(/secret/);
		expect(bridge.calls.map((c) => c.method)).toEqual(['POST', 'DELETE']);
		expect(staticData.webhookId).toBeUndefined();
	});
});

describe('checkExists', () => {
	it('is false without a stored registration, and asks nothing', async () => {
		const { ctx, bridge } = hookContext({ params: { events: SESSION_EVENTS } });
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls).toHaveLength(0);
	});

	it('is true when the stored registration still exists with the same URL and events', async () => {
		const bridge = new FakeBridge([{ method: 'GET', path: HOOK_PATH, status: 200, body: webhook }]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(true);
		expect(bridge.calls.map((c) => `${c.method} ${c.path}`)).toEqual([`GET ${HOOK_PATH}`]);
		expect(staticData.secret).toBe(webhookCreated.secret);
	});

	it('ignores the order of events', async () => {
		const bridge = new FakeBridge([{ method: 'GET', path: HOOK_PATH, status: 200, body: webhook }]);
		const { ctx } = hookContext({
			bridge,
			params: { events: [...SESSION_EVENTS].reverse() },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(true);
	});

	it('is false and forgets the registration when the bridge answers 404', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 404, body: problemNotFound },
		]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls.map((c) => c.method)).toEqual(['GET']);
		expect(staticData.webhookId).toBeUndefined();
		expect(staticData.secret).toBeUndefined();
	});

	it('deletes a registration with another URL and returns false', async () => {
		const bridge = new FakeBridge([
			{
				method: 'GET',
				path: HOOK_PATH,
				status: 200,
				body: { ...webhook, url: 'http://127.0.0.1:5678/webhook/old-id/webhook' },
			},
			{ method: 'DELETE', path: HOOK_PATH, status: 204 },
		]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls.map((c) => `${c.method} ${c.path}`)).toEqual([
			`GET ${HOOK_PATH}`,
			`DELETE ${HOOK_PATH}`,
		]);
		expect(staticData.webhookId).toBeUndefined();
		expect(staticData.secret).toBeUndefined();
	});

	it('deletes a registration with other events and returns false', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 200, body: webhook },
			{ method: 'DELETE', path: HOOK_PATH, status: 204 },
		]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: ['session.qr', 'message.received'] },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls.map((c) => c.method)).toEqual(['GET', 'DELETE']);
		expect(staticData.webhookId).toBeUndefined();
	});

	it('deletes a registration for another session and returns false', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 200, body: webhook },
			{ method: 'DELETE', path: HOOK_PATH, status: 204 },
		]);
		const { ctx } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS, sessionId: 'sales' },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls.map((c) => c.method)).toEqual(['GET', 'DELETE']);
	});

	it('re-registers when the secret was lost', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 200, body: webhook },
			{ method: 'DELETE', path: HOOK_PATH, status: 204 },
		]);
		const withoutSecret = omit(storedRegistration(), 'secret');
		const { ctx } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: withoutSecret,
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(bridge.calls.map((c) => c.method)).toEqual(['GET', 'DELETE']);
	});

	it('tolerates the stale registration vanishing before the delete', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 200, body: { ...webhook, url: 'http://x/y' } },
			{ method: 'DELETE', path: HOOK_PATH, status: 404, body: problemNotFound },
		]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).resolves.toBe(false);
		expect(staticData.webhookId).toBeUndefined();
	});

	it('reports a bridge failure instead of guessing', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: HOOK_PATH, status: 500, body: problemInternal },
		]);
		const { ctx, staticData } = hookContext({
			bridge,
			params: { events: SESSION_EVENTS },
			staticData: storedRegistration(),
		});
		await expect(hooks.checkExists.call(ctx)).rejects.toThrow(/could not complete the request/);
		expect(staticData.webhookId).toBe(webhook.id);
	});
});

describe('delete', () => {
	it('deletes the stored registration (204) and forgets it', async () => {
		const bridge = new FakeBridge([{ method: 'DELETE', path: HOOK_PATH, status: 204 }]);
		const { ctx, staticData } = hookContext({ bridge, staticData: storedRegistration() });
		await expect(hooks.delete.call(ctx)).resolves.toBe(true);
		expect(bridge.calls.map((c) => `${c.method} ${c.path}`)).toEqual([`DELETE ${HOOK_PATH}`]);
		expect(staticData.webhookId).toBeUndefined();
		expect(staticData.secret).toBeUndefined();
	});

	it('counts 404 as deleted', async () => {
		const bridge = new FakeBridge([
			{ method: 'DELETE', path: HOOK_PATH, status: 404, body: problemNotFound },
		]);
		const { ctx, staticData } = hookContext({ bridge, staticData: storedRegistration() });
		await expect(hooks.delete.call(ctx)).resolves.toBe(true);
		expect(staticData.webhookId).toBeUndefined();
	});

	it('asks nothing when no registration is stored', async () => {
		const { ctx, bridge } = hookContext({});
		await expect(hooks.delete.call(ctx)).resolves.toBe(true);
		expect(bridge.calls).toHaveLength(0);
	});

	it('keeps the registration and reports a failure of the bridge', async () => {
		const bridge = new FakeBridge([
			{ method: 'DELETE', path: HOOK_PATH, status: 500, body: problemInternal },
		]);
		const { ctx, staticData } = hookContext({ bridge, staticData: storedRegistration() });
		await expect(hooks.delete.call(ctx)).rejects.toThrow(/could not complete the request/);
		expect(staticData.webhookId).toBe(webhook.id);
	});

	it('keeps the deduplication memory across registrations', async () => {
		const bridge = new FakeBridge([{ method: 'DELETE', path: HOOK_PATH, status: 204 }]);
		const { ctx, staticData } = hookContext({
			bridge,
			staticData: { ...storedRegistration(), seenIdempotencyKeys: ['k1'] },
		});
		await hooks.delete.call(ctx);
		expect(staticData.seenIdempotencyKeys).toEqual(['k1']);
	});
});

describe('loadOptions getEvents', () => {
	it('on an older bridge (no family, optIn or sources): groups by the name, never offers a reserved event', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 200, body: events },
		]);
		const { ctx } = loadOptionsContext({ bridge });

		const options = await trigger.methods.loadOptions.getEvents.call(ctx);

		expect(options[0]).toMatchObject({ name: 'All Available Events', value: '*' });
		expect(options.map((o) => [o.value, o.name])).toEqual([
			['*', 'All Available Events'],
			['message.*', 'Message: All Events'],
			['message.received', 'Message: Received'],
			['message.sent', 'Message: Sent'],
			['message.ack', 'Message: Ack'],
			['session.*', 'Session: All Events'],
			['session.qr', 'Session: QR'],
			['session.authenticated', 'Session: Authenticated'],
			['session.disconnected', 'Session: Disconnected'],
			['session.status', 'Session: Status'],
		]);
		expect(options.find((o) => o.value === 'session.qr')?.description).toBe(
			'Session event `session.qr`. A new QR code is ready to be scanned.',
		);
	});

	it('on a bridge with sources: families, opt-in noted, reserved left out', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 200, body: eventsWithSources },
		]);
		const { ctx } = loadOptionsContext({ bridge });

		const options = await trigger.methods.loadOptions.getEvents.call(ctx);
		const values = options.map((o) => o.value);

		// 24 events, 2 reserved here: 22 offered, plus * and one wildcard per family with events.
		expect(values).toHaveLength(1 + 22 + 5);
		expect(values).not.toContain('presence.update');
		expect(values).not.toContain('group.join_request');
		expect(values).not.toContain('presence.*'); // its only event is reserved
		expect(values).toContain('group.*');
		expect(values.slice(0, 3)).toEqual(['*', 'message.*', 'message.received']);
		expect(options.find((o) => o.value === 'group.join')?.name).toBe('Group: Join');
		expect(options.find((o) => o.value === 'session.reconnect_loop')?.name).toBe(
			'Session: Reconnect Loop',
		);
		expect(options.find((o) => o.value === 'call.missed')?.name).toBe('Call: Missed');
		expect(options.find((o) => o.value === 'status.received')?.name).toBe('Status: Received');

		// message.receipt: offered by name, and said to be opt-in everywhere it matters.
		const receipt = options.find((o) => o.value === 'message.receipt');
		expect(receipt?.name).toBe('Message: Receipt');
		expect(receipt?.description).toMatch(/^Message event `message.receipt`\./);
		expect(receipt?.description).toMatch(/Opt-in: not included in "All Available Events"/);
		expect(options[0].description).toMatch(/except the opt-in ones \(message.receipt\)/);
		expect(options.find((o) => o.value === 'message.*')?.description).toMatch(
			/except the opt-in ones \(message.receipt\)/,
		);
		expect(options.find((o) => o.value === 'session.*')?.description).not.toMatch(/opt-in/);

		// Who emits it, with the native names.
		expect(options.find((o) => o.value === 'message.ack')?.description).toMatch(
			/Emitted by OpenWA \(message.ack, message.status\)\.$/,
		);
	});

	it('treats an event with a reservedReason as reserved whatever its status says', () => {
		const offered = eventOptions([
			{ name: 'group.join', status: 'available', reservedReason: 'no engine emits it' },
			{ name: 'group.leave', status: 'deprecated' },
			{ name: 'session.qr' },
		]).map((o) => o.value);
		expect(offered).toEqual(['*', 'session.*', 'session.qr']);
	});

	it('explains a bridge that cannot be listed', async () => {
		const bridge = new FakeBridge([
			{ method: 'GET', path: '/v1/events', status: 500, body: problemInternal },
		]);
		const { ctx } = loadOptionsContext({ bridge });
		await expect(trigger.methods.loadOptions.getEvents.call(ctx)).rejects.toThrow(
			/list its events/,
		);
	});
});

describe('description', () => {
	it('follows the trigger conventions', () => {
		const d = trigger.description;
		expect(d.name).toBe('waBridgeTrigger');
		expect(d.displayName).toBe('wabridge Trigger');
		expect(d.inputs).toEqual([]);
		expect(d.webhooks).toEqual([
			{ name: 'default', httpMethod: 'POST', responseMode: 'onReceived', path: 'webhook' },
		]);
		const dedupe = d.properties
			.find((p) => p.name === 'options')
			?.options?.find((o) => 'name' in o && o.name === 'dedupe');
		expect(dedupe).toMatchObject({ type: 'boolean', default: true });
	});
});
