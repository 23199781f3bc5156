import type {
	IAuthenticateGeneric,
	Icon,
	ICredentialTestRequest,
	ICredentialType,
	INodeProperties,
} from 'n8n-workflow';

/**
 * Credentials for a wabridge instance: where it listens and the management API key.
 *
 * The key travels in the `X-API-Key` header on every request the nodes make, and the
 * credential test lists one registration, which needs a valid key.
 */
export class WaBridgeApi implements ICredentialType {
	name = 'waBridgeApi';

	displayName = 'Wabridge API';

	icon: Icon = { light: 'file:wabridge.svg', dark: 'file:wabridge.dark.svg' };

	documentationUrl = 'https://github.com/wabridge/wabridge/blob/main/docs/n8n.md';

	properties: INodeProperties[] = [
		{
			displayName: 'Base URL',
			name: 'baseUrl',
			type: 'string',
			default: '',
			placeholder: 'http://wabridge:8787',
			required: true,
			description: 'Address of the wabridge HTTP API as n8n reaches it, without the /v1 path',
		},
		{
			displayName: 'API Key',
			name: 'apiKey',
			type: 'string',
			typeOptions: { password: true },
			default: '',
			required: true,
			description: 'The management key the bridge was started with (WABRIDGE_API_KEY)',
		},
	];

	authenticate: IAuthenticateGeneric = {
		type: 'generic',
		properties: {
			headers: {
				'X-API-Key': '={{$credentials.apiKey}}',
			},
		},
	};

	test: ICredentialTestRequest = {
		request: {
			baseURL: '={{$credentials.baseUrl.replace(/\\/+$/, "")}}',
			url: '/v1/webhooks',
			qs: { limit: 1 },
		},
	};
}
