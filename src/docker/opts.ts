import type { BackendFeatures } from '../backends/backend.js';
import { acceptsKey } from '../csi/validate.js';
import { invalidArgument } from '../errors.js';

// Docker volume Opts (`docker volume create -o k=v`, dvdcli --volumeopts, Marathon's dvdi/* options) to the
// backend's CSI parameters. Besides the parameter names themselves, the spellings REX-Ray users have in
// their task specs are understood, and `size` is the capacity (a bare number is GiB, as REX-Ray read it).

export interface CreateShape {
  /** CSI parameters for CreateVolume */
  parameters: Record<string, string>;
  /** capacity_range.required_bytes; 0 = the backend's default size */
  requiredBytes: number;
  /** accessibility requirement from availabilityZone, e.g. {'topology.rexcsi.io/zone': 'us-east-1a'} */
  topology?: Record<string, string>;
}

/** REX-Ray's option names (left) and the backend parameter each one is (right). */
const ALIASES: Record<string, string> = {
  volumeType: 'type',
  volumetype: 'type',
  fsType: 'fsType',
  fstype: 'fsType',
  iops: 'iops',
  IOPS: 'iops',
  encrypted: 'encrypted',
  encryptionKey: 'kmsKeyId',
};

const ZONE_OPTIONS = ['availabilityZone', 'availabilityzone'];

const GIB = 2 ** 30;
const SIZE_UNITS: Record<string, number> = {
  ki: 2 ** 10,
  mi: 2 ** 20,
  gi: GIB,
  ti: 2 ** 40,
  k: 1e3,
  m: 1e6,
  g: 1e9,
  t: 1e12,
};

/** "16" (GiB), "64Mi", "10Gi", "1Ti", "500M", "10G" (decimal), with an optional trailing "B" -> bytes. */
export function parseDockerSize(value: string): number {
  const m = /^(\d+)\s*([kmgt]i?)?b?$/i.exec(value.trim());
  const unit = m ? (m[2] ? SIZE_UNITS[m[2].toLowerCase()] : GIB) : undefined;
  const bytes = m && unit !== undefined ? Number(m[1]) * unit : NaN;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw invalidArgument(`size=${JSON.stringify(value)}: expected a size such as 16 (GiB), 64Mi, 10Gi or 1Ti`);
  }
  return bytes;
}

export function mapOpts(
  opts: Record<string, string>,
  features: Pick<BackendFeatures, 'parameterKeys' | 'topologyKeys'>,
  backendName: string,
): CreateShape {
  const shape: CreateShape = { parameters: {}, requiredBytes: 0 };
  const accepted = ['size', ...features.parameterKeys];
  for (const [key, value] of Object.entries(opts)) {
    if (key === 'size') {
      shape.requiredBytes = parseDockerSize(value);
    } else if (ZONE_OPTIONS.includes(key)) {
      const zoneKey = features.topologyKeys.find((k) => k.endsWith('/zone'));
      if (!zoneKey) throw invalidArgument(`option ${key}: the ${backendName} backend has no availability zones`);
      shape.topology = { [zoneKey]: value };
    } else {
      const parameter = ALIASES[key] ?? key;
      if (!acceptsKey(features.parameterKeys, parameter)) {
        const what = parameter === key ? `option ${key}` : `option ${key} (the ${parameter} parameter)`;
        throw invalidArgument(`${what} is not something the ${backendName} backend can do (its options: ${accepted.join(', ')})`);
      }
      if (shape.parameters[parameter] !== undefined && shape.parameters[parameter] !== value) {
        throw invalidArgument(
          `options give ${parameter} twice, as ${JSON.stringify(shape.parameters[parameter])} and ${JSON.stringify(value)}`,
        );
      }
      shape.parameters[parameter] = value;
    }
  }
  return shape;
}

/**
 * Why an existing volume does not answer a Create with these options (naming the first difference), or
 * undefined. Only what the options ask for is compared: a Create with fewer options takes the volume as it is.
 */
export function optsDifference(
  existing: { capacityBytes: number; parameters: Record<string, string>; context: Record<string, string> },
  shape: CreateShape,
): string | undefined {
  if (shape.requiredBytes > existing.capacityBytes) {
    return `it has ${existing.capacityBytes} bytes, less than size ${shape.requiredBytes}`;
  }
  for (const [key, value] of Object.entries(shape.parameters)) {
    // a volume made without fsType has the backend's default, which its context records
    const had = existing.parameters[key] ?? (key === 'fsType' ? existing.context.fsType : undefined);
    if (had !== value)
      return `it was created with ${key}=${had === undefined ? '(not set)' : JSON.stringify(had)}, not ${JSON.stringify(value)}`;
  }
  return undefined;
}
