import { connect } from 'node:net';
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { Server, ServerCredentials, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import type { Backend } from './backends/backend.js';
import type { ServeConfig } from './config.js';
import { ControllerService } from './controller/controller.js';
import { Inflight } from './csi/inflight.js';
import { csiProto } from './csi/proto.js';
import type { RpcContext } from './csi/rpc.js';
import { IdentityService } from './identity/identity.js';
import { NodeService } from './node/node.js';
import { checkNodePrivileges } from './os/index.js';

// The gRPC server and the socket's life: refuse to start over a file that is not our stale socket,
// serve the services the mode asks for, and on shutdown let calls in flight finish (bounded).

export interface RunningServer {
  socketPath: string;
  inflight: Inflight;
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
  if (!st.isSocket()) throw new StartupError(`endpoint ${path} exists and is not a socket; not touching it (remove it or choose another endpoint)`);
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
  const nodeProblem = serveNode ? await checkNodePrivileges(backend.features.nodeSource) : undefined;
  if (nodeProblem) log.warn({ problem: nodeProblem }, `node service cannot work: ${nodeProblem}`);

  const ctx: RpcContext = { log };
  const inflight = new Inflight();
  const proto = csiProto().csi.v1;
  const server = new Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024 });
  const identity = new IdentityService(backend, { pluginName: config.pluginName, serveController, serveNode, nodeProblem });
  server.addService(proto.Identity.service, identity.handlers(ctx));
  if (serveController) {
    server.addService(proto.Controller.service, new ControllerService(backend, inflight).handlers(ctx) as UntypedServiceImplementation);
  }
  if (serveNode) server.addService(proto.Node.service, new NodeService(backend, inflight).handlers(ctx) as UntypedServiceImplementation);

  await claimSocketPath(config.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${config.socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  await chmod(config.socketPath, config.socketMode);
  if (config.socketGroup !== undefined) await chown(config.socketPath, process.getuid?.() ?? 0, config.socketGroup);

  return {
    socketPath: config.socketPath,
    inflight,
    async stop(timeoutMs: number) {
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
    },
  };
}
