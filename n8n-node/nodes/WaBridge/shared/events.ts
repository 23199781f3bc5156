import type { INodePropertyOptions } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import type { BridgeContext } from './transport';
import { bridgeRequestOk } from './transport';

/** The wildcard registration: every available event. */
export const ALL_EVENTS = '*';

/** One entry of the bridge's event catalog (GET /v1/events). */
export interface CatalogEvent {
	name: string;
	status: 'available' | 'reserved' | string;
	description?: string;
	schemaUrl?: string;
}

/** Fetches the bridge's event catalog. */
export async function fetchCatalog(this: BridgeContext): Promise<CatalogEvent[]> {
	const body = await bridgeRequestOk.call(this, 'GET', '/v1/events', 'list its events');
	const events = (body as { events?: unknown })?.events;
	if (!Array.isArray(events)) {
		throw new NodeApiError(
			this.getNode(),
			{ body: JSON.stringify(body ?? null) },
			{
				message: 'The bridge answered GET /v1/events without an "events" list',
			},
		);
	}
	return events.filter(
		(e): e is CatalogEvent =>
			typeof e === 'object' && e !== null && typeof (e as CatalogEvent).name === 'string',
	);
}

/**
 * The options of the trigger's event picker: "All available events" first, then every
 * available event with its description. Reserved events (no engine emits them yet) are left
 * out, since a registration for them would never fire and the bridge refuses it.
 */
export function eventOptions(catalog: CatalogEvent[]): INodePropertyOptions[] {
	const options: INodePropertyOptions[] = [
		{
			name: 'All Available Events',
			value: ALL_EVENTS,
			description: 'Every event the bridge can deliver, including ones added later',
		},
	];
	for (const event of catalog) {
		if (event.status !== 'available') continue;
		options.push({ name: event.name, value: event.name, description: event.description });
	}
	return options;
}

/**
 * The event list to register for the events picked in the node: the wildcard alone when it
 * was picked (it covers the rest), otherwise the picked names without duplicates, in order.
 */
export function eventsToRegister(picked: unknown): string[] {
	const names = (Array.isArray(picked) ? picked : [picked])
		.filter((e): e is string => typeof e === 'string')
		.map((e) => e.trim())
		.filter((e) => e !== '');
	if (names.includes(ALL_EVENTS)) return [ALL_EVENTS];
	return [...new Set(names)];
}

/** Whether two event lists name the same events, whatever their order. */
export function sameEvents(a: unknown, b: string[]): boolean {
	if (!Array.isArray(a)) return false;
	const left = [...new Set(a.map(String))].sort();
	const right = [...new Set(b)].sort();
	return left.length === right.length && left.every((name, i) => name === right[i]);
}
