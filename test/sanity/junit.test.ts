// The JUnit reader the csi-sanity test counts with: a reader that dropped failures would let sanity pass.
import { describe, expect, it } from 'vitest';
import { decodeXml, parseJUnit } from '../helpers/junit.js';

// Trimmed from a real csi-sanity v5.4.0 report (Ginkgo v2).
const REPORT = `<?xml version="1.0" encoding="UTF-8"?>
  <testsuites tests="6" disabled="2" errors="1" failures="1" time="1.5">
      <testsuite name="CSI Driver Test Suite" package="/tmp" tests="6" disabled="1" skipped="1" errors="1" failures="1" time="1.5">
          <properties><property name="SuiteSucceeded" value="false"></property></properties>
          <testcase name="[It] Node Service should work" classname="CSI Driver Test Suite" status="passed" time="0.2"></testcase>
          <testcase name="[It] CreateSnapshot [Controller Server] should fail when no name is provided" classname="CSI Driver Test Suite" status="failed" time="0.1">
              <failure message="Expected&#xA;    &lt;codes.Code&gt;: 0&#xA;to equal &#34;InvalidArgument&#34;" type="failed">[FAILED] Expected&#xA;    &lt;codes.Code&gt;: 0&#xA;In [It] at: /x/controller.go:98 @ 11/24/26 10:06:10.521&#xA;</failure>
              <system-err>&gt; Enter [It] ...</system-err>
          </testcase>
          <testcase name="[It] ListSnapshots should return appropriate values" classname="CSI Driver Test Suite" status="skipped" time="0">
              <skipped message="skipped - ListSnapshots not supported"></skipped>
          </testcase>
          <testcase name="[It] ListVolumes pagination should detect volumes added between pages" classname="CSI Driver Test Suite" status="pending" time="0">
              <skipped message="pending"></skipped>
          </testcase>
          <testcase name="[It] CreateSnapshot should fail when no source volume id is provided" classname="CSI Driver Test Suite" status="interrupted" time="59.9">
              <error message="Interrupted by User" type="interrupted">Interrupted by User&#xA;</error>
          </testcase>
          <testcase name="[It] Identity Service should return plugin info" classname="CSI Driver Test Suite" status="passed" time="0.01"/>
      </testsuite>
  </testsuites>`;

describe('parseJUnit', () => {
  it('counts passed, failed (failed, interrupted) and skipped (skipped, pending) test cases', () => {
    const s = parseJUnit(REPORT);
    expect(s.cases).toHaveLength(6);
    expect([s.passed, s.failed, s.skipped]).toEqual([2, 2, 2]);
  });

  it('keeps the failure message and detail, and the skip reason', () => {
    const s = parseJUnit(REPORT);
    const failed = s.cases.find((c) => c.status === 'failed');
    expect(failed?.name).toBe('[It] CreateSnapshot [Controller Server] should fail when no name is provided');
    expect(failed?.message).toBe('Expected\n    <codes.Code>: 0\nto equal "InvalidArgument"');
    expect(failed?.detail).toContain('In [It] at: /x/controller.go:98');
    expect(s.cases.find((c) => c.status === 'interrupted')?.message).toBe('Interrupted by User');
    expect(s.cases.find((c) => c.status === 'skipped')?.message).toBe('skipped - ListSnapshots not supported');
  });

  it('reads plain JUnit without a status attribute', () => {
    const s = parseJUnit(
      '<testsuite><testcase name="a"/><testcase name="b"><failure message="x"/></testcase>' +
        '<testcase name="c"><error>boom</error></testcase><testcase name="d"><skipped/></testcase></testsuite>',
    );
    expect([s.passed, s.failed, s.skipped]).toEqual([1, 2, 1]);
    expect(s.cases.map((c) => c.outcome)).toEqual(['passed', 'failed', 'failed', 'skipped']);
  });

  it('decodes entities once', () => {
    expect(decodeXml('&lt;a&gt; &amp;lt; &#34;q&#34; &#x41;')).toBe('<a> &lt; "q" A');
  });
});
