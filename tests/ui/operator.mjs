// The operator page (/ui) of a real bridge, in Debian's Chromium driven by playwright-core.
//
// Starts the bridge binary (fresh SQLite file, known keys, a short retry schedule) and a
// receiver that answers 500 to the first registration until told otherwise; registers two
// webhooks and ingests events through the API; then, in the browser: a wrong key is refused
// with a message, signing in works from the keyboard alone, a dead delivery shows its status
// code, redriving it (one, then all) makes it delivered, a test delivery is sent, and no
// webhook secret nor the admin key appears in the page's HTML or in any response the page
// received. Screenshots of every view go to $SCREENSHOT_DIR (docs/img with UPDATE_SCREENSHOTS=1).
//
// Any failure exits non-zero.

import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const root = new URL('../..', import.meta.url).pathname;
const bin = join(root, 'target/debug/wabridge');
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const shots = process.env.SCREENSHOT_DIR;
mkdirSync(shots, { recursive: true });

const ADMIN_KEY = `ui-admin-${Math.random().toString(36).slice(2)}${Date.now()}`;
const INGEST_KEY = `ui-ingest-${Math.random().toString(36).slice(2)}${Date.now()}`;

let step = 'start';
const log = (msg) => console.log(`  ui: ${msg}`);
function check(cond, msg) {
  if (!cond) throw new Error(`${step}: ${msg}`);
}

async function until(what, fn, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(`${step}: timed out waiting for ${what} (last: ${last})`);
}

function freePort() {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// --- The receiver: /flaky answers 500 while `failing`, /ok always 200 ------------------------
let failing = true;
const received = [];
const receiver = createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString();
    const ok = req.url === '/ok' || !failing;
    received.push({ path: req.url, ok, body });
    res.writeHead(ok ? 200 : 500, { 'content-type': 'text/plain' });
    res.end(ok ? 'ok' : 'receiver down for the test');
  });
});
await new Promise((r) => receiver.listen(0, '127.0.0.1', r));
const rport = receiver.address().port;

