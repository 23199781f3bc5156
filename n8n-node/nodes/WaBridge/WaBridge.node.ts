import type {
	IDataObject,
	IExecuteFunctions,
	INodeExecutionData,
	INodeType,
	INodeTypeDescription,
} from 'n8n-workflow';
import { NodeApiError, NodeConnectionTypes, NodeOperationError } from 'n8n-workflow';

import { fetchCatalog } from './shared/events';
import { bridgeRequestOk } from './shared/transport';

/** Splits "a, b,c" or an array into trimmed, non-empty event names. */
function eventList(value: unknown): string[] {
	const parts = Array.isArray(value) ? value.map(String) : String(value ?? '').split(',');
	return parts.map((p) => p.trim()).filter((p) => p !== '');
}

export class WaBridge implements INodeType {
	description: INodeTypeDescription = {
		displayName: 'wabridge',
		name: 'waBridge',
		icon: { light: 'file:wabridge.svg', dark: 'file:wabridge.dark.svg' },
		group: ['transform'],
		version: 1,
		subtitle: '={{$parameter["operation"] + ": " + $parameter["resource"]}}',
		description: 'Inspect the wabridge event catalog and check or test webhook registrations',
		defaults: {
			name: 'wabridge',
		},
		usableAsTool: true,
		inputs: [NodeConnectionTypes.Main],
		outputs: [NodeConnectionTypes.Main],
		credentials: [
			{
				name: 'waBridgeApi',
				required: true,
			},
		],
		properties: [
			{
				displayName: 'Resource',
				name: 'resource',
				type: 'options',
				noDataExpression: true,
				options: [
					{
						name: 'Event',
						value: 'event',
					},
					{
						name: 'Webhook',
						value: 'webhook',
					},
				],
				default: 'event',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: {
					show: {
						resource: ['event'],
					},
				},
				options: [
					{
						name: 'Get Many',
						value: 'getAll',
						description: 'List the events the bridge knows',
						action: 'Get many events',
					},
				],
				default: 'getAll',
			},
			{
				displayName: 'Operation',
				name: 'operation',
				type: 'options',
				noDataExpression: true,
				displayOptions: {
					show: {
						resource: ['webhook'],
					},
				},
				options: [
					{
						name: 'Send Test',
						value: 'sendTest',
						description: 'Make the bridge send a signed test delivery to a registration',
						action: 'Send a test delivery',
					},
					{
						name: 'Validate',
						value: 'validate',
						description: 'Check a registration without storing it',
						action: 'Validate a webhook registration',
					},
				],
				default: 'validate',
			},
			{
				displayName: 'Include Reserved Events',
				name: 'includeReserved',
				type: 'boolean',
				default: false,
				displayOptions: {
					show: {
						resource: ['event'],
						operation: ['getAll'],
					},
				},
				description:
					'Whether to also list reserved events: declared names that no engine emits yet, which the bridge refuses to register',
			},
			{
				displayName: 'URL',
				name: 'url',
				type: 'string',
				default: '',
				required: true,
				placeholder: 'https://n8n.example.com/webhook/abc/webhook',
				displayOptions: {
					show: {
						resource: ['webhook'],
						operation: ['validate'],
					},
				},
				description: 'The URL the bridge would deliver to',
			},
			{
				displayName: 'Events',
				name: 'events',
				type: 'string',
				default: '',
				required: true,
				placeholder: 'session.qr, session.status',
				displayOptions: {
					show: {
						resource: ['webhook'],
						operation: ['validate'],
					},
				},
				description:
					'Comma-separated event names to check, e.g. session.qr, session.status, or * for all available events',
			},
			{
				displayName: 'Session ID',
				name: 'sessionId',
				type: 'string',
				default: '',
				displayOptions: {
					show: {
						resource: ['webhook'],
						operation: ['validate'],
					},
				},
				description:
					'Limit the registration to one WhatsApp session. Leave empty for all sessions.',
			},
			{
				displayName: 'Webhook ID',
				name: 'webhookId',
				type: 'string',
				default: '',
				required: true,
				displayOptions: {
					show: {
						resource: ['webhook'],
						operation: ['sendTest'],
					},
				},
				description: 'ID of the registration that receives the test delivery',
			},
			{
				displayName: 'Event',
				name: 'event',
				type: 'string',
				default: '',
				placeholder: 'session.status',
				displayOptions: {
					show: {
						resource: ['webhook'],
						operation: ['sendTest'],
					},
				},
				description:
					'Event whose example payload to send. Leave empty to let the bridge pick one of the registration.',
			},
		],
	};

	async execute(this: IExecuteFunctions): Promise<INodeExecutionData[][]> {
		const items = this.getInputData();
		const returnData: INodeExecutionData[] = [];

		for (let i = 0; i < items.length; i++) {
			try {
				const resource = this.getNodeParameter('resource', i) as string;
				const operation = this.getNodeParameter('operation', i) as string;

				if (resource === 'event' && operation === 'getAll') {
					const includeReserved = this.getNodeParameter('includeReserved', i, false) as boolean;
					const catalog = await fetchCatalog.call(this);
					for (const event of catalog) {
						if (!includeReserved && event.status !== 'available') continue;
						returnData.push({ json: { ...event } as IDataObject, pairedItem: { item: i } });
					}
				} else if (resource === 'webhook' && operation === 'validate') {
					const body: IDataObject = {
						url: (this.getNodeParameter('url', i) as string).trim(),
						events: eventList(this.getNodeParameter('events', i)),
					};
					const sessionId = (this.getNodeParameter('sessionId', i, '') as string).trim();
					if (sessionId !== '') body.sessionId = sessionId;
					const result = await bridgeRequestOk.call(
						this,
						'POST',
						'/v1/webhooks/validate',
						'validate the registration',
						{ body },
					);
					returnData.push({ json: (result ?? {}) as IDataObject, pairedItem: { item: i } });
				} else if (resource === 'webhook' && operation === 'sendTest') {
					const webhookId = (this.getNodeParameter('webhookId', i) as string).trim();
					if (webhookId === '') {
						throw new NodeOperationError(this.getNode(), 'Webhook ID is empty', { itemIndex: i });
					}
					const event = (this.getNodeParameter('event', i, '') as string).trim();
					const body: IDataObject = event !== '' ? { event } : {};
					const result = await bridgeRequestOk.call(
						this,
						'POST',
						`/v1/webhooks/${encodeURIComponent(webhookId)}/test`,
						'send a test delivery',
						{ body },
					);
					returnData.push({ json: (result ?? {}) as IDataObject, pairedItem: { item: i } });
				} else {
					throw new NodeOperationError(
						this.getNode(),
						`Unsupported operation "${operation}" for resource "${resource}"`,
						{ itemIndex: i },
					);
				}
			} catch (error) {
				if (this.continueOnFail()) {
					returnData.push({
						json: { error: (error as Error).message },
						pairedItem: { item: i },
					});
					continue;
				}
				const failure =
					error instanceof NodeOperationError || error instanceof NodeApiError
						? error
						: new NodeOperationError(this.getNode(), error as Error, { itemIndex: i });
				throw failure;
			}
		}

		return [returnData];
	}
}
