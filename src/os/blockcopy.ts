// Block volumes copied as data: device to device (migrate) and stream to device (restore), both skipping
// zero ranges so the destination stays sparse (it is a fresh volume, which reads as zeros), and a checksum of
// a device's first N bytes for verification. The source is only ever opened read-only.
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { CsiError } from '../errors.js';

const CHUNK = 4 * 1024 * 1024;
/** zero detection granularity: a hole smaller than this is written as zeros */
const BLOCK = 64 * 1024;
const ZERO = Buffer.alloc(BLOCK);

export interface BlockCopyResult {
  /** bytes read from the source */
  bytes: number;
  /** bytes written (non-zero data) */
  written: number;
  sha256: string;
}

function isZero(buf: Buffer): boolean {
  return buf.equals(ZERO.subarray(0, buf.length));
}

/** Writes the non-zero BLOCK pieces of data at offset; returns the bytes written. */
async function writeSparse(fh: FileHandle, data: Buffer, offset: number): Promise<number> {
  let written = 0;
  for (let at = 0; at < data.length; at += BLOCK) {
    const piece = data.subarray(at, Math.min(at + BLOCK, data.length));
    if (isZero(piece)) continue;
    await fh.write(piece, 0, piece.length, offset + at);
    written += piece.length;
  }
  return written;
}

async function openTarget(path: string): Promise<FileHandle> {
  // r+: a device or an existing file, never created or truncated here.
  return open(path, 'r+').catch((e: unknown) => {
    throw new CsiError('FAILED_PRECONDITION', `cannot open ${path} for writing: ${(e as Error).message}`);
  });
}

/** Copies the first `bytes` of src to dst. */
export async function copyBlock(src: string, dst: string, bytes: number, onProgress?: (done: number) => void): Promise<BlockCopyResult> {
  const input = await open(src, 'r');
  const output = await openTarget(dst);
  const hash = createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  let done = 0;
  let written = 0;
  try {
    while (done < bytes) {
      const { bytesRead } = await input.read(buf, 0, Math.min(CHUNK, bytes - done), done);
      if (bytesRead === 0) throw new CsiError('OUT_OF_RANGE', `${src} ended after ${done} bytes, expected ${bytes}`);
      const data = buf.subarray(0, bytesRead);
      hash.update(data);
      written += await writeSparse(output, data, done);
      done += bytesRead;
      onProgress?.(done);
    }
    await output.sync();
  } finally {
    await input.close();
    await output.close();
  }
  return { bytes: done, written, sha256: hash.digest('hex') };
}

/** Writes a stream (restic dump of a device image) to dst from offset 0; at most `limit` bytes fit. */
export async function writeStream(
  data: NodeJS.ReadableStream,
  dst: string,
  limit: number,
  onProgress?: (done: number) => void,
): Promise<BlockCopyResult> {
  const output = await openTarget(dst);
  const hash = createHash('sha256');
  let done = 0;
  let written = 0;
  try {
    for await (const chunk of data) {
      const piece = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (done + piece.length > limit) throw new CsiError('OUT_OF_RANGE', `the image is larger than ${dst} (${limit} bytes)`);
      hash.update(piece);
      written += await writeSparse(output, piece, done);
      done += piece.length;
      onProgress?.(done);
    }
    await output.sync();
  } finally {
    await output.close();
  }
  return { bytes: done, written, sha256: hash.digest('hex') };
}

/** sha256 of the first `bytes` of a file or device. */
export async function sha256Of(path: string, bytes: number): Promise<string> {
  const input = await open(path, 'r');
  const hash = createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  try {
    for (let done = 0; done < bytes;) {
      const { bytesRead } = await input.read(buf, 0, Math.min(CHUNK, bytes - done), done);
      if (bytesRead === 0) throw new CsiError('OUT_OF_RANGE', `${path} ended after ${done} bytes, expected ${bytes}`);
      hash.update(buf.subarray(0, bytesRead));
      done += bytesRead;
    }
  } finally {
    await input.close();
  }
  return hash.digest('hex');
}
