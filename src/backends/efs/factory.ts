import type { BackendContext, BackendFactory } from '../backend.js';
import { optionReader } from '../../lib/options.js';
import type { EfsBackend } from './efs.js';

// The efs backend as the registry knows it: its options and how to build it (it has no fault points). The
// implementation, and the AWS SDK with it, is loaded only when efs is chosen.
export const efsFactory: BackendFactory = {
  name: 'efs',
  description: 'AWS EFS file systems and access points, mounted over NFSv4.1 (every node of a region)',
  options: {
    region: { type: 'string', env: 'AWS_REGION', description: 'AWS region of the volumes (e.g. us-east-1)' },
    zone: {
      type: 'string',
      env: 'REXCSI_ZONE',
      description:
        "this node's availability zone (e.g. us-east-1a); efs: mount from the mount target there (unset: the file system's DNS name)",
    },
    'endpoint-url': {
      type: 'string',
      description: 'AWS API endpoint URL (default: AWS_ENDPOINT_URL_<SERVICE>, else AWS_ENDPOINT_URL, else the SDK default)',
    },
    'efs-utils': {
      type: 'boolean',
      env: 'REXCSI_EFS_UTILS',
      default: false,
      description: 'mount with amazon-efs-utils (mount -t efs -o tls); needed for access point volumes',
    },
    'efs-work-dir': {
      type: 'string',
      env: 'REXCSI_EFS_WORK_DIR',
      description: 'where the controller mounts a file system root to delete access point directories (default: the temp dir)',
    },
  },
  faultPoints: [],
  create: (ctx) => createEfsBackend(ctx),
};

/** Builds the efs backend from its options; a bad value rejects naming it. */
export async function createEfsBackend(ctx: BackendContext, env: NodeJS.ProcessEnv = process.env): Promise<EfsBackend> {
  const o = optionReader((name) => ctx.options[name]);
  const region = o.str('region') ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('the efs backend needs --region (or AWS_REGION)');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    throw new Error(`--region=${JSON.stringify(region)} is not an AWS region name such as us-east-1`);
  const zone = o.str('zone');
  if (zone !== undefined && !zone.startsWith(region))
    throw new Error(`--zone=${JSON.stringify(zone)} is not a zone of region ${region} (such as ${region}a)`);
  const endpoint = o.str('endpoint-url') ?? (env.AWS_ENDPOINT_URL_EFS || undefined) ?? (env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    throw new Error(`--endpoint-url=${JSON.stringify(endpoint)} is not an http(s) URL`);
  const [{ EfsApi }, { EfsBackend }] = await Promise.all([import('./api.js'), import('./efs.js')]);
  return new EfsBackend({
    api: new EfsApi({ region, endpoint }),
    nodeId: ctx.nodeId,
    maxVolumesPerNode: ctx.maxVolumesPerNode,
    region,
    zone,
    efsUtils: o.bool('efs-utils'),
    workDir: o.str('efs-work-dir'),
  });
}
