// Promise-returning, typed CSI v1 clients for tests.
//
//   const csi = csiClients(plugin.endpoint);
//   const { volume } = await csi.controller.CreateVolume({ name: 'v1', volume_capabilities: [...] });
//   await expectGrpcError(csi.node.NodeStageVolume({}), 'INVALID_ARGUMENT');
//   csi.close();
//
// Method names are the proto's (PascalCase). Requests are the generated permissive types, responses the
// generated `__Output` types (src/csi/gen, made by `npm run gen`). The proto is loaded by the plugin's own
// src/csi/proto.ts, so with the same options (keepCase, longs as Number, enums as String, defaults,
// oneofs). A failed call rejects with the grpc-js ServiceError (`code`, `details`, `metadata`), its
// message prefixed with the service and method.

import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import { csiProto } from '../../src/csi/proto.js';
import type { ProtoGrpcType } from '../../src/csi/gen/csi.js';

export interface CallOptions {
  /** Deadline for this call in milliseconds (default 60 s). */
  deadlineMs?: number;
  metadata?: grpc.Metadata;
}

const DEFAULT_DEADLINE_MS = 60_000;

type V1 = ProtoGrpcType['csi']['v1'];

// The generated *Definition interfaces extend grpc.ServiceDefinition, which has a string index signature;
// keep only the named methods.
type NamedKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };

type Unary<M> =
  M extends MethodDefinition<infer Req, infer _Res, infer _OutReq, infer Res>
    ? (request: Req, options?: CallOptions) => Promise<Res>
    : never;

/** Every RPC of a service as `(request, options?) => Promise<response>`. */
export type PromiseClient<Def> = { [K in NamedKeys<Def>]: Unary<Def[K]> };

export type IdentityClient = PromiseClient<V1['Identity']['service']>;
export type ControllerClient = PromiseClient<V1['Controller']['service']>;
export type GroupControllerClient = PromiseClient<V1['GroupController']['service']>;
export type NodeClient = PromiseClient<V1['Node']['service']>;

export interface CsiClients {
  identity: IdentityClient;
  controller: ControllerClient;
  groupController: GroupControllerClient;
  node: NodeClient;
  /** The grpc-js target the clients use, e.g. `unix:///tmp/rexcsi-test/x/csi.sock`. */
  target: string;
  /** Closes the shared channel; calls made afterwards fail. */
  close(): void;
}

/** `unix:///abs/path.sock`, `unix:/abs/path.sock` or a plain path -> a grpc-js target. */
export function grpcTarget(endpoint: string): string {
  if (endpoint.startsWith('unix:')) return endpoint;
  if (endpoint.startsWith('/')) return `unix://${endpoint}`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(endpoint)) return endpoint; // dns:, ipv4:, ...
  return `unix:${endpoint}`; // relative path
}

export function promisify<Def extends grpc.ServiceDefinition>(client: grpc.Client, service: Def, serviceName: string): PromiseClient<Def> {
  const out: Record<string, (req: unknown, opts?: CallOptions) => Promise<unknown>> = {};
  for (const method of Object.keys(service)) {
    const fn = (client as unknown as Record<string, unknown>)[method];
    if (typeof fn !== 'function') continue;
    out[method] = (request, opts = {}) =>
      new Promise((resolve, reject) => {
        const deadline = Date.now() + (opts.deadlineMs ?? DEFAULT_DEADLINE_MS);
        fn.call(client, request, opts.metadata ?? new grpc.Metadata(), { deadline }, (err: grpc.ServiceError | null, response: unknown) => {
          if (err) {
            err.message = `${serviceName}/${method}: ${err.message}`;
            reject(err);
          } else {
            resolve(response);
          }
        });
      });
  }
  return out as unknown as PromiseClient<Def>;
}

/** Clients for the four csi.v1 services over one channel to `endpoint` (unix:///path or a plain path). */
export function csiClients(endpoint: string): CsiClients {
  const v1 = csiProto().csi.v1;
  const target = grpcTarget(endpoint);
  const creds = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target, creds, {});
  const opts = { channelOverride: channel };
  const identity = new v1.Identity(target, creds, opts);
  const controller = new v1.Controller(target, creds, opts);
  const groupController = new v1.GroupController(target, creds, opts);
  const node = new v1.Node(target, creds, opts);
  return {
    identity: promisify(identity, v1.Identity.service, 'csi.v1.Identity'),
    controller: promisify(controller, v1.Controller.service, 'csi.v1.Controller'),
    groupController: promisify(groupController, v1.GroupController.service, 'csi.v1.GroupController'),
    node: promisify(node, v1.Node.service, 'csi.v1.Node'),
    target,
    close: () => channel.close(),
  };
}

export type GrpcCodeName = keyof typeof grpc.status;

export function isServiceError(e: unknown): e is grpc.ServiceError {
  return e instanceof Error && typeof (e as Partial<grpc.ServiceError>).code === 'number' && 'details' in e;
}

/** 'NOT_FOUND' for 5, and so on. */
export function grpcCodeName(code: number): string {
  return (grpc.status as unknown as Record<number, string>)[code] ?? `code ${code}`;
}

/**
 * Awaits `promise` and checks that it failed with gRPC status `code` (a name such as 'NOT_FOUND' or the
 * number), and that the status carries no binary details (CSI: status.details must be empty). Returns the
 * error for further checks, e.g. on `details`.
 */
export async function expectGrpcError(promise: Promise<unknown>, code: GrpcCodeName | grpc.status): Promise<grpc.ServiceError> {
  const want = typeof code === 'number' ? code : grpc.status[code];
  let result: unknown;
  try {
    result = await promise;
  } catch (e) {
    if (!isServiceError(e)) throw new Error(`expected gRPC ${grpcCodeName(want)}, got a non-gRPC error: ${String(e)}`, { cause: e });
    if (e.code !== want) {
      throw new Error(`expected gRPC ${grpcCodeName(want)}, got ${grpcCodeName(e.code)} (details: ${JSON.stringify(e.details)})`, {
        cause: e,
      });
    }
    if (e.metadata?.get('grpc-status-details-bin').length) {
      throw new Error(`gRPC ${grpcCodeName(want)} carries status details; CSI requires them empty`, { cause: e });
    }
    return e;
  }
  throw new Error(`expected gRPC ${grpcCodeName(want)}, but the call succeeded with ${JSON.stringify(result)}`);
}
