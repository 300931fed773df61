// The glusterfs backend's pure parts: volume ids (strict, so no id names a path outside its place), the
// record kept on the gluster side, and the reader of the gluster CLI's --xml output.
import { describe, expect, it } from 'vitest';
import {
  decodeRecord,
  encodeRecord,
  hexForName,
  mountPath,
  parseVolumeId,
  subdirRef,
  volumeRef,
} from '../../src/backends/glusterfs/ids.js';
import { child, children, parseXml, textOf } from '../../src/backends/glusterfs/xml.js';

describe('glusterfs volume ids', () => {
  it('round-trips the ids it issues and maps them to mount paths', () => {
    const hex = hexForName('pvc-1');
    expect(hex).toMatch(/^[0-9a-f]{24}$/);
    const s = subdirRef('hosting', hex);
    expect(parseVolumeId(s.id)).toEqual(s);
    expect(mountPath(s)).toBe(`/hosting/csi-${hex}`);
    const v = volumeRef(hex);
    expect(parseVolumeId(v.id)).toEqual(v);
    expect(mountPath(v)).toBe(`/gv-${hex}`);
  });

  it('rejects anything else, in particular path tricks', () => {
    for (const id of [
      '',
      'gs:hosting:../../../etc',
      'gs:../x:0123456789abcdef01234567',
      'gs:hosting:0123456789abcdef01234567/..',
      'gs:hosting/../x:0123456789abcdef01234567',
      'gs:hosting:0123456789ABCDEF01234567',
      'gv-0123',
      'gv-0123456789abcdef01234567/x',
      'gv-../../0123456789abcdef0123',
      'gs::0123456789abcdef01234567',
      'gs:host ing:0123456789abcdef01234567',
    ]) {
      expect(parseVolumeId(id), id).toBeUndefined();
    }
  });

  it('keeps the record readable only when it is one we wrote', () => {
    const r = {
      v: 1 as const,
      name: 'a name, with "quotes"\nand a newline',
      layout: 'subdir' as const,
      parameters: { layout: 'subdir' },
      createdAt: 'now',
    };
    const encoded = encodeRecord(r);
    expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeRecord(encoded)).toEqual(r);
    expect(decodeRecord(`${encoded}\n`)).toEqual(r);
    expect(decodeRecord(undefined)).toBeUndefined();
    expect(decodeRecord('not base64!')).toBeUndefined();
    expect(decodeRecord(Buffer.from('{"v":2,"name":"x","layout":"subdir"}').toString('base64url'))).toBeUndefined();
  });
});

describe('gluster CLI xml', () => {
  it('reads elements, text, entities and skips attributes', () => {
    const doc = parseXml(`<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<cliOutput>
  <opRet>-1</opRet>
  <opErrstr>Volume &lt;x&gt; &amp; friends</opErrstr>
  <volInfo><volumes><volume>
    <bricks>
      <brick uuid="926e">127.0.0.2:/b/one<name>127.0.0.2:/b/one</name><isArbiter>0</isArbiter></brick>
      <brick uuid="926f">127.0.0.2:/b/two<name>127.0.0.2:/b/two</name></brick>
    </bricks>
    <emptyOne/>
  </volume></volumes></volInfo>
</cliOutput>`);
    const out = child(doc, 'cliOutput');
    expect(textOf(out, 'opRet')).toBe('-1');
    expect(textOf(out, 'opErrstr')).toBe('Volume <x> & friends');
    const bricks = children(child(out, 'volInfo', 'volumes', 'volume', 'bricks'), 'brick');
    expect(bricks.map((b) => textOf(b, 'name'))).toEqual(['127.0.0.2:/b/one', '127.0.0.2:/b/two']);
    expect(child(out, 'volInfo', 'volumes', 'volume', 'emptyOne')).toBeDefined();
  });

  it('throws on unbalanced markup rather than guessing', () => {
    expect(() => parseXml('<cliOutput><opRet>0</cliOutput>')).toThrow(/unbalanced/);
    expect(() => parseXml('<cliOutput>')).toThrow(/never closed/);
  });
});
