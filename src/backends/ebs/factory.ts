// Turns the ebs backend's command-line options into an EbsConfig; a bad value stops start-up naming it.
import type { BackendContext } from '../index.js';
import { EbsBackend } from './ebs.js';
import { fetchInstanceIdentity } from './imds.js';

function seconds(name: string, value: unknown): number {
  const s = String(value);
  if (!/^[1-9]\d{0,5}$/.test(s)) throw new Error(`--${name}=${JSON.stringify(s)}: expected a whole number of seconds`);
  return Number(s) * 1000;
}

export async function createEbsBackend(ctx: BackendContext): Promise<EbsBackend> {
  const o = ctx.options;
  const str = (name: string): string | undefined => (typeof o[name] === 'string' && o[name] !== '' ? (o[name] as string) : undefined);
  let zone = str('zone');
  const instanceId = str('instance-id');
  if (instanceId !== undefined && !/^i-[0-9a-f]{8,17}$/.test(instanceId))
    throw new Error(`--instance-id=${JSON.stringify(instanceId)}: expected an EC2 instance id (i-...)`);
  if (zone !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/.test(zone))
    throw new Error(`--zone=${JSON.stringify(zone)}: expected an availability zone such as us-east-1a`);
  let region = str('region') ?? process.env.AWS_DEFAULT_REGION ?? zone?.slice(0, -1);
  if (!region) {
    const me = await fetchInstanceIdentity().catch(() => undefined);
    if (!me) throw new Error('the ebs backend needs --region (or AWS_REGION, or --zone) outside EC2');
    zone ??= me.zone;
    region = me.zone.slice(0, -1);
  }
  const limit = str('attach-limit');
  if (limit !== undefined && !/^[1-9]\d{0,2}$/.test(limit))
    throw new Error(`--attach-limit=${JSON.stringify(limit)}: expected a whole number from 1`);
  return new EbsBackend({
    region,
    endpoint: str('endpoint-url') ?? process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL,
    instanceId,
    zone,
    clusterTag: str('cluster-tag') ?? 'default',
    nodeAttach: o['node-attach'] === true,
    preempt: o.preempt === true,
    attachLimit: limit !== undefined ? Number(limit) : undefined,
    maxVolumesPerNode: ctx.maxVolumesPerNode,
    roots: { byIdDir: str('by-id-dir') ?? '/dev/disk/by-id', sysRoot: str('sys-root') ?? '/sys' },
    waitTimeoutMs: seconds('wait-timeout', o['wait-timeout'] ?? '300'),
    deviceTimeoutMs: seconds('device-timeout', o['device-timeout'] ?? '60'),
  });
}
