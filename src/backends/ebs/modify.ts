// Merging concurrent changes of one volume into one ModifyVolume call. EC2 allows one modification per
// volume at a time (and then none for six hours), so an expansion and a type/IOPS change that arrive
// together must become one call: requests for a volume made within a short window are merged; a request
// that contradicts one already in the window is ABORTED (the CO retries it after this one finished).
import { aborted } from '../../errors.js';
import type { ModifyVolumeInput } from './ec2.js';

type Key = keyof ModifyVolumeInput;
const KEYS: Key[] = ['sizeGiB', 'type', 'iops', 'throughput'];

interface Window {
  input: ModifyVolumeInput;
  promise: Promise<void>;
}

export class ModifyMerger {
  private readonly open = new Map<string, Window>();
  /** ModifyVolume calls sent (for tests) */
  calls = 0;

  constructor(
    /** sends the merged change and waits until it took effect */
    private readonly apply: (volumeId: string, input: ModifyVolumeInput) => Promise<void>,
    private readonly windowMs = 200,
  ) {}

  request(volumeId: string, input: ModifyVolumeInput): Promise<void> {
    const window = this.open.get(volumeId);
    if (window) {
      for (const key of KEYS) {
        const mine = input[key];
        const theirs = window.input[key];
        if (mine !== undefined && theirs !== undefined && mine !== theirs) {
          throw aborted(`volume ${volumeId} is being modified with ${key}=${theirs}; retry ${key}=${mine} when that has finished`);
        }
      }
      Object.assign(window.input, Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined)));
      return window.promise;
    }
    const fresh: Window = { input: { ...input }, promise: Promise.resolve() };
    fresh.promise = new Promise<void>((resolve) => setTimeout(resolve, this.windowMs)).then(() => {
      this.open.delete(volumeId); // later requests start a new window
      this.calls++;
      return this.apply(volumeId, fresh.input);
    });
    this.open.set(volumeId, fresh);
    return fresh.promise;
  }
}
