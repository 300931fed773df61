import { invalidArgument } from '../errors.js';

// A Docker volume name is the CSI volume name, and it is also a directory under --docker-root
// (<root>/<name>/data), so it must be one safe path component: no '/', no '..', nothing hidden.

export const MAX_NAME_BYTES = 128; // the CSI string limit

/** Letters, digits, '_', '.', '-', starting with a letter or digit (Docker's own rule for volume names). */
const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Why `name` cannot be a Docker volume name, or undefined when it can. */
export function nameProblem(name: unknown): string | undefined {
  if (typeof name !== 'string') return `Name must be a string, not ${name === null ? 'null' : typeof name}`;
  if (name === '') return 'Name is required';
  if (Buffer.byteLength(name) > MAX_NAME_BYTES) return `Name is ${Buffer.byteLength(name)} bytes long; the limit is ${MAX_NAME_BYTES}`;
  if (name.includes('/')) return `Name ${JSON.stringify(name)} must not contain "/"`;
  if (name.includes('..')) return `Name ${JSON.stringify(name)} must not contain ".."`;
  if (!NAME.test(name)) {
    return `Name ${JSON.stringify(name)} may only contain letters, digits, "_", "." and "-", and must start with a letter or digit`;
  }
  return undefined;
}

/** The name, checked; INVALID_ARGUMENT naming the problem otherwise. */
export function checkName(name: unknown): string {
  const problem = nameProblem(name);
  if (problem) throw invalidArgument(problem);
  return name as string;
}
