import { afterAll, describe, expect, it } from 'vitest';
import { startMoto, stopAllMoto } from '../helpers/moto.js';

// The emulator the ebs and efs tests stand on: it must start, answer the EC2 API over HTTP, and stop.
describe('moto helper', () => {
  afterAll(stopAllMoto);

  it('starts moto_server on a free port, answers EC2 DescribeRegions, and stops', async () => {
    const moto = await startMoto();
    const body = new URLSearchParams({ Action: 'DescribeAvailabilityZones', Version: '2016-11-15' });
    const res = await fetch(moto.endpoint, {
      method: 'POST',
      body,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/ec2/aws4_request, SignedHeaders=host, Signature=x',
      },
    });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('us-east-1a');
    await moto.stop();
    expect(moto.proc.exitCode !== null || moto.proc.signalCode !== null).toBe(true);
  });
});
