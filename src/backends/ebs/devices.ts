// Device names for AttachVolume, per instance. EC2 needs a name not in use on the instance; two attaches
// running at once on one instance must not pick the same one, so a name is reserved here from the moment
// it is chosen until the attachment shows up in EC2 (or the attach failed).
import { resourceExhausted } from '../../errors.js';

/** /dev/xvdba .. /dev/xvdzz: the range the Kubernetes EBS driver uses too, clear of root and instance-store names. */
export function candidateNames(): string[] {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const names: string[] = [];
  for (const first of letters.slice(1)) for (const second of letters) names.push(`/dev/xvd${first}${second}`);
  return names;
}

const CANDIDATES = candidateNames();

export class DeviceAllocator {
  private readonly reserved = new Map<string, Set<string>>();

  /** A free name on the instance: neither in `inUse` (from EC2) nor reserved by a running attach here. */
  allocate(instanceId: string, inUse: Iterable<string>): string {
    const taken = new Set([...inUse, ...(this.reserved.get(instanceId) ?? [])].map(shortName));
    const name = CANDIDATES.find((n) => !taken.has(shortName(n)));
    if (!name) throw resourceExhausted(`instance ${instanceId} has no free device name left`);
    let set = this.reserved.get(instanceId);
    if (!set) this.reserved.set(instanceId, (set = new Set()));
    set.add(name);
    return name;
  }

  release(instanceId: string, name: string): void {
    const set = this.reserved.get(instanceId);
    set?.delete(name);
    if (set?.size === 0) this.reserved.delete(instanceId);
  }

  /**
   * Names reserved by attaches still running here, less those already in `inUse` (EC2 lists an attachment
   * before its attach has finished waiting: it must not count twice against the attach limit).
   */
  reservedCount(instanceId: string, inUse: Iterable<string> = []): number {
    const listed = new Set([...inUse].map(shortName));
    return [...(this.reserved.get(instanceId) ?? [])].filter((n) => !listed.has(shortName(n))).length;
  }
}

/** /dev/sdf and /dev/xvdf name the same slot on Xen instances. */
function shortName(device: string): string {
  return device.replace(/^\/dev\//, '').replace(/^(xvd|sd)/, '');
}
