// The trusted storage pool as the controller's glusterd sees it: which of the --gluster-server hosts are
// in the pool and connected (placement takes only those), and who still mounts a volume.
import type { GlusterCli } from './cli.js';
import type { PoolServer } from './placement.js';

/**
 * Every --gluster-server with whether it is up now. glusterd names itself `localhost`; it is the configured
 * server that no peer entry names (the first one when that is unclear). A host glusterd does not know
 * counts as down. Brick counts are not read (placement then keeps the configured order).
 */
export async function poolServers(cli: GlusterCli, servers: string[], roots: Map<string, string[]>): Promise<PoolServer[]> {
  const pool = await cli.poolList();
  const peers = pool.filter((p) => !p.self);
  const named = new Map<string, boolean>();
  for (const p of peers) for (const h of p.hostnames) named.set(h, p.connected);
  const self = servers.find((s) => !named.has(s)) ?? servers[0];
  return servers.map((host) => ({
    host,
    up: host === self || named.get(host) === true,
    roots: roots.get(host) ?? [],
    bricks: 0,
  }));
}

/** Why a volume may not be deleted now: clients still mount it (undefined when none does). */
export function volumeClientsProblem(volume: string, clients: { mounts: number; hosts: string[] }): string | undefined {
  if (clients.mounts === 0) return undefined;
  return (
    `gluster volume ${volume} is still mounted by ${clients.mounts} client(s) (connections to its bricks from ${clients.hosts.join(', ') || 'unknown hosts'}); ` +
    'unpublish and unstage it on every node before deleting it'
  );
}
