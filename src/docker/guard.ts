import type { Backend } from '../backends/backend.js';
import { failedPrecondition } from '../errors.js';
import { describeHolders } from './driver.js';
import type { HolderStore } from './holders.js';

// A volume mounted through the Docker API must not be deleted through CSI. The controller is handed this
// view of the backend, whose deleteVolume first asks the holders, so the check runs inside DeleteVolume's
// own per-volume lock, for every backend, with nothing else of the backend changed.

export function refuseDeleteWhileHeld(backend: Backend, holders: HolderStore): Backend {
  const deleteVolume = async (id: string): Promise<void> => {
    const held = holders.findById(id);
    if (held) {
      throw failedPrecondition(
        `volume ${id} is mounted through the Docker API as ${held.name} by ${describeHolders(held.holders)}; unmount it there (docker, dvdcli or "rexcsi docker unmount") first`,
      );
    }
    return backend.deleteVolume(id);
  };
  return new Proxy(backend, {
    get(target, prop) {
      if (prop === 'deleteVolume') return deleteVolume;
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
