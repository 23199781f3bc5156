// Checks what `npm pack` would publish: every file n8n loads (the nodes and credentials named in
// package.json "n8n", their icons and codex files), the README, CHANGELOG and LICENSE, and nothing
// else (no sources, tests, e2e, screenshots or build leftovers). Also refuses placeholder metadata.
// Run after `npm run build`: node scripts/check-pack.mjs
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const problems = [];

const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
	cwd: new URL('..', import.meta.url),
	encoding: 'utf8',
	stdio: ['ignore', 'pipe', 'pipe'],
});
const [report] = JSON.parse(out);
const files = report.files.map((f) => f.path).sort();

// Everything that may be published: metadata documents and the compiled package.
const allowed = [
	/^package\.json$/,
	/^README\.md$/,
	/^CHANGELOG\.md$/,
	/^LICENSE$/,
	/^dist\/package\.json$/,
	/^dist\/(credentials|nodes)\/.+\.(js|js\.map|d\.ts|json|svg)$/,
];
for (const file of files) {
	if (!allowed.some((re) => re.test(file))) problems.push(`unexpected file in the package: ${file}`);
}

// Everything that must be published.
const required = ['package.json', 'README.md', 'CHANGELOG.md', 'LICENSE'];
for (const entry of [...pkg.n8n.nodes, ...pkg.n8n.credentials]) {
	required.push(entry);
	const base = entry.replace(/\.js$/, '');
	if (entry.includes('/nodes/')) required.push(`${base}.json`); // the codex file
	const dir = entry.slice(0, entry.lastIndexOf('/'));
	required.push(`${dir}/wabridge.svg`, `${dir}/wabridge.dark.svg`);
}
for (const file of required) {
	if (!files.includes(file)) problems.push(`missing from the package: ${file}`);
}

// Metadata a registry page shows: real, not placeholders.
const text = JSON.stringify({
	homepage: pkg.homepage,
	author: pkg.author,
	repository: pkg.repository,
	bugs: pkg.bugs,
});
for (const field of ['homepage', 'author', 'repository', 'bugs', 'license', 'description']) {
	if (!pkg[field]) problems.push(`package.json has no "${field}"`);
}
if (/\.invalid\b|example\.(com|org)|localhost|TODO|FIXME|your-?name/i.test(text)) {
	problems.push(`package.json metadata looks like a placeholder: ${text}`);
}
if (!pkg.keywords?.includes('n8n-community-node-package')) {
	problems.push('package.json keywords lack "n8n-community-node-package"');
}
if (pkg.dependencies && Object.keys(pkg.dependencies).length > 0) {
	problems.push('community nodes must not have runtime dependencies');
}
const maxUnpacked = 300 * 1024;
if (report.unpackedSize > maxUnpacked) {
	problems.push(`the package unpacks to ${report.unpackedSize} bytes (limit ${maxUnpacked})`);
}

if (problems.length > 0) {
	console.error(`npm pack check failed:\n- ${problems.join('\n- ')}`);
	process.exit(1);
}
console.log(
	`npm pack check: ${files.length} files, ${report.size} bytes packed, ${report.unpackedSize} unpacked: ok`,
);
