import { chmod, chown, unlink } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { Logger } from 'pino';
import type { Backend } from '../backends/backend.js';
import type { ControllerService } from '../controller/controller.js';
import type { NodeService } from '../node/node.js';
import { backendCatalog } from './catalog.js';
import { DockerDriver } from './driver.js';
import { HolderStore } from './holders.js';
import { dockerApiServer } from './http.js';

// The Docker volume plugin API beside the CSI socket (--docker-endpoint): same process, same backend,
// same ControllerService and NodeService instances. server.ts calls loadDockerHolders before it builds
// the services (the controller must refuse to delete a held volume) and startDockerApi once CSI serves.

export { HolderStore } from './holders.js';
export { refuseDeleteWhileHeld } from './guard.js';

export interface DockerApiConfig {
  socketPath: string;
  /** --docker-root: <root>/<name>/data are the mount points, <root>/.mounts.json the holders */
  root: string;
  socketMode: number;
  socketGroup?: number | undefined;
}

export interface RunningDockerApi {
  socketPath: string;
  /** stops accepting calls; calls in flight get up to timeoutMs */
  close(timeoutMs: number): Promise<void>;
}

export async function loadDockerHolders(root: string): Promise<HolderStore> {
  const holders = new HolderStore(root);
  await holders.load();
  return holders;
}

export async function startDockerApi(
  config: DockerApiConfig,
  services: { backend: Backend; controller: ControllerService; node: NodeService; holders: HolderStore },
  claimSocketPath: (path: string) => Promise<void>,
  log: Logger,
): Promise<RunningDockerApi> {
  const driver = new DockerDriver({ ...services, catalog: backendCatalog(services.backend), root: config.root });
  const server = dockerApiServer(driver, log);
  await claimSocketPath(config.socketPath);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  await chmod(config.socketPath, config.socketMode);
  if (config.socketGroup !== undefined) await chown(config.socketPath, process.getuid?.() ?? 0, config.socketGroup);
  return { socketPath: config.socketPath, close: (timeoutMs) => closeServer(server, config.socketPath, timeoutMs) };
}

async function closeServer(server: Server, socketPath: string, timeoutMs: number): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      server.closeAllConnections();
      resolve();
    }, timeoutMs);
    server.close(() => {
      clearTimeout(timer);
      resolve();
    });
    server.closeIdleConnections();
  });
  await unlink(socketPath).catch(() => undefined);
}
