// The only code that calls the EC2 API. It speaks in the backend's own small types (EbsVolume, EbsSnapshot,
// EbsInstance) and turns every SDK failure into a CsiError with the code whose meaning is known here:
// throttling and network trouble are UNAVAILABLE (the CO retries), never INTERNAL.
import type * as Sdk from '@aws-sdk/client-ec2';
import { CsiError, type ErrorCode } from '../../errors.js';

export interface Ec2Options {
  region: string;
  /** http(s) URL of an EC2-compatible endpoint (moto in tests); undefined = AWS's own */
  endpoint?: string | undefined;
  maxAttempts?: number;
}

export interface EbsAttachment {
  instanceId: string;
  device: string;
  /** attaching | attached | detaching | detached | busy */
  state: string;
}

export interface EbsVolume {
  id: string;
  sizeGiB: number;
  type: string;
  iops: number | undefined;
  throughput: number | undefined;
  zone: string;
  /** creating | available | in-use | deleting | deleted | error */
  state: string;
  encrypted: boolean;
  kmsKeyId: string | undefined;
  snapshotId: string | undefined;
  multiAttach: boolean;
  tags: Record<string, string>;
  attachments: EbsAttachment[];
}

export interface EbsSnapshot {
  id: string;
  volumeId: string;
  sizeGiB: number;
  /** pending | completed | error */
  state: string;
  startTime: Date;
  tags: Record<string, string>;
}

export interface EbsInstance {
  id: string;
  type: string;
  zone: string;
  /** pending | running | shutting-down | terminated | stopping | stopped */
  state: string;
  /** device names in use, with the volume behind each */
  devices: { device: string; volumeId: string }[];
}

export interface CreateVolumeInput {
  sizeGiB: number;
  zone: string;
  type: string;
  iops?: number | undefined;
  throughput?: number | undefined;
  encrypted: boolean;
  kmsKeyId?: string | undefined;
  snapshotId?: string | undefined;
  multiAttach: boolean;
  tags: Record<string, string>;
  clientToken: string;
}

export interface ModifyVolumeInput {
  sizeGiB?: number | undefined;
  type?: string | undefined;
  iops?: number | undefined;
  throughput?: number | undefined;
}

export interface VolumeModification {
  /** modifying | optimizing | completed | failed */
  state: string;
  message: string;
  targetSizeGiB: number | undefined;
}

export type TagFilters = Record<string, string>;

/** EC2 error codes whose meaning is clear, and the gRPC code each becomes. */
const ERROR_CODES: [RegExp, ErrorCode][] = [
  [
    /^(RequestLimitExceeded|Throttling|ThrottlingException|TooManyRequestsException|ServiceUnavailable|Unavailable|InternalError|InsufficientVolumeCapacity|InsufficientInstanceCapacity)$/,
    'UNAVAILABLE',
  ],
  [/\.NotFound$|^InvalidVolumeID\.Malformed$|^InvalidInstanceID\.Malformed$|^InvalidSnapshotID\.Malformed$/, 'NOT_FOUND'],
  [
    /^(VolumeInUse|IncorrectState|IncorrectModificationState|InvalidVolume\.ZoneMismatch|SnapshotInUse|InvalidAttachment\.NotFound)$/,
    'FAILED_PRECONDITION',
  ],
  [/^(VolumeLimitExceeded|SnapshotLimitExceeded|AttachmentLimitExceeded|MaxIOPSLimitExceeded|VolumeIOPSLimit)$/, 'RESOURCE_EXHAUSTED'],
  [
    /^(UnauthorizedOperation|AuthFailure|InvalidClientTokenId|SignatureDoesNotMatch|AccessDenied|OptInRequired|Blocked)$/,
    'PERMISSION_DENIED',
  ],
  [
    /^(InvalidParameterValue|InvalidParameterCombination|InvalidParameter|MissingParameter|InvalidZone\.NotFound|InvalidKmsKey\.NotFound)$/,
    'INVALID_ARGUMENT',
  ],
  [/^IdempotentParameterMismatch$/, 'ALREADY_EXISTS'],
];

