// A small JUnit XML reader for the reports Ginkgo (csi-sanity) writes: enough to count test cases and to
// name the failed and skipped ones with their messages. Not a general XML parser.

export type CaseOutcome = 'passed' | 'failed' | 'skipped';

export interface JUnitCase {
  name: string;
  classname: string;
  /** Ginkgo's status attribute when present (passed, failed, skipped, pending, panicked, interrupted, ...). */
  status: string;
  outcome: CaseOutcome;
  /** The failure, error or skip message (Ginkgo: "skipped - <reason>" for a Skip() with a reason). */
  message: string;
  /** Text of the <failure>/<error> element (the failure with its location), empty otherwise. */
  detail: string;
}

export interface JUnitSummary {
  passed: number;
  failed: number;
  skipped: number;
  cases: JUnitCase[];
}

export function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|lt|gt|quot|apos|amp);/gi, (whole, ent: string) => {
    const e = ent.toLowerCase();
    if (e.startsWith('#x')) return String.fromCodePoint(parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(parseInt(e.slice(1), 10));
    return { lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' }[e] ?? whole;
  });
}

function attributes(tag: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of tag.matchAll(/([A-Za-z_][\w:.-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
    out[m[1]!] = decodeXml(m[2] ?? m[3] ?? '');
  }
  return out;
}

function outcomeOf(status: string, body: string): CaseOutcome {
  switch (status) {
    case 'passed':
      return 'passed';
    case 'skipped':
    case 'pending':
      return 'skipped';
    case '':
      if (/<(failure|error)\b/.test(body)) return 'failed';
      if (/<skipped\b/.test(body)) return 'skipped';
      return 'passed';
    default:
      return 'failed'; // failed, panicked, interrupted, aborted, timedout
  }
}

export function parseJUnit(xml: string): JUnitSummary {
  const cases: JUnitCase[] = [];
  for (const m of xml.matchAll(/<testcase\b([^>]*?)(?:\/>|>([\s\S]*?)<\/testcase>)/g)) {
    const attrs = attributes(m[1] ?? '');
    const body = m[2] ?? '';
    const status = attrs['status'] ?? '';
    const outcome = outcomeOf(status, body);
    const problem = /<(failure|error|skipped)\b([^>]*?)(?:\/>|>([\s\S]*?)<\/\1>)/.exec(body);
    cases.push({
      name: attrs['name'] ?? '',
      classname: attrs['classname'] ?? '',
      status: status || outcome,
      outcome,
      message: problem ? (attributes(problem[2] ?? '')['message'] ?? '') : '',
      detail: problem && problem[1] !== 'skipped' ? decodeXml(problem[3] ?? '') : '',
    });
  }
  const count = (o: CaseOutcome) => cases.filter((c) => c.outcome === o).length;
  return { passed: count('passed'), failed: count('failed'), skipped: count('skipped'), cases };
}
