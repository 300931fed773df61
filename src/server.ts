import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Backend } from './backends/backend.js';
import type { ServeConfig } from './config.js';
import { ControllerService } from './controller/controller.js';
import { GroupControllerService } from './controller/group-controller.js';
import { deriveCapabilities } from './csi/capabilities.js';
import { Inflight } from './csi/inflight.js';
import { csiProto } from './csi/proto.js';
import type { RpcContext } from './csi/rpc.js';
import type { MetricsServer } from './metrics.js';
import { IdentityService } from './identity/identity.js';
import { NodeService } from './node/node.js';
import { csiProtoV0 } from './v0/proto.js';
import { v0IdentityHandlers } from './v0/identity.js';
import { v0ControllerHandlers } from './v0/controller.js';
import { v0NodeHandlers } from './v0/node.js';
import { checkNodePrivileges, chooseMounter, type Mounter } from './os/index.js';
import { loadDockerHolders, refuseDeleteWhileHeld, startDockerApi, type RunningDockerApi } from './docker/index.js';
import { VERSION } from './version.js';

// The gRPC server and the socket's life: refuse to start over a file that is not our stale socket,
// serve the services the mode asks for, and on shutdown let calls in flight finish (bounded).

export interface RunningServer {
  socketPath: string;
  inflight: Inflight;
  /** where Prometheus metrics are served, when --metrics-address is set */
  metricsUrl?: string | undefined;
  /** the Docker volume plugin socket, when --docker-endpoint is set */
  dockerSocketPath?: string | undefined;
  stop(timeoutMs: number): Promise<void>;
}

export class StartupError extends Error {}

/** A socket nobody answers on is stale and replaced; a live socket or any other file is an error. */
export async function claimSocketPath(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o750 });
  let st;
  try {
    st = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!st.isSocket())
    throw new StartupError(`endpoint ${path} exists and is not a socket; not touching it (remove it or choose another endpoint)`);
  if (await socketAnswers(path)) throw new StartupError(`endpoint ${path} is served by another running process`);
  await unlink(path);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export async function startServer(config: ServeConfig, backend: Backend, log: Logger): Promise<RunningServer> {
  const serveController = config.mode !== 'node';
  const serveNode = config.mode !== 'controller';
  const nodeProblem = serveNode ? await checkNodePrivileges(backend.node) : undefined;
  if (nodeProblem) log.warn({ problem: nodeProblem }, `node service cannot work: ${nodeProblem}`);

  const mounter = serveNode ? pickMounter(config, log) : undefined;
  const ctx: RpcContext = { log };
  const inflight = new Inflight();
  const proto = csiProto().csi.v1;
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const identity = new IdentityService(backend, {
    pluginName: config.pluginName,
    serveController,
    serveNode,
    nodeProblem,
    mounter: mounter?.kind,
  });
  // Volumes held through the Docker API refuse CSI DeleteVolume: the controller sees the backend through that check.
  const dockerHolders = config.docker ? await loadDockerHolders(config.docker.root) : undefined;
  const controller = new ControllerService(dockerHolders ? refuseDeleteWhileHeld(backend, dockerHolders) : backend, inflight);
  const node = new NodeService(backend, inflight, mounter);
  // Unregistered services answer UNIMPLEMENTED, which is how Mesos tells which CSI version is spoken.
  if (config.csiVersions !== 'v0') {
    server.addService(proto.Identity.service, identity.handlers(ctx));
    if (serveController) server.addService(proto.Controller.service, controller.handlers(ctx) as UntypedServiceImplementation);
    if (deriveCapabilities(backend, { controller: serveController, node: serveNode }).groupController) {
      server.addService(proto.GroupController.service, new GroupControllerService(backend, inflight).handlers(ctx));
    }
    if (serveNode) server.addService(proto.Node.service, node.handlers(ctx) as UntypedServiceImplementation);
  }
  // csi.v0 is a translation onto the same three services: one implementation, one set of locks.
  if (config.csiVersions !== 'v1') {
    const v0 = csiProtoV0().csi.v0;
    server.addService(v0.Identity.service, v0IdentityHandlers(identity, ctx));
    if (serveController) server.addService(v0.Controller.service, v0ControllerHandlers(controller, ctx) as UntypedServiceImplementation);
    if (serveNode) server.addService(v0.Node.service, v0NodeHandlers(node, ctx));
  }

  const metrics = config.metricsAddress ? await startMetrics(config, backend, inflight, log, mounter) : undefined;
  let docker: RunningDockerApi | undefined;
  if (metrics) ctx.observe = metrics.metrics.observeRpc;
  try {
    await claimSocketPath(config.socketPath);
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(`unix://${config.socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
    });
    await chmod(config.socketPath, config.socketMode);
    if (config.socketGroup !== undefined) await chown(config.socketPath, process.getuid?.() ?? 0, config.socketGroup);
    if (config.docker && dockerHolders) {
      const { socketMode, socketGroup } = config;
      const services = { backend, controller, node, holders: dockerHolders };
      docker = await startDockerApi({ ...config.docker, socketMode, socketGroup }, services, claimSocketPath, log);
    }
  } catch (e) {
    server.forceShutdown(); // nothing may keep the process alive after a failed start
    await metrics?.close();
    throw e;
  }

  return {
    socketPath: config.socketPath,
    inflight,
    metricsUrl: metrics?.url,
    dockerSocketPath: docker?.socketPath,
    async stop(timeoutMs: number) {
      const dockerClosed = docker?.close(timeoutMs);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn({ inflight: inflight.size }, 'calls still running at the shutdown deadline; stopping them');
          server.forceShutdown();
          resolve();
        }, timeoutMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await unlink(config.socketPath).catch(() => undefined);
      await dockerClosed;
      await metrics?.close();
    },
  };
}

/** The node's mounter, chosen once; a fall-back to mount(8) is said here, once. */
function pickMounter(config: ServeConfig, log: Logger): Mounter {
  try {
    const { mounter, fallbackReason } = chooseMounter(config.mounter);
    if (fallbackReason) log.warn({ mounter: mounter.kind, reason: fallbackReason }, `mounting with mount(8): ${fallbackReason}`);
    else log.info({ mounter: mounter.kind }, `node mounts with ${mounter.kind === 'syscall' ? 'mount(2)/umount2(2)' : 'mount(8)'}`);
    return mounter;
  } catch (e) {
    throw new StartupError(`--mounter=syscall: ${(e as Error).message}`);
  }
}

async function startMetrics(
  config: ServeConfig,
  backend: Backend,
  inflight: Inflight,
  log: Logger,
  mounter: Mounter | undefined,
): Promise<MetricsServer> {
  const address = config.metricsAddress!;
  const { serveMetrics } = await import('./metrics.js'); // prom-client is loaded only when metrics are on
  try {
    return await serveMetrics(
      address,
      {
        backend,
        inflight,
        countVolumes: config.mode !== 'node',
        labels: { plugin: config.pluginName, backend: backend.name, mode: config.mode, version: VERSION },
        mounter: mounter?.kind,
      },
      log,
    );
  } catch (e) {
    throw new StartupError(
      `--metrics-address=${address.host}:${address.port}: cannot listen (${(e as NodeJS.ErrnoException).code ?? String(e)})`,
    );
  }
}
