import * as grpc from '@grpc/grpc-js';
import type { MethodDefinition } from '@grpc/proto-loader';
import type { ProtoGrpcType } from '../csi/gen/csi.js';
import { csiProto } from '../csi/proto.js';

// Promise-returning CSI clients for the command line, over one channel to any CSI endpoint (ours or another
// plugin's). Requests and responses are the types generated from the proto.

type V1 = ProtoGrpcType['csi']['v1'];

// The generated *Definition interfaces carry a string index signature; keep only the named methods.
type NamedKeys<T> = keyof { [K in keyof T as string extends K ? never : number extends K ? never : K]: T[K] };
type Unary<M> = M extends MethodDefinition<infer Req, infer _Res, infer _OutReq, infer Res> ? (request: Req) => Promise<Res> : never;
export type PromiseClient<Def> = { [K in NamedKeys<Def>]: Unary<Def[K]> };

export interface CsiConnection {
  identity: PromiseClient<V1['Identity']['service']>;
  controller: PromiseClient<V1['Controller']['service']>;
  groupController: PromiseClient<V1['GroupController']['service']>;
  node: PromiseClient<V1['Node']['service']>;
  /** the grpc-js target, e.g. unix:///run/csi/csi.sock */
  target: string;
  close(): void;
}

/** `unix:///abs/path.sock`, `unix:/abs`, a plain path, or a grpc-js target such as `dns:host:port`, `host:port`. */
export function grpcTarget(endpoint: string): string {
  if (endpoint.startsWith('unix:')) return endpoint;
  if (endpoint.startsWith('/')) return `unix://${endpoint}`;
  if (/^[a-z][a-z0-9+.-]*:/i.test(endpoint) || /^[^/]+:\d+$/.test(endpoint)) return endpoint;
  return `unix:${endpoint}`; // a relative path
}

/** The socket file a unix target names, or undefined for network targets. */
export function socketPathOf(target: string): string | undefined {
  if (!target.startsWith('unix:')) return undefined;
  return target.startsWith('unix://') ? target.slice('unix://'.length) : target.slice('unix:'.length);
}

/** One error class for every failed call, so the caller can map it to an exit code and a hint. */
export class CallFailed extends Error {
  constructor(
    readonly method: string,
    readonly code: grpc.status,
    readonly details: string,
  ) {
    super(`${method}: ${grpc.status[code] ?? `code ${code}`}: ${details}`);
  }
}

function promisify<Def extends grpc.ServiceDefinition>(client: grpc.Client, service: Def, timeoutMs: number): PromiseClient<Def> {
  const out: Record<string, (req: unknown) => Promise<unknown>> = {};
  for (const method of Object.keys(service)) {
    const fn = (client as unknown as Record<string, unknown>)[method];
    if (typeof fn !== 'function') continue;
    out[method] = (request) =>
      new Promise((resolve, reject) => {
        const options: grpc.CallOptions = { deadline: Date.now() + timeoutMs };
        (fn as (...a: unknown[]) => void).call(
          client,
          request,
          new grpc.Metadata(),
          options,
          (err: grpc.ServiceError | null, res: unknown) => {
            if (err) reject(new CallFailed(method, err.code, err.details || err.message));
            else resolve(res);
          },
        );
      });
  }
  return out as unknown as PromiseClient<Def>;
}

export function connect(endpoint: string, timeoutMs: number): CsiConnection {
  const v1 = csiProto().csi.v1;
  const target = grpcTarget(endpoint);
  const creds = grpc.credentials.createInsecure();
  const channel = new grpc.Channel(target, creds, {});
  const opts = { channelOverride: channel };
  return {
    identity: promisify(new v1.Identity(target, creds, opts), v1.Identity.service, timeoutMs),
    controller: promisify(new v1.Controller(target, creds, opts), v1.Controller.service, timeoutMs),
    groupController: promisify(new v1.GroupController(target, creds, opts), v1.GroupController.service, timeoutMs),
    node: promisify(new v1.Node(target, creds, opts), v1.Node.service, timeoutMs),
    target,
    close: () => channel.close(),
  };
}
