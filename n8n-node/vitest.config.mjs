import { createRequire } from 'node:module';
import { defineConfig } from 'vitest/config';

const require = createRequire(import.meta.url);

export default defineConfig({
	resolve: {
		// n8n loads the CommonJS build of n8n-workflow; so do the tests (the ESM build's
		// extensionless imports only work through a bundler, and its source maps are absent).
		alias: { 'n8n-workflow': require.resolve('n8n-workflow') },
	},
	test: {
		include: ['test/**/*.test.ts'],
	},
});
