import type { AccessPoint, Tag } from './api.js';

// What rexcsi records on an access point it made, as tags: the truth lives in EFS, so a restarted or
// second controller finds volumes by name without local state. EFS tag values allow only letters, digits,
// spaces and _ . : / = + - @ (at most 256 characters), so the CO's name and the parameters are stored
// base64url-encoded, the parameters split over as many tags as they need.

export const TAG_NAME = 'rexcsi.io/name';
export const TAG_CAPACITY = 'rexcsi.io/capacity';
export const TAG_PARAMETERS = 'rexcsi.io/parameters';
/** Set once the creating controller checked that no other access point took the same name or gid. */
export const TAG_READY = 'rexcsi.io/ready';
const MAX_TAG_VALUE = 256;

export interface ManagedInfo {
  name: string;
  capacityBytes: number;
  parameters: Record<string, string>;
  ready: boolean;
}

export function encodeName(name: string): string {
  return Buffer.from(name, 'utf8').toString('base64url');
}

export function managedTags(name: string, capacityBytes: number, parameters: Record<string, string>): Tag[] {
  const tags: Tag[] = [
    { key: 'Name', value: tagSafe(name) },
    { key: TAG_NAME, value: encodeName(name) },
    { key: TAG_CAPACITY, value: String(capacityBytes) },
  ];
  const sorted = Object.fromEntries(Object.entries(parameters).sort(([a], [b]) => a.localeCompare(b)));
  const encoded = Buffer.from(JSON.stringify(sorted), 'utf8').toString('base64url');
  for (let i = 0; i * MAX_TAG_VALUE < encoded.length; i++) {
    tags.push({ key: `${TAG_PARAMETERS}.${i}`, value: encoded.slice(i * MAX_TAG_VALUE, (i + 1) * MAX_TAG_VALUE) });
  }
  return tags;
}

/** The Name tag shown in the AWS console: the CO's name where EFS allows its characters. */
function tagSafe(name: string): string {
  return name.replace(/[^\p{L}\p{Z}\p{N}_.:/=+\-@]/gu, '_').slice(0, MAX_TAG_VALUE);
}

/** What rexcsi recorded on this access point, or undefined when rexcsi did not make it. */
export function readManaged(ap: AccessPoint): ManagedInfo | undefined {
  const tag = (key: string) => ap.tags.find((t) => t.key === key)?.value;
  const encodedName = tag(TAG_NAME);
  if (encodedName === undefined) return undefined;
  const chunks: string[] = [];
  for (let i = 0; ; i++) {
    const chunk = tag(`${TAG_PARAMETERS}.${i}`);
    if (chunk === undefined) break;
    chunks.push(chunk);
  }
  let parameters: Record<string, string> = {};
  try {
    const parsed: unknown = JSON.parse(Buffer.from(chunks.join(''), 'base64url').toString('utf8'));
    if (parsed && typeof parsed === 'object') parameters = parsed as Record<string, string>;
  } catch {
    // damaged or missing: reported with no parameters, so a CreateVolume of that name is refused, not merged
  }
  const capacity = Number(tag(TAG_CAPACITY) ?? '0');
  return {
    name: Buffer.from(encodedName, 'base64url').toString('utf8'),
    capacityBytes: Number.isSafeInteger(capacity) && capacity >= 0 ? capacity : 0,
    parameters,
    ready: tag(TAG_READY) === 'true',
  };
}