// --- The bridge ------------------------------------------------------------------------------
const dir = mkdtempSync(join(tmpdir(), 'wabridge-ui-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const bridgeLog = [];
const bridge = spawn(bin, ['serve'], {
  env: {
    ...process.env,
    WABRIDGE_LISTEN: `127.0.0.1:${port}`,
    WABRIDGE_DATABASE_URL: `sqlite://${dir}/wabridge.db`,
    WABRIDGE_API_KEY: ADMIN_KEY,
    WABRIDGE_INGEST_KEY: INGEST_KEY,
    WABRIDGE_ALLOW_TARGETS: '127.0.0.1/32',
    WABRIDGE_RETRY_SCHEDULE: '0,100ms',
    WABRIDGE_LOG_FORMAT: 'json',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
bridge.stdout.on('data', (d) => bridgeLog.push(d.toString()));
bridge.stderr.on('data', (d) => bridgeLog.push(d.toString()));

let browser;
async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  bridge.kill('SIGTERM');
  receiver.close();
  rmSync(dir, { recursive: true, force: true });
}

async function call(method, path, body, key = ADMIN_KEY) {
  const res = await fetch(base + path, {
    method,
    headers: { 'x-api-key': key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, json: text ? JSON.parse(text) : null };
}

try {
  step = 'bridge start';
  await until('the bridge to be ready', async () => (await fetch(`${base}/readyz`)).ok);

  // --- Registrations and events, through the API ---------------------------------------------
  step = 'setup through the API';
  const flaky = await call('POST', '/v1/webhooks', {
    url: `http://127.0.0.1:${rport}/flaky`,
    events: ['message.received'],
    description: 'CRM (failing at first)',
  });
  check(flaky.status === 201, `registration answered ${flaky.status}`);
  const ok = await call('POST', '/v1/webhooks', {
    url: `http://127.0.0.1:${rport}/ok`,
    events: ['session.*', 'message.received'],
    description: 'n8n workflow',
  });
  check(ok.status === 201, `registration answered ${ok.status}`);
  const secrets = [flaky.json.secret, ok.json.secret];
  check(secrets.every((s) => typeof s === 'string' && s.length > 10), 'secrets returned at creation');

  const example = (await call('GET', '/v1/events/message.received')).json.examples[0];
  for (const [i, text] of ['Hi, is my order ready?', 'And the invoice?'].entries()) {
    const data = { ...example, id: `${example.id}${i}`, body: text };
    const r = await call('POST', '/v1/ingest', { event: 'message.received', sessionId: 's1', data }, INGEST_KEY);
    check(r.status === 202, `ingest answered ${r.status}: ${JSON.stringify(r.json)}`);
  }
  const status = (await call('GET', '/v1/events/session.status')).json.examples[0];
  const r2 = await call('POST', '/v1/ingest', { event: 'session.status', sessionId: 's1', data: status }, INGEST_KEY);
  check(r2.status === 202, `ingest answered ${r2.status}`);
  const ignored = await fetch(`${base}/v1/ingest/openwa`, {
    method: 'POST',
    headers: { 'x-api-key': INGEST_KEY, 'content-type': 'application/json', 'x-openwa-event': 'poll.vote' },
    body: JSON.stringify({
      event: 'poll.vote', timestamp: '2026-11-28T10:00:00.000Z', sessionId: 's1',
      idempotencyKey: 'poll_1', deliveryId: 'dlv_1b4e28ba-2fa1-11d2-883f-0016d3cca427', data: { from: 'x' },
    }),
  });
  check(ignored.status === 200, `an ignored engine event answered ${ignored.status}`);

  const flakyId = flaky.json.id;
  await until('both deliveries of the failing registration to be dead', async () => {
    const s = (await call('GET', `/v1/webhooks/${flakyId}/stats`)).json;
    return s.dead === 2 ? s : false;
  });
  log('two deliveries are dead, one of each of the others delivered');

  // --- The browser ---------------------------------------------------------------------------
  step = 'browser start';
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const context = await browser.newContext({ viewport: { width: 1100, height: 760 }, colorScheme: 'light' });
  const page = await context.newPage();
  const bodies = [];
  const problems = [];
  page.on('response', async (res) => {
    try {
      bodies.push({ url: res.url(), body: (await res.body()).toString('utf8') });
    } catch {
      /* a 304 or redirect has no body */
    }
  });
  page.on('console', (m) => {
    const url = m.location().url || '';
    // Expected: the browser's own favicon request, and the refused wrong key.
    const expected = /^Failed to load resource/.test(m.text())
      && (url.endsWith('/favicon.ico') || (step === 'wrong key' && /status of 401/.test(m.text())));
    if (!expected && (m.type() === 'error' || /Content Security Policy/i.test(m.text()))) {
      problems.push(`console (${step}): ${m.text()} ${url}`);
    }
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  const shot = async (name) => {
    await page.screenshot({ path: join(shots, `ui-${name}.png`) });
    log(`screenshot ui-${name}.png`);
  };

  step = 'page headers';
  const first = await page.goto(`${base}/ui`);
  check(first.status() === 200, `/ui answered ${first.status()}`);
  const csp = first.headers()['content-security-policy'] || '';
  check(csp.includes("default-src 'none'") && csp.includes("script-src 'self'"), `CSP: ${csp}`);

  step = 'wrong key';
  await page.fill('#key', INGEST_KEY);
  await page.click('#signin-form button[type=submit]');
  await until('the refusal message', async () => /not an admin key/.test(await page.textContent('#signin-error')));
  check(await page.isHidden('#nav'), 'the views stay hidden after a wrong key');
  await shot('signin');
  await page.fill('#key', '');

  step = 'keyboard-only sign-in';
  await page.reload();
  let focused = '';
  for (let i = 0; i < 10 && focused !== 'key'; i += 1) {
    await page.keyboard.press('Tab');
    focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
  }
  check(focused === 'key', 'Tab reaches the admin key field');
  const ring = await page.evaluate(() => getComputedStyle(document.activeElement).outlineStyle);
  check(ring !== 'none', 'the focused field shows a focus outline');
  await page.keyboard.type(ADMIN_KEY);
  await page.keyboard.press('Enter');
  await page.waitForSelector('#nav:not([hidden])');
  const storage = await page.evaluate(() => ({
    session: sessionStorage.getItem('wabridge.adminKey'),
    local: Object.keys(localStorage).length,
    cookie: document.cookie,
    input: document.querySelector('#key').value,
  }));
  check(storage.session === ADMIN_KEY, 'the key is in sessionStorage');
  check(storage.local === 0 && storage.cookie === '', 'nothing in localStorage or cookies');
  check(storage.input === '', 'the key field is cleared after sign-in');

  step = 'registrations view';
  const card = `article.registration[data-webhook="${flakyId}"]`;
  await page.waitForSelector(card);
  const deadCount = await page.textContent(`${card} dd[data-count="dead"]`);
  check(deadCount.trim() === '2', `the failing registration shows 2 dead, not ${deadCount}`);
  await shot('registrations');

  step = 'deliveries view: a failed delivery and its status code';
  await page.click(`${card} a[href^="#deliveries/"]`);
  await page.waitForSelector('#view-deliveries:not([hidden]) details.delivery');
  await page.selectOption('#filter-state', 'dead');
  const deadItems = page.locator('#deliveries-list details.delivery[data-state="dead"]');
  check((await deadItems.count()) === 2, 'two dead deliveries listed under the dead filter');
  check((await page.locator('#deliveries-list details.delivery[data-state="delivered"]').count()) === 0, 'the filter hides others');
  const target = deadItems.first();
  const deliveryId = await target.getAttribute('data-delivery');
  check(/HTTP 500/.test(await target.locator('summary').textContent()), 'the summary shows HTTP 500');
  await target.locator('summary').click();
  await target.locator('pre.envelope').waitFor();
  const attempts = await target.locator('tbody tr').allTextContents();
  check(attempts.length === 2 && attempts.every((t) => t.includes('500')), `the attempt log shows two 500s: ${attempts}`);
  const envelope = JSON.parse(await target.locator('pre.envelope').textContent());
  check(envelope.deliveryId === deliveryId && envelope.event === 'message.received', 'the envelope is the delivery\'s');
  const sent = received.find((x) => x.path === '/flaky' && JSON.parse(x.body).deliveryId === deliveryId);
  check(sent && JSON.stringify(JSON.parse(sent.body)) === JSON.stringify(envelope), 'the envelope shown is the one sent');
  await shot('deliveries');

  step = 'redrive one';
  failing = false;
  await target.locator('button.redrive').click();
  await page.selectOption('#filter-state', '');
  await until('the redriven delivery to show as delivered', async () => {
    await page.click('#deliveries-refresh');
    await page.waitForTimeout(200);
    return page.locator(`#deliveries-list details[data-delivery="${deliveryId}"][data-state="delivered"]`).count();
  });
  log(`redriven ${deliveryId}: delivered`);

  step = 'dead letters: redrive all';
  await page.click('nav a[data-view="dead"]');
  await page.waitForSelector('#dead-list button.redrive-all');
  await shot('dead-letters');
  await page.click('#dead-list button.redrive-all');
  await until('no dead deliveries left', async () => /No dead deliveries|queued again/.test(await page.textContent('#view-dead .status')));
  await until('the failing registration to have none dead', async () => (await call('GET', `/v1/webhooks/${flakyId}/stats`)).json.dead === 0);

  step = 'test delivery';
  await page.selectOption('#test-webhook', ok.json.id);
  await page.fill('#test-event', 'session.status');
  await page.click('#test-form button[type=submit]');
  await until('the test delivery to be queued', async () => /queued/.test(await page.textContent('#test-result')));
  await until('the test delivery to arrive', () => received.some((x) => x.path === '/ok' && JSON.parse(x.body).test === true));

  step = 'catalog view';
  await page.click('nav a[data-view="catalog"]');
  const ev = page.locator('details.event[data-event="message.received"]');
  await ev.waitFor();
  await ev.locator('summary').click();
  await ev.locator('pre').first().waitFor();
  check(/Dana/.test(await ev.textContent()), 'the example payload is shown');
  await shot('catalog');

  step = 'health view';
  await page.click('nav a[data-view="health"]');
  await page.waitForSelector('#rates svg');
  await until('the ignored poll.vote', async () => /poll\.vote/.test(await page.textContent('#ignored-list')));
  // Some traffic while the chart samples.
  for (let i = 0; i < 5; i += 1) {
    const data = { ...example, id: `${example.id}h${i}`, body: `load ${i}` };
    await call('POST', '/v1/ingest', { event: 'message.received', sessionId: 's1', data }, INGEST_KEY);
    await page.waitForTimeout(3100);
  }
  check((await page.locator('#rates polyline').count()) === 2, 'two rate lines are drawn');
  check(/delivered/.test(await page.textContent('#health-counts')), 'counts are shown');
  await shot('health');

  step = 'phone width';
  await page.setViewportSize({ width: 390, height: 844 });
  await page.click('nav a[data-view="registrations"]');
  await page.waitForSelector(card);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  check(overflow <= 0, `no sideways scrolling at 390 px (overflow ${overflow}px)`);
  await shot('phone');

  step = 'no secret in the page or its responses';
  const html = await page.content();
  for (const s of [...secrets, ADMIN_KEY]) {
    check(!html.includes(s), 'a secret or the admin key is in the page HTML');
    const hit = bodies.find((b) => b.body.includes(s));
    check(!hit, `a secret or the admin key is in the response of ${hit && hit.url}`);
  }
  check(bodies.length > 20, `responses were recorded (${bodies.length})`);
  check(problems.length === 0, `console errors or CSP violations: ${problems.join(' | ')}`);
  log(`${bodies.length} responses checked for secrets; none found`);
  await cleanup();
  console.log('operator page: all checks passed');
} catch (e) {
  console.error(`operator page test FAILED: ${e.stack || e}`);
  console.error(bridgeLog.join('').split('\n').slice(-30).join('\n'));
  await cleanup();
  process.exit(1);
}
