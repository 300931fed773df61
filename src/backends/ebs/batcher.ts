// DescribeVolumes batching: look-ups of single volumes made within a short window go out as one
// DescribeVolumes call, so fifty concurrent attach waits poll EC2 once per round instead of fifty times
// (the request rate limit is per account). waitFor() polls through it with exponential backoff.
import { CsiError } from '../../errors.js';
import type { Ec2, EbsVolume } from './ec2.js';

interface Pending {
  resolve(v: EbsVolume | undefined): void;
  reject(e: unknown): void;
}

export interface BatcherOptions {
  /** how long a look-up waits for others to join its call */
  windowMs?: number;
  /** at most this many ids per call */
  maxBatch?: number;
  /** first and longest wait between polls in waitFor() */
  minPollMs?: number;
  maxPollMs?: number;
}

export class VolumeBatcher {
  private queue = new Map<string, Pending[]>();
  private timer: NodeJS.Timeout | undefined;
  /** DescribeVolumes calls made (for tests and metrics) */
  calls = 0;

  constructor(
    private readonly ec2: Ec2,
    private readonly opts: BatcherOptions = {},
  ) {}

  describe(id: string): Promise<EbsVolume | undefined> {
    return new Promise((resolve, reject) => {
      const waiting = this.queue.get(id);
      if (waiting) waiting.push({ resolve, reject });
      else this.queue.set(id, [{ resolve, reject }]);
      if (this.queue.size >= (this.opts.maxBatch ?? 200)) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.windowMs ?? 20);
    });
  }

  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.queue;
    this.queue = new Map();
    if (batch.size === 0) return;
    this.calls++;
    this.ec2.describeVolumes({ ids: [...batch.keys()] }).then(
      (volumes) => {
        const byId = new Map(volumes.map((v) => [v.id, v]));
        for (const [id, waiters] of batch) for (const w of waiters) w.resolve(byId.get(id));
      },
      (e: unknown) => {
        for (const waiters of batch.values()) for (const w of waiters) w.reject(e);
      },
    );
  }

  /**
   * Polls the volume until `done` says it is what we wait for (returning it), or `failed` names why it never
   * will be. Throttling or a network blip while polling only makes the next poll later.
   */
  async waitFor(
    id: string,
    what: string,
    done: (v: EbsVolume | undefined) => boolean,
    timeoutMs: number,
    failed?: (v: EbsVolume | undefined) => CsiError | undefined,
  ): Promise<EbsVolume | undefined> {
    const deadline = Date.now() + timeoutMs;
    let delay = this.opts.minPollMs ?? 250;
    for (;;) {
      let volume: EbsVolume | undefined;
      let lookedUp = false;
      try {
        volume = await this.describe(id);
        lookedUp = true;
      } catch (e) {
        if (!(e instanceof CsiError && e.code === 'UNAVAILABLE')) throw e;
      }
      if (lookedUp) {
        if (done(volume)) return volume;
        const why = failed?.(volume);
        if (why) throw why;
      }
      if (Date.now() + delay > deadline) {
        throw new CsiError(
          'UNAVAILABLE',
          `volume ${id} did not become ${what} within ${Math.round(timeoutMs / 1000)} s (state ${volume?.state ?? 'unknown'}); retry later`,
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, this.opts.maxPollMs ?? 5000);
    }
  }
}