/** Network-level failures: the endpoint is not reachable now. */
const NETWORK_ERRORS =
  /ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE|socket hang up|TimeoutError|NetworkingError|RequestTimeout/;

export function ec2Error(operation: string, e: unknown): CsiError {
  if (e instanceof CsiError) return e;
  const err = e as { name?: string; Code?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = err.Code ?? err.name ?? 'Error';
  const message = `EC2 ${operation}: ${name}: ${err.message ?? String(e)}`;
  if (name === 'InvalidKmsKey.NotFound') return new CsiError('INVALID_ARGUMENT', message, { cause: e });
  for (const [pattern, code] of ERROR_CODES) if (pattern.test(name)) return new CsiError(code, message, { cause: e });
  if (name === 'CredentialsProviderError' || /credential/i.test(name)) {
    return new CsiError('FAILED_PRECONDITION', `${message} (configure AWS credentials: environment, profile or instance role)`, {
      cause: e,
    });
  }
  if (NETWORK_ERRORS.test(`${name} ${err.code ?? ''} ${err.message ?? ''}`)) return new CsiError('UNAVAILABLE', message, { cause: e });
  const status = err.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return new CsiError('UNAVAILABLE', message, { cause: e });
  return new CsiError('INTERNAL', message, { cause: e });
}

const tagMap = (tags: { Key?: string; Value?: string }[] | undefined): Record<string, string> =>
  Object.fromEntries((tags ?? []).filter((t) => t.Key !== undefined).map((t) => [t.Key!, t.Value ?? '']));

const tagList = (tags: Record<string, string>): Sdk.Tag[] => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));

const tagFilters = (tags: TagFilters): Sdk.Filter[] => Object.entries(tags).map(([k, v]) => ({ Name: `tag:${k}`, Values: [v] }));

function toVolume(v: Sdk.Volume): EbsVolume {
  return {
    id: v.VolumeId ?? '',
    sizeGiB: v.Size ?? 0,
    type: v.VolumeType ?? 'standard',
    iops: v.Iops,
    throughput: v.Throughput,
    zone: v.AvailabilityZone ?? '',
    state: v.State ?? 'unknown',
    encrypted: v.Encrypted ?? false,
    kmsKeyId: v.KmsKeyId,
    snapshotId: v.SnapshotId ? v.SnapshotId : undefined,
    multiAttach: v.MultiAttachEnabled ?? false,
    tags: tagMap(v.Tags),
    attachments: (v.Attachments ?? []).map((a) => ({
      instanceId: a.InstanceId ?? '',
      device: a.Device ?? '',
      state: a.State ?? 'unknown',
    })),
  };
}

function toSnapshot(s: Sdk.Snapshot): EbsSnapshot {
  return {
    id: s.SnapshotId ?? '',
    volumeId: s.VolumeId ?? '',
    sizeGiB: s.VolumeSize ?? 0,
    state: s.State ?? 'unknown',
    startTime: s.StartTime ?? new Date(0),
    tags: tagMap(s.Tags),
  };
}

/** A thin, typed wrapper over @aws-sdk/client-ec2, loaded on first use so other backends never load the SDK. */
export class Ec2 {
  private sdk: Promise<{ mod: typeof Sdk; client: Sdk.EC2Client }> | undefined;

  constructor(private readonly opts: Ec2Options) {}

  private load(): Promise<{ mod: typeof Sdk; client: Sdk.EC2Client }> {
    this.sdk ??= import('@aws-sdk/client-ec2').then((mod) => ({
      mod,
      client: new mod.EC2Client({
        region: this.opts.region,
        ...(this.opts.endpoint ? { endpoint: this.opts.endpoint } : {}),
        // Adaptive retry backs off client-side when EC2 throttles, so RequestLimitExceeded rarely surfaces.
        retryMode: 'adaptive',
        maxAttempts: this.opts.maxAttempts ?? 8,
      }),
    }));
    return this.sdk;
  }

