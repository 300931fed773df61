// Which errors mean "the filesystem's server side is gone" (a dead FUSE client, a stale network handle).
// ESTALE is the case that matters: libuv has no name for it, so Node reports errno -116 with the code
// "Unknown system error -116". The errors below are the ones Node itself makes for those errnos.
import { getSystemErrorName } from 'node:util';
import { describe, expect, it } from 'vitest';
import { isDisconnectedError } from '../../src/os/index.js';

/** An error shaped exactly as Node's fs makes one for a failed system call (code from libuv's name table). */
function UVException(errno: number, syscall: string, path: string): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  const e: NodeJS.ErrnoException = new Error(`${code}: ${syscall} '${path}'`);
  e.errno = errno;
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

describe('isDisconnectedError', () => {
  it('matches ENOTCONN, ECONNABORTED and ESTALE as Node reports them, by errno', () => {
    for (const errno of [-107, -103, -116]) expect(isDisconnectedError(UVException(errno, 'lstat', '/x')), String(errno)).toBe(true);
  });
  it('ESTALE arrives without a name, which is why it is matched by number', () => {
    expect(UVException(-116, 'lstat', '/x').code).toBe('Unknown system error -116');
  });
  it('does not match other errors', () => {
    for (const errno of [-2, -5, -13, -20, -40]) expect(isDisconnectedError(UVException(errno, 'lstat', '/x')), String(errno)).toBe(false);
    expect(isDisconnectedError(new Error('x'))).toBe(false);
    expect(isDisconnectedError(undefined)).toBe(false);
  });
});
