// The ebs backend as the registry knows it: its options (defaults in EBS_DEFAULTS, the one place), fault
// points, and how its options become an EbsConfig; a bad value stops start-up naming it. The implementation,
// and the AWS SDK with it, is loaded only when ebs is chosen.
import type { BackendContext, BackendFactory } from '../backend.js';
import { optionReader } from '../../lib/options.js';
import type { EbsBackend } from './ebs.js';
import { EBS_FAULT_POINTS } from './faults.js';

export const EBS_DEFAULTS = {
  clusterTag: 'default',
  byIdDir: '/dev/disk/by-id',
  sysRoot: '/sys',
  waitTimeoutSeconds: '300',
  deviceTimeoutSeconds: '60',
} as const;

export const ebsFactory: BackendFactory = {
  name: 'ebs',
  description: 'Amazon EBS volumes through the EC2 API, attached by ControllerPublish (or by the node with --node-attach)',
  options: {
    region: { type: 'string', env: 'AWS_REGION', description: 'AWS region (default: from --zone or the instance metadata)' },
    'endpoint-url': {
      type: 'string',
      env: 'REXCSI_EC2_ENDPOINT_URL',
      description: "EC2 API endpoint (default: AWS_ENDPOINT_URL_EC2, else AWS_ENDPOINT_URL, else AWS's own)",
    },
    'instance-id': { type: 'string', env: 'REXCSI_INSTANCE_ID', description: "this node's EC2 instance id (default: from IMDSv2)" },
    zone: {
      type: 'string',
      env: 'REXCSI_ZONE',
      description: "this node's availability zone, also the zone of volumes created without topology (default: from IMDSv2)",
    },
    'cluster-tag': {
      type: 'string',
      env: 'REXCSI_CLUSTER_TAG',
      default: EBS_DEFAULTS.clusterTag,
      description: 'value of the rexcsi.io/cluster tag that marks the volumes and snapshots this plugin manages',
    },
    'node-attach': {
      type: 'boolean',
      env: 'REXCSI_NODE_ATTACH',
      default: false,
      description:
        'NodeStage without publish_context attaches the volume to this node itself, NodeUnstage detaches it (Mesos external volumes)',
    },
    preempt: {
      type: 'boolean',
      env: 'REXCSI_PREEMPT',
      default: false,
      description: 'with --node-attach: force-detach a volume from a stopped or terminated instance first',
    },
    'attach-limit': {
      type: 'string',
      env: 'REXCSI_ATTACH_LIMIT',
      description: 'volume attachments per instance, root included (default: by instance type)',
    },
    'by-id-dir': {
      type: 'string',
      env: 'REXCSI_BY_ID_DIR',
      default: EBS_DEFAULTS.byIdDir,
      description: 'where udev links NVMe devices by volume id',
    },
    'sys-root': {
      type: 'string',
      env: 'REXCSI_SYS_ROOT',
      default: EBS_DEFAULTS.sysRoot,
      description: 'sysfs root used to read device serials',
    },
    'wait-timeout': {
      type: 'string',
      env: 'REXCSI_EBS_WAIT_TIMEOUT',
      default: EBS_DEFAULTS.waitTimeoutSeconds,
      description: 'seconds to wait for a volume to become available, attached or detached',
    },
    'device-timeout': {
      type: 'string',
      env: 'REXCSI_EBS_DEVICE_TIMEOUT',
      default: EBS_DEFAULTS.deviceTimeoutSeconds,
      description: "seconds to wait for an attached volume's device to appear on the node",
    },
  },
  faultPoints: EBS_FAULT_POINTS,
  create: (ctx) => createEbsBackend(ctx),
};

function seconds(name: string, value: string): number {
  if (!/^[1-9]\d{0,5}$/.test(value)) throw new Error(`--${name}=${JSON.stringify(value)}: expected a whole number of seconds`);
  return Number(value) * 1000;
}

export async function createEbsBackend(ctx: BackendContext): Promise<EbsBackend> {
  const o = optionReader((name) => ctx.options[name]);
  let zone = o.str('zone');
  const instanceId = o.str('instance-id');
  if (instanceId !== undefined && !/^i-[0-9a-f]{8,17}$/.test(instanceId))
    throw new Error(`--instance-id=${JSON.stringify(instanceId)}: expected an EC2 instance id (i-...)`);
  if (zone !== undefined && !/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/.test(zone))
    throw new Error(`--zone=${JSON.stringify(zone)}: expected an availability zone such as us-east-1a`);
  const [{ EbsBackend }, { fetchInstanceIdentity }] = await Promise.all([import('./ebs.js'), import('./imds.js')]);
  let region = o.str('region') ?? process.env.AWS_DEFAULT_REGION ?? zone?.slice(0, -1);
  if (!region) {
    const me = await fetchInstanceIdentity().catch(() => undefined);
    if (!me) throw new Error('the ebs backend needs --region (or AWS_REGION, or --zone) outside EC2');
    zone ??= me.zone;
    region = me.zone.slice(0, -1);
  }
  const limit = o.str('attach-limit');
  if (limit !== undefined && !/^[1-9]\d{0,2}$/.test(limit))
    throw new Error(`--attach-limit=${JSON.stringify(limit)}: expected a whole number from 1`);
  return new EbsBackend({
    region,
    endpoint: o.str('endpoint-url') ?? process.env.AWS_ENDPOINT_URL_EC2 ?? process.env.AWS_ENDPOINT_URL,
    instanceId,
    zone,
    clusterTag: o.str('cluster-tag') ?? EBS_DEFAULTS.clusterTag,
    nodeAttach: o.bool('node-attach'),
    preempt: o.bool('preempt'),
    attachLimit: limit !== undefined ? Number(limit) : undefined,
    maxVolumesPerNode: ctx.maxVolumesPerNode,
    roots: { byIdDir: o.str('by-id-dir') ?? EBS_DEFAULTS.byIdDir, sysRoot: o.str('sys-root') ?? EBS_DEFAULTS.sysRoot },
    waitTimeoutMs: seconds('wait-timeout', o.str('wait-timeout') ?? EBS_DEFAULTS.waitTimeoutSeconds),
    deviceTimeoutMs: seconds('device-timeout', o.str('device-timeout') ?? EBS_DEFAULTS.deviceTimeoutSeconds),
  });
}
