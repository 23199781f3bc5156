// wabridge operator page. Plain JavaScript, no framework, no build step.
// Every piece of data comes from the bridge's admin API, called with the key the operator typed
// in, kept only in sessionStorage (this tab, until it closes). Text is always inserted with
// textContent, never as HTML.
'use strict';

(() => {
  const KEY = 'wabridge.adminKey';
  const POLL_MS = 3000;
  const RING = 100; // samples kept: 5 minutes at 3 s
  const MAX_PAGES = 5; // deliveries read per registration: 5 pages of 200

  const $ = (sel) => document.querySelector(sel);
  const views = ['registrations', 'deliveries', 'dead', 'catalog', 'health'];

  // --- DOM helpers ---------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }
  const svgEl = (tag, attrs) => {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  };
  const status = (view, text) => {
    const s = document.querySelector(`#view-${view} .status`);
    if (s) s.textContent = text || '';
  };
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : '—');
  const badge = (state) => el('span', { class: `badge state-${state}`, text: state });

  // --- The API -------------------------------------------------------------------------------
  class SignedOut extends Error {}

  async function api(path, options = {}) {
    const key = sessionStorage.getItem(KEY);
    if (!key) throw new SignedOut('not signed in');
    const headers = { Authorization: `Bearer ${key}`, Accept: 'application/json' };
    if (options.body !== undefined) headers['Content-Type'] = 'application/json';
    const res = await fetch(path, {
      method: options.method || 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      cache: 'no-store',
      credentials: 'omit',
    });
    if (res.status === 401) {
      signOut('The bridge no longer accepts this key; sign in again.');
      throw new SignedOut('unauthorized');
    }
    const text = await res.text();
    let body = null;
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
    if (!res.ok) {
      const detail = body && typeof body === 'object' ? body.detail || body.title : text;
      throw new Error(`${res.status}: ${detail || res.statusText}`);
    }
    return options.raw ? text : body;
  }

  function reportError(view, e) {
    if (e instanceof SignedOut) return;
    status(view, `Could not load: ${e.message}`);
  }

  // --- Sign in -------------------------------------------------------------------------------
  async function signIn(event) {
    event.preventDefault();
    const input = $('#key');
    const err = $('#signin-error');
    const key = input.value.trim();
    err.textContent = '';
    if (!key) {
      err.textContent = 'Type an admin key.';
      input.focus();
      return;
    }
    let res;
    try {
      res = await fetch('/v1/webhooks?limit=1', {
        headers: { Authorization: `Bearer ${key}`, Accept: 'application/json' },
        cache: 'no-store',
        credentials: 'omit',
      });
    } catch (e) {
      err.textContent = `The bridge did not answer: ${e.message}`;
      return;
    }
    if (res.status === 401) {
      err.textContent = 'That key is not an admin key of this bridge (an ingest key cannot sign in).';
      input.select();
      return;
    }
    if (!res.ok) {
      err.textContent = `The bridge answered ${res.status}; try again.`;
      return;
    }
    sessionStorage.setItem(KEY, key);
    input.value = '';
    showSignedIn();
  }

  function signOut(message) {
    sessionStorage.removeItem(KEY);
    stopPolling();
    $('#nav').hidden = true;
    for (const v of views) $(`#view-${v}`).hidden = true;
    $('#signin').hidden = false;
    $('#signin-error').textContent = message || '';
    $('#key').focus();
  }

  function showSignedIn() {
    $('#signin').hidden = true;
    $('#nav').hidden = false;
    if (!location.hash || location.hash === '#') location.hash = '#registrations';
    else route();
  }

  // --- Routing: #registrations, #deliveries/<id>, #dead, #catalog, #health ---------------------
  function route() {
    if (!sessionStorage.getItem(KEY)) return signOut();
    const [name, arg] = location.hash.slice(1).split('/');
    const view = views.includes(name) ? name : 'registrations';
    for (const v of views) $(`#view-${v}`).hidden = v !== view;
    for (const a of document.querySelectorAll('nav a')) {
      const current = a.dataset.view === view || (view === 'deliveries' && a.dataset.view === 'registrations');
      if (current) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (view !== 'health') stopPolling();
    const load = {
      registrations: loadRegistrations,
      deliveries: () => loadDeliveries(decodeURIComponent(arg || '')),
      dead: loadDead,
      catalog: loadCatalog,
      health: startHealth,
    }[view];
    load().catch((e) => reportError(view, e));
  }

  async function allWebhooks() {
    const out = [];
    let cursor = null;
    do {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await api(`/v1/webhooks?limit=200${q}`);
      out.push(...page.data);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  async function deliveriesOf(id) {
    const out = [];
    let cursor = null;
    let pages = 0;
    do {
      const q = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
      const page = await api(`/v1/webhooks/${encodeURIComponent(id)}/deliveries?limit=200${q}`);
      out.push(...page.data);
      cursor = page.nextCursor;
      pages += 1;
    } while (cursor && pages < MAX_PAGES);
    // Ids are time-ordered (UUIDv7): newest first.
    out.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
    return { list: out, truncated: Boolean(cursor) };
  }

  function countsList(c) {
    return el('dl', { class: 'counts' },
      ['pending', 'inFlight', 'delivered', 'dead'].map((k) =>
        el('div', {}, el('dt', { text: k === 'inFlight' ? 'in flight' : k }),
          el('dd', { class: k === 'dead' && c[k] > 0 ? 'state-dead' : null, 'data-count': k, text: c[k] }))));
  }

  // --- Registrations -------------------------------------------------------------------------
  async function loadRegistrations() {
    status('registrations', 'Loading…');
    const hooks = await allWebhooks();
    const stats = await Promise.all(hooks.map((w) => api(`/v1/webhooks/${encodeURIComponent(w.id)}/stats`)));
    const list = $('#registrations-list');
    list.replaceChildren(...hooks.map((w, i) => registrationCard(w, stats[i])));
    status('registrations', hooks.length ? `${hooks.length} registration(s).` : 'No registrations yet.');
  }

  function registrationCard(w, c) {
    const cannot = w.cannotFire || [];
    return el('article', { class: 'card registration', 'data-webhook': w.id },
      el('h3', { class: 'url', text: w.url }),
      w.description ? el('p', { text: w.description }) : null,
      el('p', {},
        w.active
          ? el('span', { class: 'badge active', text: 'active' })
          : el('span', { class: 'badge disabled', text: 'disabled' }),
        !w.active && w.disabledReason ? ` ${w.disabledReason}` : null,
        ' ', el('span', { class: 'muted mono', text: w.id })),
      el('p', { class: 'muted', text: 'Events' }),
      el('ul', { class: 'chips', 'aria-label': 'Events' }, w.events.map((e) => el('li', { class: 'chip', text: e }))),
      cannot.length
        ? el('div', { class: 'warning' },
          el('p', { text: 'Cannot fire on this bridge:' }),
          el('ul', {}, cannot.map((c2) => el('li', {}, el('code', { text: c2.event }), ` — ${c2.reason}`))))
        : null,
      w.sessionId ? el('p', {}, 'Session: ', el('code', { text: w.sessionId })) : null,
      countsList(c),
      el('div', { class: 'actions' },
        el('a', { href: `#deliveries/${encodeURIComponent(w.id)}` }, 'Deliveries'),
        c.dead > 0 ? el('a', { href: '#dead' }, `Dead letters (${c.dead})`) : null));
  }

  // --- Deliveries of a registration ------------------------------------------------------------
  let current = { id: null, list: [], truncated: false };

  async function loadDeliveries(id) {
    status('deliveries', 'Loading…');
    const w = await api(`/v1/webhooks/${encodeURIComponent(id)}`);
    $('#deliveries-of').textContent = w.url;
    const { list, truncated } = await deliveriesOf(id);
    current = { id, list, truncated };
    const events = new Set([...w.events.filter((e) => !e.includes('*')), ...list.map((d) => d.event)]);
    const sel = $('#filter-event');
    const keep = sel.value;
    sel.replaceChildren(el('option', { value: '', text: 'any' }),
      ...[...events].sort().map((e) => el('option', { value: e, text: e })));
    sel.value = [...events].includes(keep) ? keep : '';
    renderDeliveries();
  }

  function renderDeliveries() {
    const state = $('#filter-state').value;
    const event = $('#filter-event').value;
    const shown = current.list.filter((d) => (!state || d.state === state) && (!event || d.event === event));
    $('#deliveries-list').replaceChildren(...shown.map((d) => deliveryItem(current.id, d)));
    const more = current.truncated ? ` (the newest ${current.list.length} read)` : '';
    status('deliveries', `${shown.length} of ${current.list.length} deliveries shown, newest first${more}.`);
  }

  function deliveryItem(webhookId, d, afterRedrive) {
    const body = el('div', {});
    const item = el('details', { class: 'delivery', 'data-delivery': d.id, 'data-state': d.state },
      el('summary', {},
        badge(d.state),
        el('span', { class: 'mono', text: d.event }),
        el('span', { 'data-last-status': '' }, d.lastStatus != null ? `HTTP ${d.lastStatus}` : d.lastError ? 'no response' : '—'),
        el('span', { text: `${d.attempts} attempt(s)` }),
        d.test ? el('span', { class: 'chip', text: 'test' }) : null,
        el('span', { class: 'muted', text: when(d.createdAt) })),
      body);
    item.addEventListener('toggle', () => {
      if (item.open && !body.dataset.loaded) {
        body.dataset.loaded = '1';
        fillDelivery(body, webhookId, d, afterRedrive).catch((e) => {
          if (!(e instanceof SignedOut)) body.append(el('p', { class: 'error', text: `Could not load: ${e.message}` }));
        });
      }
    });
    return item;
  }

  async function fillDelivery(body, webhookId, d, afterRedrive) {
    const path = `/v1/webhooks/${encodeURIComponent(webhookId)}/deliveries/${encodeURIComponent(d.id)}`;
    body.append(el('p', {}, 'Delivery ', el('code', { text: d.id }), ' · idempotency key ', el('code', { text: d.idempotencyKey })));
    if (d.state === 'pending' && d.nextAttemptAt) body.append(el('p', { text: `Next attempt: ${when(d.nextAttemptAt)}` }));
    if (d.lastError) body.append(el('p', { class: 'state-dead', text: `Last error: ${d.lastError}` }));
    body.append(el('h4', { text: 'Attempts' }));
    body.append(d.attemptLog.length
      ? el('table', {},
        el('thead', {}, el('tr', {}, ['#', 'Started', 'Status', 'Latency', 'Error'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, d.attemptLog.map((a) => el('tr', {},
          el('td', { 'data-label': '#', text: a.attempt }),
          el('td', { 'data-label': 'Started', text: when(a.startedAt) }),
          el('td', { 'data-label': 'Status', text: a.statusCode ?? '—' }),
          el('td', { 'data-label': 'Latency', text: `${a.latencyMs} ms` }),
          el('td', { 'data-label': 'Error', text: a.error || '' })))))
      : el('p', { class: 'muted', text: 'No attempt yet.' }));
    if (d.state === 'dead') {
      const button = el('button', { type: 'button', class: 'redrive' }, 'Redrive this delivery');
      button.addEventListener('click', async () => {
        button.disabled = true;
        try {
          await api(`${path}/redrive`, { method: 'POST' });
          (afterRedrive || (() => loadDeliveries(webhookId)))();
        } catch (e) {
          button.disabled = false;
          if (!(e instanceof SignedOut)) body.append(el('p', { class: 'error', text: `Redrive failed: ${e.message}` }));
        }
      });
      body.append(el('div', { class: 'actions' }, button));
    }
    body.append(el('h4', { text: 'Envelope as sent (body of every attempt; headers and signatures are not shown)' }));
    const envelope = await api(`${path}/envelope`, { raw: true });
    let pretty = envelope;
    try { pretty = JSON.stringify(JSON.parse(envelope), null, 2); } catch { /* shown as is */ }
    body.append(el('pre', { class: 'envelope', tabindex: '0', 'aria-label': 'Envelope' }, el('code', { text: pretty })));
  }

  // --- Dead letters --------------------------------------------------------------------------
  async function loadDead() {
    status('dead', 'Loading…');
    const hooks = await allWebhooks();
    const stats = await Promise.all(hooks.map((w) => api(`/v1/webhooks/${encodeURIComponent(w.id)}/stats`)));
    const cards = [];
    for (const [i, w] of hooks.entries()) {
      if (stats[i].dead === 0) continue;
      const { list } = await deliveriesOf(w.id);
      const dead = list.filter((d) => d.state === 'dead');
      const all = el('button', { type: 'button', class: 'redrive-all' }, `Redrive all (${stats[i].dead})`);
      all.addEventListener('click', async () => {
        all.disabled = true;
        try {
          const r = await api(`/v1/webhooks/${encodeURIComponent(w.id)}/redrive`, { method: 'POST' });
          status('dead', `${r.redriven} dead ${r.redriven === 1 ? 'delivery' : 'deliveries'} of ${w.url} queued again.`);
          await loadDead();
        } catch (e) {
          all.disabled = false;
          reportError('dead', e);
        }
      });
      cards.push(el('article', { class: 'card', 'data-webhook': w.id },
        el('h3', { class: 'url', text: w.url }),
        el('div', { class: 'actions' }, all, el('a', { href: `#deliveries/${encodeURIComponent(w.id)}` }, 'All deliveries')),
        dead.map((d) => deliveryItem(w.id, d, () => loadDead()))));
    }
    $('#dead-list').replaceChildren(...cards);
    if (!cards.length) status('dead', 'No dead deliveries.');
    else if (!/queued again/.test(document.querySelector('#view-dead .status').textContent)) status('dead', '');
    const sel = $('#test-webhook');
    const keep = sel.value;
    sel.replaceChildren(...hooks.map((w) => el('option', { value: w.id, text: w.url })));
    if (hooks.some((w) => w.id === keep)) sel.value = keep;
    fillTestEvents(hooks);
    sel.onchange = () => fillTestEvents(hooks);
  }

  function fillTestEvents(hooks) {
    const w = hooks.find((h) => h.id === $('#test-webhook').value);
    $('#test-events').replaceChildren(...(w ? w.events : []).map((e) => el('option', { value: e })));
  }

  async function sendTest(event) {
    event.preventDefault();
    const id = $('#test-webhook').value;
    const name = $('#test-event').value.trim();
    const out = $('#test-result');
    if (!id) { out.textContent = 'There is no registration to send to.'; return; }
    out.textContent = 'Sending…';
    try {
      const r = await api(`/v1/webhooks/${encodeURIComponent(id)}/test`, { method: 'POST', body: name ? { event: name } : {} });
      out.replaceChildren('Test delivery ', el('code', { text: r.deliveryId || '—' }), ` of ${r.event} queued. `,
        el('a', { href: `#deliveries/${encodeURIComponent(id)}` }, 'See it among the deliveries'), '.');
    } catch (e) {
      if (!(e instanceof SignedOut)) out.textContent = `Not sent: ${e.message}`;
    }
  }

  // --- Catalog -------------------------------------------------------------------------------
  async function loadCatalog() {
    status('catalog', 'Loading…');
    const res = await api('/v1/events');
    const events = Array.isArray(res) ? res : res.data || res.events || [];
    $('#catalog-list').replaceChildren(...events.map(catalogItem));
    status('catalog', `${events.length} events in the catalog.`);
  }

  function catalogItem(e) {
    const body = el('div', {});
    const sources = (e.sources || []).map((s) =>
      el('li', {}, `${s.title || s.engine} (${s.engine}) from ${s.since}`,
        s.native ? ` as ${[].concat(s.native).join(', ')}` : '',
        s.configured ? el('span', { class: 'badge active', text: 'feeds this bridge' }) : ''));
    const item = el('details', { class: 'delivery event', 'data-event': e.name },
      el('summary', {},
        el('span', { class: 'mono', text: e.name }),
        el('span', { class: `badge ${e.status === 'available' ? 'active' : 'disabled'}`, text: e.status }),
        e.optIn ? el('span', { class: 'chip', text: 'opt-in' }) : null,
        el('span', { class: 'muted', text: e.description })),
      body);
    item.addEventListener('toggle', async () => {
      if (!item.open || body.dataset.loaded) return;
      body.dataset.loaded = '1';
      body.append(el('h4', { text: 'Sources that emit it' }),
        sources.length ? el('ul', {}, sources) : el('p', { class: 'muted', text: 'No known engine emits it.' }));
      if (e.reservedReason) body.append(el('p', { class: 'warning', text: e.reservedReason }));
      body.append(el('p', {}, el('a', { href: e.schemaUrl, download: '' }, 'Download the payload schema')));
      try {
        const full = await api(`/v1/events/${encodeURIComponent(e.name)}`);
        body.append(el('h4', { text: 'Example payload' }),
          el('pre', { tabindex: '0' }, el('code', { text: JSON.stringify((full.examples || [])[0] ?? null, null, 2) })),
          el('h4', { text: 'Payload schema' }),
          el('pre', { tabindex: '0' }, el('code', { text: JSON.stringify(full.schema, null, 2) })));
      } catch (err) {
        if (!(err instanceof SignedOut)) body.append(el('p', { class: 'error', text: `Could not load: ${err.message}` }));
      }
    });
    return item;
  }

  // --- Health --------------------------------------------------------------------------------
  const samples = []; // {t, ingested, delivered}: counter totals, ring buffer of RING
  let timer = null;

  function stopPolling() {
    if (timer) clearInterval(timer);
    timer = null;
  }

  async function startHealth() {
    stopPolling();
    await Promise.all([pollHealth(), loadIgnored()]);
    timer = setInterval(() => pollHealth().catch((e) => reportError('health', e)), POLL_MS);
  }

  // Sum of a counter's samples whose labels include every given label.
  function counterTotal(text, name, labels) {
    let total = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(name)) continue;
      const m = /^([a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
      if (!m || m[1] !== name) continue;
      if (Object.entries(labels).every(([k, v]) => (m[2] || '').includes(`${k}="${v}"`))) total += Number(m[3]);
    }
    return total;
  }

  async function pollHealth() {
    const [counts, metrics] = await Promise.all([
      api('/v1/stats'),
      fetch('/metrics', { cache: 'no-store', credentials: 'omit' }).then((r) => r.text()),
    ]);
    $('#health-counts').replaceChildren(...countsList(counts).children);
    samples.push({
      t: Date.now(),
      ingested: counterTotal(metrics, 'wabridge_events_ingested_total', { outcome: 'accepted' }),
      delivered: counterTotal(metrics, 'wabridge_delivery_attempts_total', { outcome: 'delivered' }),
    });
    while (samples.length > RING) samples.shift();
    drawRates();
    status('health', `Updated ${new Date().toLocaleTimeString()}.`);
  }

  function rates(key) {
    const out = [];
    for (let i = 1; i < samples.length; i += 1) {
      const dt = (samples[i].t - samples[i - 1].t) / 1000;
      out.push({ t: samples[i].t, v: dt > 0 ? Math.max(0, samples[i][key] - samples[i - 1][key]) / dt : 0 });
    }
    return out;
  }

  function drawRates() {
    const W = 800; const H = 200; const P = 34;
    const series = [['ingested', '#0b5cad', 'events accepted/s'], ['delivered', '#17632a', 'deliveries delivered/s']];
    const data = series.map(([k]) => rates(k));
    const max = Math.max(1, ...data.flat().map((p) => p.v));
    const now = Date.now();
    const span = RING * POLL_MS;
    const x = (t) => P + ((t - (now - span)) / span) * (W - 2 * P);
    const y = (v) => H - P + 10 - (v / max) * (H - P - 10);
    const svg = svgEl('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img' });
    const last = data.map((d) => (d.length ? d[d.length - 1].v : 0));
    svg.append(Object.assign(svgEl('title'), {
      textContent: `Rates over the last 5 minutes. Now: ${last[0].toFixed(1)} events accepted per second, ${last[1].toFixed(1)} deliveries delivered per second; peak ${max.toFixed(1)}.`,
    }));
    svg.append(svgEl('line', { x1: P, y1: H - P + 10, x2: W - P, y2: H - P + 10, stroke: '#505a66' }));
    svg.append(svgEl('line', { x1: P, y1: 10, x2: P, y2: H - P + 10, stroke: '#505a66' }));
    const label = (x0, y0, text, anchor) => {
      const t = svgEl('text', { x: x0, y: y0, 'font-size': 11, fill: '#1b1f24', 'text-anchor': anchor || 'start' });
      t.textContent = text;
      svg.append(t);
    };
    label(P - 4, 14, max.toFixed(1), 'end');
    label(P - 4, H - P + 10, '0', 'end');
    label(P, H - 4, '−5 min');
    label(W - P, H - 4, 'now', 'end');
    data.forEach((d, i) => {
      if (d.length < 1) return;
      const points = d.map((p) => `${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join(' ');
      svg.append(svgEl('polyline', { points, fill: 'none', stroke: series[i][1], 'stroke-width': 2 }));
    });
    const legend = el('p', { class: 'legend' }, series.map(([, , name], i) =>
      el('span', { class: i === 0 ? 'swatch-ingest' : 'swatch-delivery' }, `▬ ${name}: ${last[i].toFixed(1)}`)));
    $('#rates').replaceChildren(svg, legend);
  }

  async function loadIgnored() {
    const res = await api('/v1/ingest/ignored');
    const rows = res.data || [];
    $('#ignored-list').replaceChildren(rows.length
      ? el('table', {},
        el('thead', {}, el('tr', {}, ['Source', 'Event', 'Count', 'Last seen', 'Why'].map((h) => el('th', { scope: 'col', text: h })))),
        el('tbody', {}, rows.map((r) => el('tr', {},
          el('td', { 'data-label': 'Source', text: r.source }),
          el('td', { 'data-label': 'Event', class: 'mono', text: r.event }),
          el('td', { 'data-label': 'Count', text: r.count }),
          el('td', { 'data-label': 'Last seen', text: when(r.lastSeenAt) }),
          el('td', { 'data-label': 'Why', text: r.lastReason || '' })))))
      : el('p', { class: 'muted', text: 'No upstream event has been ignored.' }));
  }

  // --- Start ---------------------------------------------------------------------------------
  document.addEventListener('DOMContentLoaded', () => {
    $('#signin-form').addEventListener('submit', signIn);
    $('#signout').addEventListener('click', () => signOut('Signed out.'));
    $('#filter-state').addEventListener('change', renderDeliveries);
    $('#filter-event').addEventListener('change', renderDeliveries);
    $('#deliveries-refresh').addEventListener('click', () => loadDeliveries(current.id).catch((e) => reportError('deliveries', e)));
    $('#test-form').addEventListener('submit', sendTest);
    window.addEventListener('hashchange', route);
    if (sessionStorage.getItem(KEY)) showSignedIn();
    else signOut();
  });
})();
