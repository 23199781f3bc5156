import type {
	IDataObject,
	IExecuteFunctions,
	IHookFunctions,
	IHttpRequestMethods,
	IHttpRequestOptions,
	ILoadOptionsFunctions,
	IWebhookFunctions,
	JsonObject,
} from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

export const CREDENTIALS_TYPE = 'waBridgeApi';

export type BridgeContext =
	| IExecuteFunctions
	| IHookFunctions
	| ILoadOptionsFunctions
	| IWebhookFunctions;

/** What the bridge answered: status and parsed body (undefined for an empty body). */
export interface BridgeResponse {
	statusCode: number;
	body: unknown;
}

/** One entry of an RFC 9457 problem's `errors` array, as the bridge writes it. */
export interface ProblemError {
	pointer?: string;
	code?: string;
	value?: unknown;
	message?: string;
	suggestion?: string;
}

/** An RFC 9457 problem document (`application/problem+json`). */
export interface Problem {
	type?: string;
	title?: string;
	status?: number;
	detail?: string;
	errors?: ProblemError[];
}

/** Base URL from the credentials, without trailing slashes. */
export function normalizeBaseUrl(baseUrl: unknown): string {
	return String(baseUrl ?? '')
		.trim()
		.replace(/\/+$/, '');
}

function parseBody(body: unknown): unknown {
	if (typeof body !== 'string') return body;
	if (body.trim() === '') return undefined;
	try {
		return JSON.parse(body);
	} catch {
		return body;
	}
}

