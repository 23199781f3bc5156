// Screenshots of the node in n8n's editor, taken by e2e/run.sh (E2E_SCREENSHOTS=DIR) from the real
// n8n of the end-to-end test, with the system's Chromium driven by playwright-core.
//
// Input (environment): N8N (base URL), N8N_AUTH_COOKIE (the owner's n8n-auth cookie value),
// BROWSER_ID (the browser-id that cookie was issued for), WORKFLOW_ID and NODE_ID (the workflow
// with the trigger), REFUSED_WORKFLOW_ID (optional: a workflow whose activation the bridge
// refused), OUT_DIR, PLAYWRIGHT (path of the playwright-core module), CHROMIUM (executable).
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const env = (name, fallback) => {
	const value = process.env[name] ?? fallback;
	if (value === undefined) throw new Error(`${name} is not set`);
	return value;
};
const N8N = env('N8N');
const OUT_DIR = env('OUT_DIR');
const require = createRequire(import.meta.url);
const { chromium } = require(env('PLAYWRIGHT'));

const profile = mkdtempSync(join(tmpdir(), 'wabridge-chromium-'));
// A fresh profile (--user-data-dir) per run: playwright passes it through launchPersistentContext.
const context = await chromium.launchPersistentContext(profile, {
	executablePath: env('CHROMIUM', '/usr/bin/chromium'),
	headless: true,
	viewport: { width: 1440, height: 900 },
	args: [
		'--headless',
		'--no-sandbox',
		'--disable-gpu',
		'--disable-quic',
		'--no-first-run',
		'--disable-background-networking',
		'--disable-component-update',
		'--disable-sync',
	],
});
const failures = [];
try {
	const url = new URL(N8N);
	await context.addCookies([
		{ name: 'n8n-auth', value: env('N8N_AUTH_COOKIE'), domain: url.hostname, path: '/' },
	]);
	await context.addInitScript((id) => {
		window.localStorage.setItem('n8n-browserId', id);
	}, env('BROWSER_ID'));
	const page = await context.newPage();

	const shot = async (name, take) => {
		try {
			await take();
			await page.screenshot({ path: join(OUT_DIR, `${name}.png`) });
			console.log(`screenshot ${name}.png`);
		} catch (error) {
			failures.push(`${name}: ${error.message.split('\n')[0]}`);
			await page.screenshot({ path: join(OUT_DIR, `${name}.failed.png`) }).catch(() => {});
		}
	};
	const dismissPopups = async () => {
		for (const label of ['Skip', 'Got it', 'Close', 'Dismiss']) {
			const button = page.getByRole('button', { name: label, exact: true });
			if (await button.first().isVisible().catch(() => false)) {
				await button.first().click().catch(() => {});
			}
		}
		await page.keyboard.press('Escape').catch(() => {});
	};

	// The trigger's parameters: the picked events labelled by family ("Session: QR").
	await shot('trigger-node', async () => {
		await page.goto(`${N8N}/workflow/${env('WORKFLOW_ID')}`, { waitUntil: 'networkidle' });
		await page.waitForSelector('[data-test-id="canvas-node"]', { timeout: 30_000 });
		await dismissPopups();
		await page.locator('[data-test-id="canvas-node"]').first().dblclick();
		const events = page.locator('[data-test-id="parameter-input-events"]').first();
		await events.waitFor({ timeout: 15_000 });
		await page.getByText('Session: QR', { exact: true }).first().waitFor({ timeout: 15_000 });
		await page.waitForTimeout(500);
	});

	// The workflow on the canvas.
	await shot('workflow', async () => {
		await page.goto(`${N8N}/workflow/${env('WORKFLOW_ID')}`, { waitUntil: 'networkidle' });
		await page.waitForSelector('[data-test-id="canvas-node"]', { timeout: 30_000 });
		await dismissPopups();
		await page.waitForTimeout(500);
	});

	// A workflow whose trigger the bridge refused: n8n 2.41 marks its Publish button, and the
	// tooltip names the failed trigger (the bridge's message was shown as a toast at publish
	// time and is kept in the publication status).
	const refused = process.env.REFUSED_WORKFLOW_ID;
	if (refused) {
		await shot('publish-failed', async () => {
			await page.goto(`${N8N}/workflow/${refused}`, { waitUntil: 'networkidle' });
			await page.waitForSelector('[data-test-id="canvas-node"]', { timeout: 30_000 });
			await dismissPopups();
			const marker = page.getByText(/refused to register the webhook|Failed triggers/).first();
			// n8n 2.41 marks the Publish button of a failed publication; hovering it tells why.
			for (const selector of [
				'[data-test-id="workflow-open-publish-modal-button"]',
				'[data-test-id="workflow-publish-button"]',
				'[data-test-id="node-issues"]',
				'[data-test-id="canvas-node-status-issues"]',
			]) {
				if (await marker.isVisible().catch(() => false)) break;
				const el = page.locator(selector).first();
				if (!(await el.isVisible().catch(() => false))) continue;
				await el.hover().catch(() => {});
				await marker.waitFor({ timeout: 5_000 }).catch(() => {});
			}
			await marker.waitFor({ timeout: 15_000 });
			await page.waitForTimeout(500);
		});
	}
} finally {
	await context.close();
	rmSync(profile, { recursive: true, force: true });
}
if (failures.length > 0) {
	console.error(`screenshots failed:\n- ${failures.join('\n- ')}`);
	process.exit(1);
}
