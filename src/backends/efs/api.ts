import {
  CreateAccessPointCommand,
  DeleteAccessPointCommand,
  DescribeAccessPointsCommand,
  DescribeFileSystemsCommand,
  DescribeMountTargetsCommand,
  EFSClient,
  TagResourceCommand,
  type AccessPointDescription,
  type FileSystemDescription,
  type MountTargetDescription,
} from '@aws-sdk/client-efs';
import { notFound, CsiError, unavailable, type ErrorCode } from '../../errors.js';

// The only code that calls the EFS API. It returns plain values, turns "not found" answers into undefined
// where absence is an answer (describe), and every other failure into a CsiError with a code a person can
// act on: credentials and throttling are UNAVAILABLE (retry), a refused request FAILED_PRECONDITION.

export interface EfsApiConfig {
  region: string;
  /** http(s) URL of an EFS-compatible endpoint (moto_server in tests); the SDK's default when unset */
  endpoint?: string | undefined;
}

export interface Tag {
  key: string;
  value: string;
}

export interface FileSystem {
  id: string;
  lifeCycleState: string;
}

export interface AccessPoint {
  id: string;
  fileSystemId: string;
  uid?: number | undefined;
  gid?: number | undefined;
  rootPath: string;
  lifeCycleState: string;
  tags: Tag[];
}

export interface MountTarget {
  id: string;
  zone: string;
  ipAddress: string;
  lifeCycleState: string;
}

export interface CreateAccessPointInput {
  fileSystemId: string;
  /** idempotency token for the API (real EFS honours it; moto ignores it) */
  clientToken: string;
  uid: number;
  gid: number;
  rootPath: string;
  /** octal string such as "700" */
  permissions: string;
  tags: Tag[];
}

const NOT_FOUND_ERRORS = new Set(['FileSystemNotFound', 'AccessPointNotFound', 'MountTargetNotFound']);
const RETRYABLE_ERRORS = new Set(['ThrottlingException', 'TooManyRequests', 'InternalServerError', 'ServiceUnavailable', 'RequestTimeout']);
const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'ExpiredTokenException',
]);

/** The error name the SDK gives an API answer ("FileSystemNotFound", ...), or the class name for local failures. */
export function awsErrorName(e: unknown): string {
  const err = e as { name?: unknown; ErrorCode?: unknown; code?: unknown };
  if (typeof err?.ErrorCode === 'string') return err.ErrorCode;
  return typeof err?.name === 'string' ? err.name : '';
}

export function isNotFoundError(e: unknown): boolean {
  return NOT_FOUND_ERRORS.has(awsErrorName(e));
}

/** A CsiError for a failed EFS call: the operation, what AWS said, and a code that tells the CO what to do. */
export function toRexError(operation: string, e: unknown): CsiError {
  if (e instanceof CsiError) return e;
  const name = awsErrorName(e);
  const message = e instanceof Error ? e.message : String(e);
  let code: ErrorCode = 'FAILED_PRECONDITION';
  if (NOT_FOUND_ERRORS.has(name)) code = 'NOT_FOUND';
  else if (CREDENTIAL_ERRORS.has(name) || RETRYABLE_ERRORS.has(name) || isNetworkError(e)) code = 'UNAVAILABLE';
  else if (name === 'AccessPointLimitExceeded') code = 'RESOURCE_EXHAUSTED';
  else if (name === 'BadRequest' || name === 'ValidationException') code = 'INVALID_ARGUMENT';
  return new CsiError(code, `EFS ${operation} failed: ${name ? `${name}: ` : ''}${message}`, { cause: e });
}

function isNetworkError(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return typeof code === 'string' && /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|EPIPE)$/.test(code);
}

export class EfsApi {
  private readonly client: EFSClient;

  constructor(readonly config: EfsApiConfig) {
    this.client = new EFSClient({
      region: config.region,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      maxAttempts: 4,
    });
  }

  destroy(): void {
    this.client.destroy();
  }

  /** The file system, or undefined when it does not exist. */
  async describeFileSystem(id: string): Promise<FileSystem | undefined> {
    try {
      const out = await this.client.send(new DescribeFileSystemsCommand({ FileSystemId: id }));
      const fs = out.FileSystems?.[0];
      return fs ? toFileSystem(fs) : undefined;
    } catch (e) {
      if (isNotFoundError(e)) return undefined;
      throw toRexError('DescribeFileSystems', e);
    }
  }