  private async call<T>(operation: string, send: (mod: typeof Sdk, client: Sdk.EC2Client) => Promise<T>): Promise<T> {
    const { mod, client } = await this.load();
    try {
      return await send(mod, client);
    } catch (e) {
      throw ec2Error(operation, e);
    }
  }

  async describeVolumes(filter: { ids?: string[]; tags?: TagFilters; instanceId?: string }): Promise<EbsVolume[]> {
    const filters: Sdk.Filter[] = [...tagFilters(filter.tags ?? {})];
    // A volume-id filter (not VolumeIds) so a missing id is simply absent instead of failing the whole batch.
    if (filter.ids) filters.push({ Name: 'volume-id', Values: filter.ids });
    if (filter.instanceId) filters.push({ Name: 'attachment.instance-id', Values: [filter.instanceId] });
    const out: EbsVolume[] = [];
    let token: string | undefined;
    do {
      const res = await this.call('DescribeVolumes', (m, c) =>
        c.send(
          new m.DescribeVolumesCommand({
            Filters: filters,
            ...(filter.ids ? {} : { MaxResults: 500 }),
            ...(token ? { NextToken: token } : {}),
          }),
        ),
      );
      out.push(...(res.Volumes ?? []).map(toVolume));
      token = res.NextToken;
    } while (token);
    return out;
  }

  async createVolume(input: CreateVolumeInput): Promise<EbsVolume> {
    const res = await this.call('CreateVolume', (m, c) =>
      c.send(
        new m.CreateVolumeCommand({
          Size: input.sizeGiB,
          AvailabilityZone: input.zone,
          VolumeType: input.type as Sdk.VolumeType,
          ...(input.iops !== undefined ? { Iops: input.iops } : {}),
          ...(input.throughput !== undefined ? { Throughput: input.throughput } : {}),
          Encrypted: input.encrypted,
          ...(input.kmsKeyId ? { KmsKeyId: input.kmsKeyId } : {}),
          ...(input.snapshotId ? { SnapshotId: input.snapshotId } : {}),
          ...(input.multiAttach ? { MultiAttachEnabled: true } : {}),
          ClientToken: input.clientToken,
          TagSpecifications: [{ ResourceType: 'volume', Tags: tagList(input.tags) }],
        }),
      ),
    );
    return toVolume(res);
  }

  async deleteVolume(id: string): Promise<void> {
    await this.call('DeleteVolume', (m, c) => c.send(new m.DeleteVolumeCommand({ VolumeId: id })));
  }

