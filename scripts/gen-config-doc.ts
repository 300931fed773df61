// Rewrites the settings table in docs/configuration.md from the option specs (npm run docs:config).
import { readFileSync, writeFileSync } from 'node:fs';
import { withCurrentTable } from '../src/config-doc.js';

const path = new URL('../docs/configuration.md', import.meta.url);
const before = readFileSync(path, 'utf8');
const after = withCurrentTable(before);
if (after !== before) writeFileSync(path, after);
process.stdout.write(after !== before ? 'docs/configuration.md: settings table updated\n' : 'docs/configuration.md: up to date\n');
