// The instance's own identity from the EC2 instance metadata service, IMDSv2 (session token first).
import { unavailable } from '../../errors.js';

export interface InstanceIdentity {
  instanceId: string;
  zone: string;
  instanceType: string;
}

const DEFAULT_ENDPOINT = 'http://169.254.169.254';
const TIMEOUT_MS = 2000;

export async function fetchInstanceIdentity(
  endpoint = process.env.AWS_EC2_METADATA_SERVICE_ENDPOINT || DEFAULT_ENDPOINT,
): Promise<InstanceIdentity> {
  const base = endpoint.replace(/\/+$/, '');
  try {
    const tokenRes = await fetch(`${base}/latest/api/token`, {
      method: 'PUT',
      headers: { 'X-aws-ec2-metadata-token-ttl-seconds': '300' },
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    if (!tokenRes.ok) throw new Error(`token request answered ${tokenRes.status}`);
    const token = await tokenRes.text();
    const get = async (path: string): Promise<string> => {
      const res = await fetch(`${base}/latest/meta-data/${path}`, {
        headers: { 'X-aws-ec2-metadata-token': token },
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      if (!res.ok) throw new Error(`${path} answered ${res.status}`);
      return (await res.text()).trim();
    };
    const [instanceId, zone, instanceType] = await Promise.all([
      get('instance-id'),
      get('placement/availability-zone'),
      get('instance-type'),
    ]);
    return { instanceId, zone, instanceType };
  } catch (e) {
    throw unavailable(
      `cannot read the instance identity from IMDSv2 at ${base} (${(e as Error).message}); outside EC2 give --instance-id and --zone`,
    );
  }
}
