/**
 * Hand-written stand-ins for the n8n contexts the nodes run in (n8n's own test helpers are not
 * published). Each context records the requests the node sends through
 * httpRequestWithAuthentication and answers them from a script of recorded bridge responses.
 */
import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	INode,
	INodeExecutionData,
	IWebhookFunctions,
} from 'n8n-workflow';

/** A copy of `obj` without `keys`. */
export function omit<T extends object, K extends keyof T>(obj: T, ...keys: K[]): Omit<T, K> {
	const copy = { ...obj };
	for (const key of keys) delete copy[key];
	return copy;
}

export const BRIDGE_URL = 'http://127.0.0.1:8787';
export const API_KEY = 'test-api-key';
export const WEBHOOK_URL =
	'http://127.0.0.1:5678/webhook/5b0c8f4e-2d1a-4c3b-9e7f-1a2b3c4d5e6f/webhook';

/** One recorded answer of the bridge: a request it matches, and the response it gives. */
export interface Exchange {
	method: string;
	path: string;
	status: number;
	body?: unknown;
}

/** What the node sent. */
export interface RecordedCall {
	credentialsType: string;
	method: string;
	/** Path below the base URL, without the query string. */
	path: string;
	qs?: IDataObject;
	body?: unknown;
	headers?: IDataObject;
	options: IHttpRequestOptions;
}

/**
 * A scripted bridge: every request consumes the first unused exchange with the same method and
 * path; a request nobody scripted fails the test.
 */
export class FakeBridge {
	readonly calls: RecordedCall[] = [];

	private readonly script: Exchange[];

	constructor(script: Exchange[] = []) {
		this.script = [...script];
	}

	/** Exchanges that were scripted but never requested. */
	unused(): Exchange[] {
		return [...this.script];
	}

	handle = async (credentialsType: string, options: IHttpRequestOptions): Promise<unknown> => {
		const url = new URL(options.url);
		const base = new URL(BRIDGE_URL);
		if (url.origin !== base.origin) throw new Error(`request to unexpected origin ${url.origin}`);
		const call: RecordedCall = {
			credentialsType,
			method: String(options.method ?? 'GET'),
			path: url.pathname,
			qs: options.qs as IDataObject | undefined,
			body: options.body,
			headers: options.headers as IDataObject | undefined,
			options,
		};
		this.calls.push(call);
		const index = this.script.findIndex((e) => e.method === call.method && e.path === call.path);
		if (index < 0) throw new Error(`unscripted request ${call.method} ${call.path}`);
		const [exchange] = this.script.splice(index, 1);
		// The nodes ask for the full response and no throwing on 4xx/5xx, as n8n then returns.
		if (!options.returnFullResponse || !options.ignoreHttpStatusErrors) {
			throw new Error('the node must request returnFullResponse and ignoreHttpStatusErrors');
		}
		return {
			statusCode: exchange.status,
			statusMessage: '',
			headers: { 'content-type': 'application/json' },
			body: exchange.body === undefined ? '' : structuredClone(exchange.body),
		};
	};
}

const NODE: INode = {
	id: 'node-1',
	name: 'wabridge Trigger',
	type: 'n8n-nodes-wabridge.waBridgeTrigger',
	typeVersion: 1,
	position: [0, 0],
	parameters: {},
};

interface BaseOptions {
	params?: Record<string, unknown>;
	staticData?: IDataObject;
	bridge?: FakeBridge;
	workflowId?: string;
}

function base(opts: BaseOptions) {
	const staticData = opts.staticData ?? {};
	const bridge = opts.bridge ?? new FakeBridge();
	const params = opts.params ?? {};
	return {
		staticData,
		bridge,
		context: {
			getNode: () => NODE,
			getWorkflow: () => ({ id: opts.workflowId ?? 'wf-42', name: 'test', active: true }),
			getWorkflowStaticData: (type: string) => {
				if (type !== 'node') throw new Error(`unexpected static data type ${type}`);
				return staticData;
			},
			getCredentials: async (type: string) => {
				if (type !== 'waBridgeApi') throw new Error(`unexpected credentials ${type}`);
				return { baseUrl: `${BRIDGE_URL}/`, apiKey: API_KEY };
			},
			getNodeParameter: (name: string, fallbackOrIndex?: unknown, fallback?: unknown) => {
				if (name in params) return params[name];
				// (name, fallback) for hooks/webhooks, (name, itemIndex, fallback) for execute.
				if (fallback !== undefined) return fallback;
				if (typeof fallbackOrIndex !== 'number' && fallbackOrIndex !== undefined) {
					return fallbackOrIndex;
				}
				throw new Error(`parameter ${name} not set in the test`);
			},
			helpers: {
				httpRequestWithAuthentication: bridge.handle,
				returnJsonArray: (items: IDataObject | IDataObject[]): INodeExecutionData[] =>
					(Array.isArray(items) ? items : [items]).map((json) => ({ json })),
			},
			logger: { debug() {}, info() {}, warn() {}, error() {} },
		},
	};
}

export function hookContext(opts: BaseOptions & { webhookUrl?: string } = {}) {
	const { context, staticData, bridge } = base(opts);
	const ctx = {
		...context,
		getNodeWebhookUrl: (name: string) => {
			if (name !== 'default') throw new Error(`unexpected webhook ${name}`);
			return opts.webhookUrl ?? WEBHOOK_URL;
		},
		getWebhookName: () => 'default',
		getMode: () => 'trigger',
		getActivationMode: () => 'activate',
	};
	return { ctx: ctx as unknown as IHookFunctions, staticData, bridge };
}

export function loadOptionsContext(opts: BaseOptions = {}) {
	const { context, bridge } = base(opts);
	return { ctx: context as unknown as ILoadOptionsFunctions, bridge };
}

export function executeContext(
	opts: BaseOptions & { items?: INodeExecutionData[]; continueOnFail?: boolean } = {},
) {
	const { context, bridge } = base(opts);
	const ctx = {
		...context,
		getInputData: () => opts.items ?? [{ json: {} }],
		continueOnFail: () => opts.continueOnFail ?? false,
		getMode: () => 'manual',
	};
	return { ctx: ctx as unknown as IExecuteFunctions, bridge };
}

/** What the trigger wrote to the HTTP response by itself. */
export interface RecordedResponse {
	statusCode?: number;
	headers?: Record<string, string>;
	body?: string;
	ended: boolean;
}

export function webhookContext(
	opts: BaseOptions & {
		headers?: Record<string, string | string[]>;
		rawBody?: Buffer | string;
		body?: IDataObject;
	} = {},
) {
	const { context, staticData, bridge } = base(opts);
	const response: RecordedResponse = { ended: false };
	const res = {
		writeHead(status: number, headers?: Record<string, string>) {
			response.statusCode = status;
			response.headers = headers;
			return res;
		},
		end(body?: string) {
			response.body = body;
			response.ended = true;
			return res;
		},
	};
	const rawBody =
		typeof opts.rawBody === 'string' ? Buffer.from(opts.rawBody, 'utf8') : opts.rawBody;
	const ctx = {
		...context,
		getHeaderData: () => opts.headers ?? {},
		getBodyData: () =>
			opts.body ?? (rawBody !== undefined ? JSON.parse(rawBody.toString('utf8')) : {}),
		getRequestObject: () => ({ rawBody, headers: opts.headers ?? {} }),
		getResponseObject: () => res,
		getNodeWebhookUrl: () => WEBHOOK_URL,
		getWebhookName: () => 'default',
		getMode: () => 'webhook',
	};
	return { ctx: ctx as unknown as IWebhookFunctions, staticData, bridge, response };
}
