import type { BackendFactory } from './backend.js';
import { ebsFactory } from './ebs/factory.js';
import { efsFactory } from './efs/factory.js';
import { glusterfsFactory } from './glusterfs/factory.js';
import { loopFactory } from './loop/factory.js';
import { NODE_FAULT_POINTS } from '../node/faults.js';

// The backend registry: one line per backend. Each factory (src/backends/<name>/factory.ts) names its
// options, fault points and how to build it, and loads its implementation only when chosen.
export const BACKENDS: readonly BackendFactory[] = [loopFactory, ebsFactory, efsFactory, glusterfsFactory];

export function findBackend(name: string): BackendFactory | undefined {
  return BACKENDS.find((b) => b.name === name);
}

/** Every fault point in the code: the node service's and each backend's (docs/reliability.md lists them). */
export const FAULT_POINTS: readonly string[] = [...NODE_FAULT_POINTS, ...BACKENDS.flatMap((b) => b.faultPoints)];
