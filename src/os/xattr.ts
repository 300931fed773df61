// Extended attributes through getfattr/setfattr (package attr): Node has no xattr API. Used to keep a
// volume's record on the storage itself (a directory on a network filesystem), not in local files.
import { notFound } from '../errors.js';
import { isExecError, run } from './exec.js';

const MISSING = /No such attribute|No data available/i;

/** The attribute's value as text, or undefined when the file has no such attribute. */
export async function getXattr(path: string, name: string): Promise<string | undefined> {
  try {
    const { stdout } = await run('getfattr', ['--absolute-names', '--only-values', '-n', name, '--', path]);
    return stdout;
  } catch (e) {
    if (isExecError(e) && MISSING.test(e.stderr)) return undefined;
    if (isExecError(e) && /No such file or directory/.test(e.stderr)) throw notFound(`${path} does not exist`);
    throw e;
  }
}

/** Sets a text value; callers keep it to printable ASCII (setfattr would read 0x/0s prefixes as encodings). */
export async function setXattr(path: string, name: string, value: string): Promise<void> {
  await run('setfattr', ['-n', name, '-v', value, '--', path]);
}

/** Fine when the attribute is not there. */
export async function removeXattr(path: string, name: string): Promise<void> {
  try {
    await run('setfattr', ['-x', name, '--', path]);
  } catch (e) {
    if (isExecError(e) && MISSING.test(e.stderr)) return;
    throw e;
  }
}
