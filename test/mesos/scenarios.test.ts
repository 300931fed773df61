// The Mesos scenarios on the loop backend (always there), and the path encoding Mesos applies.
// The other backends: scenarios-ebs.test.ts, scenarios-glusterfs.test.ts.

import { describe, expect, it } from 'vitest';
import { mesosEncode } from './mesos-client.js';
import { describeBackendScenarios } from './scenarios.js';

describe('mesosEncode (libprocess http::encode, used for volume ids in paths)', () => {
  it('percent-encodes reserved, unsafe, control and non-ASCII bytes and keeps the rest', () => {
    expect(mesosEncode('vol-1_a.b')).toBe('vol-1_a.b');
    expect(mesosEncode('fs-1:/sub/dir')).toBe('fs-1%3A%2Fsub%2Fdir');
    expect(mesosEncode('a b~c%d')).toBe('a%20b%7Ec%25d');
    expect(mesosEncode('x\ny')).toBe('x%0Ay');
    expect(mesosEncode('é')).toBe('%C3%A9');
    expect(mesosEncode("(it's)*!")).toBe("(it's)*!");
  });
});

describeBackendScenarios('loop');