  /** A cheap call that proves the endpoint answers and the credentials are accepted. */
  async ping(): Promise<void> {
    try {
      await this.client.send(new DescribeFileSystemsCommand({ MaxItems: 1 }));
    } catch (e) {
      const err = toRexError('DescribeFileSystems', e);
      throw err.code === 'UNAVAILABLE' ? err : unavailable(err.message);
    }
  }

  async describeAccessPoint(id: string): Promise<AccessPoint | undefined> {
    try {
      const out = await this.client.send(new DescribeAccessPointsCommand({ AccessPointId: id }));
      const ap = out.AccessPoints?.[0];
      return ap ? toAccessPoint(ap) : undefined;
    } catch (e) {
      if (isNotFoundError(e)) return undefined;
      throw toRexError('DescribeAccessPoints', e);
    }
  }

  /** Every access point of one file system, or of the whole region when fileSystemId is unset. */
  async listAccessPoints(fileSystemId?: string): Promise<AccessPoint[]> {
    const all: AccessPoint[] = [];
    let token: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new DescribeAccessPointsCommand({
            ...(fileSystemId ? { FileSystemId: fileSystemId } : {}),
            MaxResults: 1000,
            ...(token ? { NextToken: token } : {}),
          }),
        );
      } catch (e) {
        if (fileSystemId && isNotFoundError(e)) throw notFound(`file system ${fileSystemId} does not exist`);
        throw toRexError('DescribeAccessPoints', e);
      }
      for (const ap of out.AccessPoints ?? []) all.push(toAccessPoint(ap));
      token = out.NextToken || undefined;
    } while (token);
    return all;
  }

  async createAccessPoint(input: CreateAccessPointInput): Promise<AccessPoint> {
    try {
      const out = await this.client.send(
        new CreateAccessPointCommand({
          FileSystemId: input.fileSystemId,
          ClientToken: input.clientToken,
          PosixUser: { Uid: input.uid, Gid: input.gid },
          RootDirectory: {
            Path: input.rootPath,
            CreationInfo: { OwnerUid: input.uid, OwnerGid: input.gid, Permissions: input.permissions },
          },
          Tags: input.tags.map((t) => ({ Key: t.key, Value: t.value })),
        }),
      );
      return toAccessPoint(out);
    } catch (e) {
      throw toRexError('CreateAccessPoint', e);
    }
  }

  async tagResource(id: string, tags: Tag[]): Promise<void> {
    try {
      await this.client.send(new TagResourceCommand({ ResourceId: id, Tags: tags.map((t) => ({ Key: t.key, Value: t.value })) }));
    } catch (e) {
      throw toRexError('TagResource', e);
    }
  }

  /** Deletes the access point; fine when it is already gone. */
  async deleteAccessPoint(id: string): Promise<void> {
    try {
      await this.client.send(new DeleteAccessPointCommand({ AccessPointId: id }));
    } catch (e) {
      if (isNotFoundError(e)) return;
      throw toRexError('DeleteAccessPoint', e);
    }
  }

  async listMountTargets(fileSystemId: string): Promise<MountTarget[]> {
    const all: MountTarget[] = [];
    let marker: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(
          new DescribeMountTargetsCommand({ FileSystemId: fileSystemId, ...(marker ? { Marker: marker } : {}) }),
        );
      } catch (e) {
        if (isNotFoundError(e)) throw notFound(`file system ${fileSystemId} does not exist`);
        throw toRexError('DescribeMountTargets', e);
      }
      for (const mt of out.MountTargets ?? []) all.push(toMountTarget(mt));
      marker = out.NextMarker || undefined;
    } while (marker);
    return all;
  }
}

function toFileSystem(fs: FileSystemDescription): FileSystem {
  return { id: fs.FileSystemId ?? '', lifeCycleState: fs.LifeCycleState ?? '' };
}

function toAccessPoint(ap: AccessPointDescription): AccessPoint {
  return {
    id: ap.AccessPointId ?? '',
    fileSystemId: ap.FileSystemId ?? '',
    uid: ap.PosixUser?.Uid,
    gid: ap.PosixUser?.Gid,
    rootPath: ap.RootDirectory?.Path ?? '/',
    lifeCycleState: ap.LifeCycleState ?? '',
    tags: (ap.Tags ?? []).map((t) => ({ key: t.Key ?? '', value: t.Value ?? '' })),
  };
}

function toMountTarget(mt: MountTargetDescription): MountTarget {
  return {
    id: mt.MountTargetId ?? '',
    zone: mt.AvailabilityZoneName ?? '',
    ipAddress: mt.IpAddress ?? '',
    lifeCycleState: mt.LifeCycleState ?? '',
  };
}
