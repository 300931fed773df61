// What the ebs backend answers to GetCapacity.
//
// EBS is elastic: there is no pool the EC2 API reports that volumes are carved from (the account's per-type
// storage quotas live in the Service Quotas API, which this plugin does not call or need). GetCapacity is
// still advertised, because Mesos' storage local resource provider offers no storage pool at all without it
// (it counts the capacity as 0, so no CREATE_DISK is ever possible). The answer is the largest volume of the
// profile's type (gp3 16 TiB, io2 64 TiB, standard 1 TiB): Mesos reads only available_capacity and offers it
// as one RAW pool that disks are cut from, so a larger figure (efs answers 4 PiB) would offer disks no EBS
// volume can be (CreateVolume would fail OUT_OF_RANGE); the pool is back to that figure at every
// reconciliation, as the volumes made do not use it up. Kubernetes (storage capacity tracking) reads
// maximum_volume_size, answered with the same figure, and minimum_volume_size, the type's minimum.
// Parameters or capabilities no volume could be created with have no capacity (0), as the protocol layer
// answers for what it refuses itself.
import type { VolumeCapability, CapacityInfo } from '../backend.js';
import { isCsiError } from '../../errors.js';
import { parseVolumeSpec, SIZE_LIMITS_GIB, type VolumeSpec } from './params.js';

const GiB = 1024 ** 3;
const NONE: CapacityInfo = { availableBytes: 0 };

/**
 * @param zone the zone of GetCapacity's accessible_topology, if one was given
 * @param region the plugin's region: a zone outside it has no capacity here
 */
export function ebsCapacity(
  parameters: Record<string, string>,
  capabilities: VolumeCapability[],
  zone: string | undefined,
  region: string,
): CapacityInfo {
  let spec: VolumeSpec;
  try {
    spec = parseVolumeSpec(parameters);
  } catch (e) {
    if (isCsiError(e, 'INVALID_ARGUMENT')) return NONE;
    throw e;
  }
  // The same rule CreateVolume applies: Multi-Attach exists only for io2 block volumes.
  const multiAttach = capabilities.some((c) => c.accessMode === 'MULTI_NODE_MULTI_WRITER');
  if (multiAttach && (spec.type !== 'io2' || capabilities.some((c) => c.accessType !== 'block'))) return NONE;
  // Zone names start with their region's name (us-east-1a, us-west-2-lax-1a).
  if (zone !== undefined && !zone.startsWith(region)) return NONE;
  const { min, max } = SIZE_LIMITS_GIB[spec.type];
  return { availableBytes: max * GiB, maximumVolumeSize: max * GiB, minimumVolumeSize: min * GiB };
}
