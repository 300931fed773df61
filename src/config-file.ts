import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { OptionSpec } from './backends/backend.js';

// `--config FILE`: the same settings as the serve flags, written without the leading "--", in JSON or YAML:
//
//   backend: loop
//   pool-dir: /var/lib/rexcsi/pool
//   log-level: debug
//   metrics-address: 127.0.0.1:9808
//
// A file only fills in what flags and environment variables leave unset. Anything wrong in it stops start-up
// with one line naming the file, the setting, the value and what is allowed.

export type FileValue = string | boolean | string[];

export class ConfigFileError extends Error {}

export function readConfigFile(path: string, specs: Record<string, OptionSpec>): Record<string, FileValue> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ConfigFileError(
      `--config=${JSON.stringify(path)}: ${code === 'ENOENT' ? 'no such file' : `cannot read it (${code ?? String(e)})`}`,
    );
  }
  const parsed = parseText(path, text);
  if (parsed === null || parsed === undefined) return {}; // an empty file sets nothing
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigFileError(
      `config file ${path}: expected a mapping of settings (setting: value), found ${Array.isArray(parsed) ? 'a list' : typeof parsed}`,
    );
  }
  const out: Record<string, FileValue> = {};
  for (const [key, value] of Object.entries(parsed as Record<string, unknown>)) {
    const spec = specs[key];
    if (key === 'config') throw new ConfigFileError(`config file ${path}: "config" cannot be set inside a config file`);
    if (!spec) {
      const hint = specs[key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)]
        ? ` (write it as ${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)})`
        : '';
      throw new ConfigFileError(
        `config file ${path}: unknown setting ${JSON.stringify(key)}${hint}; settings are the serve flags without "--" (see docs/configuration.md)`,
      );
    }
    if (value === null || value === undefined) continue; // "setting:" with no value leaves the default
    out[key] = convert(path, key, value, spec);
  }
  return out;
}

function parseText(path: string, text: string): unknown {
  try {
    return extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    const message = (e instanceof Error ? e.message : String(e)).split('\n', 1)[0];
    throw new ConfigFileError(`config file ${path}: not valid ${extname(path).toLowerCase() === '.json' ? 'JSON' : 'YAML'}: ${message}`);
  }
}

function convert(path: string, key: string, value: unknown, spec: OptionSpec): FileValue {
  const bad = (allowed: string): ConfigFileError =>
    new ConfigFileError(`config file ${path}: ${key}=${JSON.stringify(value)}: expected ${allowed}`);
  if (spec.type === 'boolean') {
    if (typeof value === 'boolean') return value;
    if (value === 'true' || value === 'false') return value === 'true';
    throw bad('true or false');
  }
  const scalar = (v: unknown): string | undefined =>
    typeof v === 'string' ? v : typeof v === 'number' && Number.isFinite(v) ? String(v) : undefined;
  if (spec.multiple) {
    const list = Array.isArray(value) ? value.map(scalar) : scalar(value)?.split(',');
    if (!list || list.some((v) => v === undefined)) throw bad('a list of strings');
    return list as string[];
  }
  const s = scalar(value);
  if (s === undefined) throw bad('a string or a number');
  return s;
}
