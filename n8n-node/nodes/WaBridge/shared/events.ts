import type { INodePropertyOptions } from 'n8n-workflow';
import { NodeApiError } from 'n8n-workflow';

import type { BridgeContext } from './transport';
import { bridgeRequestOk } from './transport';

/** The wildcard registration: every available event. */
export const ALL_EVENTS = '*';

/** Where an engine emits a catalog event, as `GET /v1/events` lists it (newer bridges). */
export interface CatalogSource {
	engine?: string;
	title?: string;
	configured?: boolean;
	since?: string;
	native?: Array<{ name?: string; when?: string }>;
}

/**
 * One entry of the bridge's event catalog (GET /v1/events). Only `name` is relied on; an older
 * bridge sends no `family`, `optIn`, `sources` or `reservedReason`.
 */
export interface CatalogEvent {
	name: string;
	status?: 'available' | 'reserved' | string;
	family?: string;
	optIn?: boolean;
	description?: string;
	schemaUrl?: string;
	sources?: CatalogSource[];
	reservedReason?: string;
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

/** Whether the bridge can deliver `event` (reserved events, or any other status, cannot). */
export function isAvailable(event: CatalogEvent): boolean {
	if (typeof event.reservedReason === 'string' && event.reservedReason !== '') return false;
	return event.status === undefined || event.status === 'available';
}

/** The family of an event: the bridge's `family`, or the part of the name before the dot. */
export function familyOf(event: CatalogEvent): string {
	if (typeof event.family === 'string' && event.family !== '') return event.family;
	const dot = event.name.indexOf('.');
	return dot > 0 ? event.name.slice(0, dot) : event.name;
}

function titleCase(words: string): string {
	return words
		.split(/[\s_-]+/)
		.filter((w) => w !== '')
		.map((w) => (w === 'qr' ? 'QR' : w.charAt(0).toUpperCase() + w.slice(1)))
		.join(' ');
}

/** The picker's label for an event: "Message: Received", "Group: Join Request". */
export function eventLabel(event: CatalogEvent): string {
	const family = familyOf(event);
	const rest = event.name.startsWith(`${family}.`)
		? event.name.slice(family.length + 1)
		: event.name;
	return `${titleCase(family)}: ${titleCase(rest)}`;
}

function sentence(text: string): string {
	const trimmed = text.trim();
	if (trimmed === '') return '';
	return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}

/** "Emitted by OpenWA (message.ack)" from the configured sources, when the bridge says. */
function sourcesNote(event: CatalogEvent): string {
	if (!Array.isArray(event.sources)) return '';
	const parts: string[] = [];
	for (const source of event.sources) {
		if (typeof source !== 'object' || source === null || source.configured === false) continue;
		const who = source.title || source.engine;
		if (!who) continue;
		const natives = (Array.isArray(source.native) ? source.native : [])
			.map((n) => n?.name)
			.filter((n): n is string => typeof n === 'string' && n !== '');
		parts.push(natives.length > 0 ? `${who} (${natives.join(', ')})` : who);
	}
	return parts.length > 0 ? `Emitted by ${parts.join(', ')}.` : '';
}

/** The option description of an event: its family, what it is, opt-in, and who emits it. */
export function eventDescription(event: CatalogEvent): string {
	const parts = [`${titleCase(familyOf(event))} event \`${event.name}\`.`];
	if (event.description) parts.push(sentence(event.description));
	if (event.optIn === true) {
		parts.push(
			`Opt-in: not included in "All Available Events" or "${titleCase(familyOf(event))}: All Events"; pick it by name to receive it.`,
		);
	}
	const sources = sourcesNote(event);
	if (sources) parts.push(sources);
	return parts.join(' ');
}

/**
 * The options of the trigger's event picker, grouped by family:
 *
 * - "All Available Events" (`*`) first;
 * - then, for each family in the order the catalog lists it, "<Family>: All Events"
 *   (`<family>.*`) and every available event of that family, labelled "<Family>: <Action>".
 *
 * Reserved events (no engine configured on this bridge emits them) are never offered: the
 * bridge refuses a registration for them. A family with no available event gets no entry.
 * Opt-in events (`optIn: true`, e.g. `message.receipt`) are offered by name and are not part
 * of `*` or `<family>.*`; their description says so.
 */
export function eventOptions(catalog: CatalogEvent[]): INodePropertyOptions[] {
	const available = catalog.filter(isAvailable);
	const optInNames = available.filter((e) => e.optIn === true).map((e) => e.name);
	const allDescription =
		optInNames.length > 0
			? `Every event the bridge can deliver, including ones added later, except the opt-in ones (${optInNames.join(', ')})`
			: 'Every event the bridge can deliver, including ones added later';
	const options: INodePropertyOptions[] = [
		{ name: 'All Available Events', value: ALL_EVENTS, description: allDescription },
	];

	const families: string[] = [];
	const byFamily = new Map<string, CatalogEvent[]>();
	for (const event of available) {
		const family = familyOf(event);
		if (!byFamily.has(family)) {
			families.push(family);
			byFamily.set(family, []);
		}
		byFamily.get(family)?.push(event);
	}
	for (const family of families) {
		const events = byFamily.get(family) ?? [];
		if (events.some((e) => e.optIn !== true)) {
			const optIn = events.filter((e) => e.optIn === true).map((e) => e.name);
			options.push({
				name: `${titleCase(family)}: All Events`,
				value: `${family}.*`,
				description:
					`Every available ${family} event, including ones added later` +
					(optIn.length > 0 ? `, except the opt-in ones (${optIn.join(', ')})` : ''),
			});
		}
		for (const event of events) {
			options.push({
				name: eventLabel(event),
				value: event.name,
				description: eventDescription(event),
			});
		}
	}
	return options;
}

/**
 * The event list to register for the events picked in the node: the picked names (event
 * names, `*`, `<family>.*`) without duplicates, in order. A wildcard does not swallow the
 * names picked with it: an opt-in event (e.g. `message.receipt`) is only delivered to a
 * registration that names it, even next to `*`, and the bridge folds the rest itself.
 */
export function eventsToRegister(picked: unknown): string[] {
	const names = (Array.isArray(picked) ? picked : [picked])
		.filter((e): e is string => typeof e === 'string')
		.map((e) => e.trim())
		.filter((e) => e !== '');
	return [...new Set(names)];
}

/** Whether two event lists name the same events, whatever their order. */
export function sameEvents(a: unknown, b: string[]): boolean {
	if (!Array.isArray(a)) return false;
	const left = [...new Set(a.map(String))].sort();
	const right = [...new Set(b)].sort();
	return left.length === right.length && left.every((name, i) => name === right[i]);
}