function isObject(value: unknown): value is Record<string, unknown> {
	return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Reads `body` as a problem document if it looks like one. */
export function asProblem(body: unknown): Problem | undefined {
	if (!isObject(body)) return undefined;
	const problem: Problem = {};
	if (typeof body.type === 'string') problem.type = body.type;
	if (typeof body.title === 'string') problem.title = body.title;
	if (typeof body.status === 'number') problem.status = body.status;
	if (typeof body.detail === 'string') problem.detail = body.detail;
	if (Array.isArray(body.errors)) {
		problem.errors = body.errors.filter(isObject).map((e) => ({
			pointer: typeof e.pointer === 'string' ? e.pointer : undefined,
			code: typeof e.code === 'string' ? e.code : undefined,
			value: e.value,
			message: typeof e.message === 'string' ? e.message : undefined,
			suggestion: typeof e.suggestion === 'string' ? e.suggestion : undefined,
		}));
	}
	if (problem.title === undefined && problem.detail === undefined && problem.errors === undefined) {
		return undefined;
	}
	return problem;
}

/** One line per problem entry, with its JSON pointer last: for the error's description. */
export function describeProblemErrors(errors: ProblemError[] | undefined): string[] {
	return (errors ?? []).map((e) => {
		const where = e.pointer ? ` (at ${e.pointer})` : '';
		return `${explainError(e)}${where}`;
	});
}

/** An error entry's message, followed by the bridge's suggestion when it has one. */
function explainError(e: ProblemError): string {
	const what = e.message ?? (e.code ? `${e.code} (${JSON.stringify(e.value)})` : 'invalid value');
	// The bridge usually names its suggestion in the message already; add it only if not. A
	// suggestion is a name ("session.authenticated") or, for some codes, a sentence.
	const suggestion = e.suggestion?.trim();
	if (!suggestion || what.includes(suggestion)) return what;
	if (/\s/.test(suggestion)) {
		const joined = /[.!?]$/.test(what) ? what : `${what}.`;
		return `${joined} ${suggestion}`;
	}
	return `${what} Did you mean '${suggestion}'?`;
}

/**
 * A readable sentence from a refusal of the bridge, e.g. "The bridge refused to register the
 * webhook: Invalid registration. group.join is reserved: no engine emits it yet, ...".
 * Never just "400 Bad Request": the problem's detail and each error's message (and
 * suggestion) make up the message.
 */
export function describeRefusal(statusCode: number, body: unknown, action: string): string {
	const problem = asProblem(body);
	if (statusCode === 401) {
		const detail = problem?.detail ? ` ${problem.detail}` : '';
		return `The bridge refused the API key while trying to ${action} (401).${detail} Check the API key in the wabridge credentials.`;
	}
	if (!problem) {
		const text = typeof body === 'string' && body.trim() !== '' ? `: ${body.trim()}` : '';
		return `The bridge answered ${statusCode} while trying to ${action}${text}`;
	}
	const parts: string[] = [];
	const explained = (problem.errors ?? []).map(explainError);
	const head = problem.detail ?? problem.title;
	if (head && !explained.some((line) => line.startsWith(head))) parts.push(head);
	parts.push(...explained);
	if (parts.length === 0) parts.push(`status ${statusCode}`);
	const sentences = parts.map((p) => (/[.!?]$/.test(p) ? p : `${p}.`));
	return `The bridge refused to ${action}: ${sentences.join(' ')}`;
}

/** The error a node throws for a refusal: NodeApiError carrying the bridge's explanation. */
export function refusalError(
	ctx: BridgeContext,
	statusCode: number,
	body: unknown,
	action: string,
): NodeApiError {
	const problem = asProblem(body);
	const message = describeRefusal(statusCode, body, action);
	// The description adds where each error is (its JSON pointer); the detail only when it says
	// more than the errors (the bridge often repeats a single error's message there).
	const errorLines = describeProblemErrors(problem?.errors);
	const descriptionParts: string[] = [];
	const detail = problem?.detail;
	if (detail && !(problem?.errors ?? []).some((e) => e.message === detail)) {
		descriptionParts.push(detail);
	}
	descriptionParts.push(...errorLines);
	const errorResponse: JsonObject = isObject(body)
		? (body as JsonObject)
		: { body: typeof body === 'string' ? body : '' };
	return new NodeApiError(ctx.getNode(), errorResponse, {
		message,
		description: descriptionParts.join('\n') || undefined,
		httpCode: String(statusCode),
	});
}

/**
 * Sends one request to the bridge with the node's credentials and returns status and body
 * without throwing on 4xx/5xx, so that callers decide (404 is an answer for checkExists and
 * delete) and refusals keep the bridge's explanation.
 */
export async function bridgeRequest(
	this: BridgeContext,
	method: IHttpRequestMethods,
	path: string,
	options: { body?: IDataObject; qs?: IDataObject } = {},
): Promise<BridgeResponse> {
	const credentials = await this.getCredentials(CREDENTIALS_TYPE);
	const baseUrl = normalizeBaseUrl(credentials.baseUrl);
	const request: IHttpRequestOptions = {
		method,
		url: `${baseUrl}${path}`,
		headers: { Accept: 'application/json, application/problem+json' },
		json: true,
		returnFullResponse: true,
		ignoreHttpStatusErrors: true,
	};
	if (options.body !== undefined) request.body = options.body;
	if (options.qs !== undefined) request.qs = options.qs;

	let response: { statusCode?: number; status?: number; body?: unknown };
	try {
		response = await this.helpers.httpRequestWithAuthentication.call(
			this,
			CREDENTIALS_TYPE,
			request,
		);
	} catch (error) {
		const failure =
			error instanceof NodeApiError
				? error
				: new NodeApiError(this.getNode(), error as JsonObject, {
						message: `Could not reach the bridge at ${baseUrl || '(no base URL set)'}: ${
							(error as Error)?.message ?? String(error)
						}`,
					});
		throw failure;
	}
	const statusCode = Number(response?.statusCode ?? response?.status ?? 0);
	return { statusCode, body: parseBody(response?.body) };
}

/** Like bridgeRequest, but anything outside 2xx becomes a readable NodeApiError. */
export async function bridgeRequestOk(
	this: BridgeContext,
	method: IHttpRequestMethods,
	path: string,
	action: string,
	options: { body?: IDataObject; qs?: IDataObject } = {},
): Promise<unknown> {
	const response = await bridgeRequest.call(this, method, path, options);
	if (response.statusCode < 200 || response.statusCode >= 300) {
		throw refusalError(this, response.statusCode, response.body, action);
	}
	return response.body;
}
