import type { BackendContext } from '../index.js';
import { EfsApi } from './api.js';
import { EfsBackend } from './efs.js';

/** Builds the efs backend from its command-line options (see src/backends/index.ts). */
export function createEfsBackend(ctx: BackendContext, env: NodeJS.ProcessEnv = process.env): EfsBackend {
  const str = (name: string): string | undefined => {
    const v = ctx.options[name];
    return typeof v === 'string' && v !== '' ? v : undefined;
  };
  const region = str('region') ?? env.AWS_DEFAULT_REGION;
  if (!region) throw new Error('the efs backend needs --region (or AWS_REGION)');
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region))
    throw new Error(`--region=${JSON.stringify(region)} is not an AWS region name such as us-east-1`);
  const zone = str('zone');
  if (zone !== undefined && !zone.startsWith(region))
    throw new Error(`--zone=${JSON.stringify(zone)} is not a zone of region ${region} (such as ${region}a)`);
  const endpoint = str('endpoint-url') ?? (env.AWS_ENDPOINT_URL_EFS || undefined) ?? (env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+/.test(endpoint))
    throw new Error(`--endpoint-url=${JSON.stringify(endpoint)} is not an http(s) URL`);
  return new EfsBackend({
    api: new EfsApi({ region, endpoint }),
    nodeId: ctx.nodeId,
    maxVolumesPerNode: ctx.maxVolumesPerNode,
    region,
    zone,
    efsUtils: ctx.options['efs-utils'] === true,
    workDir: str('efs-work-dir'),
  });
}
