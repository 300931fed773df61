// How many EBS volumes (root included) an instance takes, by instance type. Nitro instances share 28
// attachment slots between EBS volumes, ENIs and NVMe instance stores; the newer families have a dedicated
// EBS limit. Anything unknown gets the shared Nitro default. --attach-limit overrides the table.

/** Families with a dedicated EBS volume limit (AWS "Instance volume limits"). */
const DEDICATED: [RegExp, number][] = [
  [/^(m7i|m7a|c7i|c7a|r7i|r7a|r7iz|m8g|c8g|r8g|x8g|i7ie|m7i-flex|c7i-flex)\./, 128],
  [/^(u-\d+tb\d*)\./, 27],
];

/** Xen-based (previous-generation) families: up to 40 volumes. */
const XEN = /^(t1|t2|m1|m2|m3|m4|c1|c3|c4|r3|r4|i2|i3|d2|x1|x1e|g2|g3|p2|p3|h1|f1|cc2|cr1|hs1)\./;

export const NITRO_SHARED_LIMIT = 28;
export const XEN_LIMIT = 40;

/** Attachments the instance can take, root volume included. */
export function attachLimitFor(instanceType: string): number {
  for (const [pattern, limit] of DEDICATED) if (pattern.test(instanceType)) return limit;
  if (XEN.test(instanceType)) return XEN_LIMIT;
  // One slot goes to the primary network interface on Nitro.
  return NITRO_SHARED_LIMIT - 1;
}
