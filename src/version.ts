import { readFileSync } from 'node:fs';

// The version is package.json's, read once, so GetPluginInfo can never disagree with the package.
export const VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
  .version;
