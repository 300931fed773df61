// The Mesos scenarios on the ebs backend: moto_server for the EC2 API and the attach simulator for the
// node instance (test/helpers/ebs-sim.ts: the one simulated part, loop devices standing in for EBS disks).
import { describeBackendScenarios } from './scenarios.js';

describeBackendScenarios('ebs');
