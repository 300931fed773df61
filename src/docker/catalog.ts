import type { Backend } from '../backends/backend.js';

// Docker addresses volumes by name, CSI by id, and the CSI wire Volume carries no name: this is the one
// place that asks the backend for names. Reads only; every change goes through the CSI services.

export interface CatalogVolume {
  id: string;
  name: string;
  capacityBytes: number;
  parameters: Record<string, string>;
  context: Record<string, string>;
}

export interface VolumeCatalog {
  findByName(name: string): Promise<CatalogVolume | undefined>;
  /** every volume of the backend, all pages */
  list(): Promise<CatalogVolume[]>;
}

export function backendCatalog(backend: Backend): VolumeCatalog {
  const pick = (v: CatalogVolume): CatalogVolume => ({
    id: v.id,
    name: v.name,
    capacityBytes: v.capacityBytes,
    parameters: v.parameters,
    context: v.context,
  });
  return {
    async findByName(name) {
      const v = await backend.findVolumeByName(name);
      return v ? pick(v) : undefined;
    },
    async list() {
      return (await backend.listVolumes({ afterId: '', limit: 0 })).map(pick);
    },
  };
}
