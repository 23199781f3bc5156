// Validates an AsyncAPI document with the official parser (@asyncapi/parser), independently of
// wabridge's own code. Usage: node validate.mjs <file.json> (or - for standard input).
// Prints every diagnostic; exits 1 when the parser reports an error or a warning, or cannot
// build a document, 0 otherwise.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node validate.mjs <asyncapi.json | ->');
  process.exit(2);
}
const text = readFileSync(path === '-' ? 0 : path, 'utf8');
const parser = new Parser();
const { document, diagnostics } = await parser.parse(text, { source: path === '-' ? undefined : path });
const names = { [DiagnosticSeverity.Error]: 'error', [DiagnosticSeverity.Warning]: 'warning',
  [DiagnosticSeverity.Information]: 'info', [DiagnosticSeverity.Hint]: 'hint' };
let failed = document === undefined;
for (const d of diagnostics) {
  const severity = names[d.severity] ?? String(d.severity);
  console.log(`${severity}: ${d.code}: ${d.message} at /${d.path.join('/')}`);
  if (d.severity === DiagnosticSeverity.Error || d.severity === DiagnosticSeverity.Warning) failed = true;
}
if (failed) {
  console.log('asyncapi: the document is not valid');
  process.exit(1);
}
console.log(`asyncapi: valid AsyncAPI ${document.version()} document, ` +
  `${document.channels().length} channels, ${document.operations().length} operations, ` +
  `${document.messages().length} messages`);
