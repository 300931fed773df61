// The client CLI's pieces that the end-to-end test cannot reach: progress on a terminal (the tests have
// none, so a writer that says it is a TTY stands in for one), size and endpoint parsing, exit-code mapping,
// and the readable log line format.
import { status as Status } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { parseSize } from '../../src/cli/args.js';
import { CallFailed, grpcTarget } from '../../src/cli/client.js';
import { describeFailure, EXIT, exitCodeOf } from '../../src/cli/command.js';
import { formatBytes, Output } from '../../src/cli/output.js';
import { formatLine } from '../../src/log.js';

class Capture {
  text = '';
  constructor(readonly isTTY: boolean) {}
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

const slow = <T>(ms: number, value: T) => new Promise<T>((r) => setTimeout(() => r(value), ms));

describe('progress', () => {
  it('shows a progress line on a terminal during a long wait, and clears it', async () => {
    const stdout = new Capture(true);
    const stderr = new Capture(true);
    const out = new Output(false, stdout, stderr);
    expect(await out.progress('creating volume v1', slow(1600, 'done'))).toBe('done');
    expect(stderr.text).toMatch(/\r[|/\\-] creating volume v1\.\.\. 1s /);
    expect(stderr.text.endsWith('\r\x1b[2K')).toBe(true);
    expect(stdout.text).toBe('');
  });

  it('stays quiet when stderr is not a terminal, with --json, and for short calls', async () => {
    for (const [json, tty, ms] of [
      [false, false, 1300],
      [true, true, 1300],
      [false, true, 50],
    ] as const) {
      const stderr = new Capture(tty);
      await new Output(json, new Capture(tty), stderr).progress('x', slow(ms, 1));
      expect(stderr.text).toBe('');
    }
  });
});

describe('parsing', () => {
  it('reads sizes in bytes, binary and decimal units', () => {
    expect(parseSize('size', '1048576')).toBe(1048576);
    expect(parseSize('size', '64Mi')).toBe(64 * 2 ** 20);
    expect(parseSize('size', '1GiB')).toBe(2 ** 30);
    expect(parseSize('size', '10G')).toBe(10e9);
    expect(parseSize('size', '1.5Gi')).toBe(1.5 * 2 ** 30);
    for (const bad of ['', '0', '-1', 'lots', '1Q', '1e9']) expect(() => parseSize('size', bad)).toThrow(/--size .*: expected a size/);
  });

  it('turns endpoints into grpc-js targets', () => {
    expect(grpcTarget('unix:///run/csi.sock')).toBe('unix:///run/csi.sock');
    expect(grpcTarget('/run/csi.sock')).toBe('unix:///run/csi.sock');
    expect(grpcTarget('run/csi.sock')).toBe('unix:run/csi.sock');
    expect(grpcTarget('127.0.0.1:10000')).toBe('127.0.0.1:10000');
    expect(grpcTarget('dns:plugin:10000')).toBe('dns:plugin:10000');
  });

  it('prints sizes for people', () => {
    expect(formatBytes(67108864)).toBe('64 MiB');
    expect(formatBytes(1500000)).toBe('1.43 MiB');
    expect(formatBytes(512)).toBe('512 B');
  });
});

describe('failures', () => {
  it('maps gRPC codes to exit codes', () => {
    expect(exitCodeOf(Status.NOT_FOUND)).toBe(EXIT.NOT_FOUND);
    expect(exitCodeOf(Status.UNAVAILABLE)).toBe(EXIT.UNREACHABLE);
    expect(exitCodeOf(Status.DEADLINE_EXCEEDED)).toBe(EXIT.UNREACHABLE);
    expect(exitCodeOf(Status.ALREADY_EXISTS)).toBe(EXIT.RPC_FAILED);
    expect(exitCodeOf(Status.INVALID_ARGUMENT)).toBe(EXIT.RPC_FAILED);
  });

  it('names the code, the RPC, the plugin message and what to do', () => {
    const text = describeFailure(
      'volume delete',
      new CallFailed('DeleteVolume', Status.FAILED_PRECONDITION, 'volume vol-1 is published on node-a'),
      '/run/x.sock',
    );
    expect(text).toBe(
      'rexcsi volume delete: FAILED_PRECONDITION from DeleteVolume: volume vol-1 is published on node-a\n' +
        '  hint: the volume is not in a state that allows this (e.g. still published or staged): undo that first, then retry\n',
    );
    expect(describeFailure('volume create', new CallFailed('CreateVolume', Status.DEADLINE_EXCEEDED, 'Deadline exceeded'), '/x')).toMatch(
      /raise --timeout and retry/,
    );
  });
});

describe('readable log lines', () => {
  it('formats a pino JSON line as time, level, message and fields', () => {
    const line = formatLine(
      JSON.stringify({
        level: 40,
        time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
        pid: 1,
        plugin: 'p',
        msg: 'CreateVolume',
        method: 'CreateVolume',
        volume: 'v 1',
        code: 'ALREADY_EXISTS',
        ms: 1.5,
      }),
    );
    expect(line).toBe('03:04:05.006 WARN  CreateVolume method=CreateVolume volume="v 1" code=ALREADY_EXISTS ms=1.5\n');
    expect(formatLine('not json')).toBe('not json\n');
  });
});