  async attachVolume(volumeId: string, instanceId: string, device: string): Promise<void> {
    await this.call('AttachVolume', (m, c) =>
      c.send(new m.AttachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, Device: device })),
    );
  }

  async detachVolume(volumeId: string, instanceId: string, force = false): Promise<void> {
    await this.call('DetachVolume', (m, c) =>
      c.send(new m.DetachVolumeCommand({ VolumeId: volumeId, InstanceId: instanceId, ...(force ? { Force: true } : {}) })),
    );
  }

  async modifyVolume(id: string, input: ModifyVolumeInput): Promise<VolumeModification> {
    const res = await this.call('ModifyVolume', (m, c) =>
      c.send(
        new m.ModifyVolumeCommand({
          VolumeId: id,
          ...(input.sizeGiB !== undefined ? { Size: input.sizeGiB } : {}),
          ...(input.type !== undefined ? { VolumeType: input.type as Sdk.VolumeType } : {}),
          ...(input.iops !== undefined ? { Iops: input.iops } : {}),
          ...(input.throughput !== undefined ? { Throughput: input.throughput } : {}),
        }),
      ),
    );
    return toModification(res.VolumeModification);
  }

  async describeModification(id: string): Promise<VolumeModification | undefined> {
    const res = await this.call('DescribeVolumesModifications', (m, c) =>
      c.send(new m.DescribeVolumesModificationsCommand({ VolumeIds: [id] })),
    );
    const mods = res.VolumesModifications ?? [];
    return mods.length ? toModification(mods[mods.length - 1]) : undefined;
  }

  async describeInstance(id: string): Promise<EbsInstance | undefined> {
    try {
      const res = await this.call('DescribeInstances', (m, c) => c.send(new m.DescribeInstancesCommand({ InstanceIds: [id] })));
      const i = res.Reservations?.flatMap((r) => r.Instances ?? [])[0];
      if (!i) return undefined;
      return {
        id: i.InstanceId ?? id,
        type: i.InstanceType ?? '',
        zone: i.Placement?.AvailabilityZone ?? '',
        state: i.State?.Name ?? 'unknown',
        devices: (i.BlockDeviceMappings ?? []).map((b) => ({ device: b.DeviceName ?? '', volumeId: b.Ebs?.VolumeId ?? '' })),
      };
    } catch (e) {
      if (e instanceof CsiError && e.code === 'NOT_FOUND') return undefined;
      throw e;
    }
  }

  async firstZone(): Promise<string | undefined> {
    const res = await this.call('DescribeAvailabilityZones', (m, c) =>
      c.send(new m.DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'state', Values: ['available'] }] })),
    );
    return res.AvailabilityZones?.map((z) => z.ZoneName).find((z): z is string => Boolean(z));
  }

  async createTags(resourceId: string, tags: Record<string, string>): Promise<void> {
    await this.call('CreateTags', (m, c) => c.send(new m.CreateTagsCommand({ Resources: [resourceId], Tags: tagList(tags) })));
  }

  async deleteTags(resourceId: string, keys: string[]): Promise<void> {
    await this.call('DeleteTags', (m, c) =>
      c.send(new m.DeleteTagsCommand({ Resources: [resourceId], Tags: keys.map((Key) => ({ Key })) })),
    );
  }

  async createSnapshot(volumeId: string, tags: Record<string, string>, description: string): Promise<EbsSnapshot> {
    const res = await this.call('CreateSnapshot', (m, c) =>
      c.send(
        new m.CreateSnapshotCommand({
          VolumeId: volumeId,
          Description: description,
          TagSpecifications: [{ ResourceType: 'snapshot', Tags: tagList(tags) }],
        }),
      ),
    );
    return toSnapshot(res);
  }

  async describeSnapshots(filter: { ids?: string[]; tags?: TagFilters; volumeId?: string }): Promise<EbsSnapshot[]> {
    const filters: Sdk.Filter[] = [...tagFilters(filter.tags ?? {})];
    if (filter.ids) filters.push({ Name: 'snapshot-id', Values: filter.ids });
    if (filter.volumeId) filters.push({ Name: 'volume-id', Values: [filter.volumeId] });
    const out: EbsSnapshot[] = [];
    let token: string | undefined;
    do {
      const res = await this.call('DescribeSnapshots', (m, c) =>
        c.send(new m.DescribeSnapshotsCommand({ OwnerIds: ['self'], Filters: filters, ...(token ? { NextToken: token } : {}) })),
      );
      out.push(...(res.Snapshots ?? []).map(toSnapshot));
      token = res.NextToken;
    } while (token);
    return out;
  }

  async deleteSnapshot(id: string): Promise<void> {
    await this.call('DeleteSnapshot', (m, c) => c.send(new m.DeleteSnapshotCommand({ SnapshotId: id })));
  }
}

function toModification(m: Sdk.VolumeModification | undefined): VolumeModification {
  return { state: m?.ModificationState ?? 'completed', message: m?.StatusMessage ?? '', targetSizeGiB: m?.TargetSize };
}
