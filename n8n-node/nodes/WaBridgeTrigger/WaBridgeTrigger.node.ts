import type {
	IDataObject,
	IHookFunctions,
	ILoadOptionsFunctions,
	INodePropertyOptions,
	INodeType,
	INodeTypeDescription,
	IWebhookFunctions,
	IWebhookResponseData,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError, NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import {
	DEDUPE_CAPACITY,
	DEDUPE_MAX_CAPACITY,
	DEDUPE_WINDOW_HOURS,
	limitsFromOptions,
	seenBefore,
} from '../WaBridge/shared/dedupe';
import {
	eventOptions,
	eventsToRegister,
	fetchCatalog,
	sameEvents,
} from '../WaBridge/shared/events';
import { verify } from '../WaBridge/shared/signature';
import { bridgeRequest, refusalError } from '../WaBridge/shared/transport';

/** Fields of the node's static data that describe the registration on the bridge. */
const REGISTRATION_FIELDS = ['webhookId', 'secret', 'webhookUrl', 'events', 'sessionId'];

function clearRegistration(staticData: IDataObject): void {
	for (const field of REGISTRATION_FIELDS) delete staticData[field];
}

function header(headers: IDataObject, name: string): string | string[] | undefined {
	const value = headers[name];
	if (typeof value === 'string' || Array.isArray(value)) return value as string | string[];
	return undefined;
}

/** Answers the delivery itself (401 or 400, a short problem document); nothing is executed. */
function refuse(ctx: IWebhookFunctions, status: number, detail: string): IWebhookResponseData {
	const res = ctx.getResponseObject();
	res.writeHead(status, { 'Content-Type': 'application/problem+json' });
	res.end(
		JSON.stringify({
			title: status === 401 ? 'Unauthorized' : 'Bad Request',
			status,
			detail,
		}),
	);
	return { noWebhookResponse: true };
}

export class WaBridgeTrigger implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'wabridge Trigger',
		name: 'waBridgeTrigger',
		icon: { light: 'file:wabridge.svg', dark: 'file:wabridge.dark.svg' },
		group: ['trigger'],
		version: 1,
		subtitle: '={{($parameter["events"] || []).join(", ")}}',
		description:
			'Starts the workflow when wabridge delivers a WhatsApp event (message, session, call, group, ...)',
		defaults: {
			name: 'wabridge Trigger',
		},
		inputs: [],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'waBridgeApi',
				required: true,
			},
		],
		webhooks: [
			{
				name: 'default',
				httpMethod: 'POST',
				responseMode: 'onReceived',
				path: 'webhook',
			},
		],
		properties: [
			{
				displayName: 'Event Names or IDs',
				name: 'events',
				type: 'multiOptions',
				typeOptions: {
					loadOptionsMethod: 'getEvents',
				},
				required: true,
				default: [],
				description:
					'The events to receive, grouped by family (Message, Session, Call, Group, ...), as the bridge lists them. Only events that can fire on this bridge are offered. Opt-in events such as message.receipt are not part of a wildcard: pick them by name. Choose from the list, or specify IDs using an <a href="https://docs.n8n.io/code/expressions/">expression</a>.',
			},
			{
				displayName: 'Session ID',
				name: 'sessionId',
				type: 'string',
				default: '',
				placeholder: 'default',
				description:
					'Only receive events of this WhatsApp session. Leave empty to receive the events of every session.',
			},
			{
				displayName: 'Options',
				name: 'options',
				type: 'collection',
				placeholder: 'Add option',
				default: {},
				options: [
					{
						displayName: 'Drop Duplicate Deliveries',
						name: 'dedupe',
						type: 'boolean',
						default: true,
						description:
							'Whether to ignore a delivery whose idempotency key was already received (a retry of a delivery that did arrive). Keys are remembered for the duplicate window, up to the maximum number of keys.',
					},
					{
						displayName: 'Duplicate Window (Hours)',
						name: 'dedupeWindowHours',
						type: 'number',
						typeOptions: { minValue: 0.1, maxValue: 720, numberPrecision: 1 },
						default: DEDUPE_WINDOW_HOURS,
						description:
							"How long an accepted idempotency key is remembered. The default covers the bridge's default retry schedule (last retry at most about 33 hours after the first attempt).",
					},
					{
						displayName: 'Max Remembered Keys',
						name: 'dedupeCapacity',
						type: 'number',
						typeOptions: { minValue: 1, maxValue: DEDUPE_MAX_CAPACITY },
						default: DEDUPE_CAPACITY,
						description:
							'The most idempotency keys kept at once (the oldest are forgotten first). Retries are caught while fewer keys than this arrive within the duplicate window.',
					},
				],
			},
		],
	};

	methods = {
		loadOptions: {
			async getEvents(this: ILoadOptionsFunctions): Promise<INodePropertyOptions[]> {
				return eventOptions(await fetchCatalog.call(this));
			},
		},
	};

	webhookMethods = {
		default: {
			async checkExists(this: IHookFunctions): Promise<boolean> {
				const staticData = this.getWorkflowStaticData('node');
				const webhookId = staticData.webhookId;
				if (typeof webhookId !== 'string' || webhookId === '') return false;

				const path = `/v1/webhooks/${encodeURIComponent(webhookId)}`;
				const found = await bridgeRequest.call(this, 'GET', path);
				if (found.statusCode === 404) {
					clearRegistration(staticData);
					return false;
				}
				if (found.statusCode < 200 || found.statusCode >= 300) {
					throw refusalError(
						this,
						found.statusCode,
						found.body,
						'look up the webhook registration',
					);
				}

				const hook = (found.body ?? {}) as IDataObject;
				const wantedUrl = this.getNodeWebhookUrl('default');
				const wantedEvents = eventsToRegister(this.getNodeParameter('events', []));
				const wantedSession = String(this.getNodeParameter('sessionId', '') ?? '').trim();
				const matches =
					hook.url === wantedUrl &&
					sameEvents(hook.events, wantedEvents) &&
					String(hook.sessionId ?? '') === wantedSession &&
					hook.active !== false &&
					typeof staticData.secret === 'string' &&
					staticData.secret !== '';
				if (matches) return true;

				// The registration is stale (another URL, other events or session, paused, or we
				// lost its secret): remove it so that create() registers a fresh one.
				const removed = await bridgeRequest.call(this, 'DELETE', path);
				if (removed.statusCode !== 404 && (removed.statusCode < 200 || removed.statusCode >= 300)) {
					throw refusalError(
						this,
						removed.statusCode,
						removed.body,
						'delete a stale webhook registration',
					);
				}
				clearRegistration(staticData);
				return false;
			},

			async create(this: IHookFunctions): Promise<boolean> {
				const staticData = this.getWorkflowStaticData('node');
				const url = this.getNodeWebhookUrl('default');
				if (!url) {
					throw new NodeOperationError(
						this.getNode(),
						'n8n did not provide a webhook URL for this trigger',
					);
				}
				const events = eventsToRegister(this.getNodeParameter('events', []));
				if (events.length === 0) {
					throw new NodeOperationError(this.getNode(), 'Pick at least one event to receive', {
						description: 'The Events field is empty.',
					});
				}
				const sessionId = String(this.getNodeParameter('sessionId', '') ?? '').trim();
				const workflowId = this.getWorkflow().id ?? 'unsaved';

				const body: IDataObject = {
					url,
					events,
					description: `n8n workflow ${workflowId}`,
				};
				if (sessionId !== '') body.sessionId = sessionId;

				const created = await bridgeRequest.call(this, 'POST', '/v1/webhooks', { body });
				if (created.statusCode < 200 || created.statusCode >= 300) {
					throw refusalError(this, created.statusCode, created.body, 'register the webhook');
				}
				const hook = (created.body ?? {}) as IDataObject;
				if (typeof hook.id !== 'string' || typeof hook.secret !== 'string' || hook.secret === '') {
					// Without the secret no delivery could be verified: do not leave the registration.
					if (typeof hook.id === 'string' && hook.id !== '') {
						await bridgeRequest.call(this, 'DELETE', `/v1/webhooks/${encodeURIComponent(hook.id)}`);
					}
					throw new NodeApiError(this.getNode(), hook as JsonObject, {
						message:
							'The bridge registered the webhook but its answer lacks the id or the signing secret',
					});
				}
				staticData.webhookId = hook.id;
				staticData.secret = hook.secret;
				staticData.webhookUrl = url;
				staticData.events = events;
				staticData.sessionId = sessionId;
				return true;
			},

			async delete(this: IHookFunctions): Promise<boolean> {
				const staticData = this.getWorkflowStaticData('node');
				const webhookId = staticData.webhookId;
				if (typeof webhookId === 'string' && webhookId !== '') {
					const path = `/v1/webhooks/${encodeURIComponent(webhookId)}`;
					const removed = await bridgeRequest.call(this, 'DELETE', path);
					// 404: already gone (deleted by hand, or by an earlier attempt): that is the goal.
					if (
						removed.statusCode !== 404 &&
						(removed.statusCode < 200 || removed.statusCode >= 300)
					) {
						throw refusalError(
							this,
							removed.statusCode,
							removed.body,
							'delete the webhook registration',
						);
					}
				}
				clearRegistration(staticData);
				return true;
			},
		},
	};

	async webhook(this: IWebhookFunctions): Promise<IWebhookResponseData> {
		const staticData = this.getWorkflowStaticData('node');
		const secret = staticData.secret;
		if (typeof secret !== 'string' || secret === '') {
			return refuse(
				this,
				401,
				'This trigger holds no signing secret; deactivate and activate the workflow to register again.',
			);
		}

		const headers = this.getHeaderData() as IDataObject;
		const request = this.getRequestObject() as { rawBody?: Buffer | string };
		// n8n keeps the exact bytes it received; the signature covers those bytes.
		const raw =
			request.rawBody !== undefined && request.rawBody !== null
				? request.rawBody
				: JSON.stringify(this.getBodyData());

		const now = Math.floor(Date.now() / 1000);
		const result = verify({
			secret,
			id: header(headers, 'webhook-id'),
			timestamp: header(headers, 'webhook-timestamp'),
			signature: header(headers, 'webhook-signature'),
			body: raw,
			now,
		});
		if (!result.valid) {
			return refuse(this, 401, `Signature check failed: ${result.reason}`);
		}

		let envelope: unknown;
		try {
			envelope = JSON.parse(typeof raw === 'string' ? raw : raw.toString('utf8'));
		} catch {
			envelope = this.getBodyData();
		}
		if (typeof envelope !== 'object' || envelope === null || Array.isArray(envelope)) {
			return refuse(this, 400, 'The delivery body is not a JSON object');
		}
		const body = envelope as IDataObject;

		const options = this.getNodeParameter('options', {}) as IDataObject;
		if (options.dedupe !== false) {
			const idHeader = header(headers, 'webhook-id');
			const key =
				(Array.isArray(idHeader) ? idHeader[0] : idHeader) ??
				(typeof body.idempotencyKey === 'string' ? body.idempotencyKey : undefined);
			if (key && seenBefore(staticData, key, now, limitsFromOptions(options))) {
				// Acknowledge (2xx) so the bridge stops retrying, but start no execution.
				return { webhookResponse: 'duplicate delivery ignored' };
			}
		}

		return {
			workflowData: [this.helpers.returnJsonArray([body])],
		};
	}
}
