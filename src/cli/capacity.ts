import { CAPABILITY_OPTIONS, capabilityIfGiven, keyValues, topologyRequirement } from './args.js';
import type { Command } from './command.js';
import { formatBytes } from './output.js';

// `rexcsi capacity` (GetCapacity).

export const CAPACITY_COMMANDS: Command[] = [
  {
    name: 'capacity',
    summary: 'Space available for new volumes, and the size limits of one volume (GetCapacity).',
    options: {
      ...CAPABILITY_OPTIONS,
      param: { type: 'string', multiple: true, value: 'KEY=VALUE', description: 'parameters a volume would be created with' },
      topology: { type: 'string', multiple: true, value: 'K=V[,K=V]', description: 'capacity in this topology segment (the first given)' },
    },
    async run(ctx) {
      const cap = capabilityIfGiven(ctx);
      const topology = topologyRequirement(ctx, 'topology')?.requisite?.[0];
      const res = await ctx.csi.controller.GetCapacity({
        volume_capabilities: cap ? [cap] : [],
        parameters: keyValues(ctx, 'param'),
        ...(topology ? { accessible_topology: topology } : {}),
      });
      ctx.out.result(res, () => {
        const bytes = (n: number | undefined): string | undefined => (n === undefined ? undefined : `${formatBytes(n)} (${n} bytes)`);
        ctx.out.fields([
          ['available', bytes(Number(res.available_capacity))],
          ['largest volume', bytes(res.maximum_volume_size ? Number(res.maximum_volume_size.value) : undefined)],
          ['smallest volume', bytes(res.minimum_volume_size ? Number(res.minimum_volume_size.value) : undefined)],
        ]);
      });
    },
  },
];
