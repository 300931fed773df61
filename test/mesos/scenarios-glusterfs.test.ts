// The Mesos scenarios on the glusterfs backend: one real glusterd for this file (started before the first
// group, stopped after the last), a hosting volume, and the `subdir` profile of examples/mesos.
import { describeBackendScenarios } from './scenarios.js';

describeBackendScenarios('glusterfs');
