/**
 * A local Azure Resource Manager for the VM/NIC/VNet/NSG surface a JIT access system touches, served
 * over HTTPS so the real `@azure/arm-compute` and `@azure/arm-network` clients can talk to it.
 *
 * Point a client at it with
 * `new NetworkManagementClient(credential, DEMO.subscriptionId, { endpoint: emulator.endpoint, tlsOptions: { ca: emulator.caPem } })`.
 * HTTPS is not optional: the SDK's bearer-token policy refuses to send a token over plain HTTP.
 */
import { AppServiceSites } from './sites';
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

import { RoleAssignments, type RoleAssignmentSpec } from './authorization';
import { DEMO, seedDemo } from './demo';
import { ArmError, armErrors, type ArmErrorBody } from './errors';
import { FaultInjector, type OperationFaultSpec, type RequestFaultSpec } from './faults';
import { LockRegistry } from './locks';
import { ArmModel, type BusyAnswer } from './model';
import { OperationRegistry } from './operations';
import { loopbackCertificate } from '../loopbackCertificate';
import { serveArmRequest, type ArmResponse, type RouteContext } from './routes';
import { ARM_THROTTLE_LIMITS, ArmThrottle, requestKind, type ThrottleLimits } from './throttling';
import type { NsgState, SecurityRuleInput, VmSpec } from './types';

export { DEMO, DEMO_VMS, JIT_ROLE_ACTIONS } from './demo';
export { RoleAssignments } from './authorization';
export type { Principal, RoleAssignmentSpec } from './authorization';
export { LockRegistry } from './locks';
export type { LockLevel, ManagementLock } from './locks';
export { ArmError } from './errors';
export type { BusyAnswer } from './model';
export { FaultInjector } from './faults';
export type { FaultMethod, OperationFaultSpec, RequestFaultSpec } from './faults';
export { ARM_THROTTLE_LIMITS } from './throttling';
export type { ThrottleLimits, TokenBucketLimit } from './throttling';
export type * from './types';

/**
 * - `fast` (default): operations finish at once and `Retry-After` is 0, so tests and the sandbox run in
 *   milliseconds; a client's own poll interval decides how quickly it sees the end.
 * - `azure`: what Network RP does — rule operations take {@link AZURE_LIKE.operationLatencyInMs} and every
 *   accepted or running operation answers `Retry-After: 10`.
 */
export type ArmProfile = 'fast' | 'azure';

/**
 * The `azure` profile. `Retry-After: 10` is what Network RP answers while an operation runs (the operation-status
 * poll in Azure/azure-sdk-for-js sdk/network/arm-network/recordings/node/network_test/recording_subnets_create_test.json,
 * and the DELETE's 202 in recording_subnets_begindeleteandwait_test.json beside it). The 3 s a rule operation takes
 * is the benchmark's assumption, not a documented figure.
 */
export const AZURE_LIKE = { operationLatencyInMs: 3000, operationRetryAfterInSeconds: 10 } as const;

export interface ArmEmulatorOptions {
  /** Port to listen on; 0 (default) picks a free one. */
  port?: number;
  /** Default `127.0.0.1`. */
  host?: string;
  /** Defaults for the two options below (see {@link ArmProfile}). Default `fast`. */
  profile?: ArmProfile;
  /** How long a rule PUT/DELETE stays `InProgress`. Default: 0 (`fast`), 3000 (`azure`). */
  operationLatencyInMs?: number;
  /** Delay added before every ARM request is served. Default 0. */
  requestLatencyInMs?: number;
  /**
   * `Retry-After` on accepted and running operations. Default 0 (`fast`), which the SDK ignores, so polling
   * follows the client's `updateIntervalInMs`; 10 (`azure`). A positive value overrides that interval, as
   * Azure's own values do.
   */
  operationRetryAfterInSeconds?: number;
  /**
   * ARM's request throttling (dev/arm/throttling.ts): every response reports the caller's remaining reads,
   * writes or deletes, and an empty bucket answers `429 SubscriptionRequestsThrottled` with `Retry-After`.
   * Default: ARM's documented limits in the `azure` profile; off in `fast`, whose operations end at once and
   * whose clients poll every 50 ms — a time-compressed ARM, against which per-second limits would measure the
   * compression, not the client.
   */
  throttling?: ThrottleLimits | false;
  /**
   * How a write to an NSG with an operation in flight is refused. Network RP answers both ways:
   * `409 AnotherOperationInProgress`, and `429 RetryableError` with detail `RetryableErrorDueToAnotherOperation`
   * (see dev/arm/errors.ts). Default `AnotherOperationInProgress`.
   */
  busyAnswer?: BusyAnswer;
  /** Seed the demo estate ({@link DEMO}). Default true. */
  seedDemo?: boolean;
  /**
   * Role assignments to start with, replacing the defaults: with the demo estate, the deployment identity
   * ({@link DEMO.identity}, the principal of any opaque bearer token) holds the JIT role where a deployment would
   * ({@link DEMO.roleAssignments}); without it, that identity is Owner-like (`*` at `/`) so a test building its own
   * estate starts unrestricted and narrows what it tests.
   */
  roleAssignments?: RoleAssignmentSpec[];
}

/** One served ARM request (admin requests under `/_emulator/` are not logged). */
export interface ArmRequestLogEntry {
  method: string;
  /** Request path without the query. */
  path: string;
  status: number;
  /** When the request arrived (ms since the epoch). */
  at: number;
}

const ADMIN_PREFIX = '/_emulator/';
const MAX_BODY_BYTES = 1024 * 1024;

export class ArmEmulator {
  readonly faults = new FaultInjector();
  /** Function apps' authentication settings, which the app reads at start-up in easyauth mode. */
  readonly sites = new AppServiceSites();
  readonly log: ArmRequestLogEntry[] = [];

  /** Management locks (`Microsoft.Authorization/locks`); tests may also add them through the locks API. */
  readonly locks = new LockRegistry();
  /** Who may do what where; a request the caller's assignments do not grant is answered 403. */
  readonly roles = new RoleAssignments(DEMO.identity);

  private readonly options: Required<
    Omit<ArmEmulatorOptions, 'seedDemo' | 'roleAssignments' | 'throttling' | 'profile'>
  >;
  private readonly throttle: ArmThrottle | undefined;
  private readonly operations = new OperationRegistry();
  private readonly model: ArmModel;
  private server: Server | undefined;
  private starting: Promise<void> | undefined;
  private certificatePem: string | undefined;
  /** Requests waiting out `requestLatencyInMs`, released early by stop(). */
  private readonly requestDelays = new Map<NodeJS.Timeout, () => void>();

  constructor(options: ArmEmulatorOptions = {}) {
    const profile =
      options.profile === 'azure' ? AZURE_LIKE : { operationLatencyInMs: 0, operationRetryAfterInSeconds: 0 };
    this.options = {
      port: options.port ?? 0,
      host: options.host ?? '127.0.0.1',
      operationLatencyInMs: nonNegative(
        'operationLatencyInMs',
        options.operationLatencyInMs ?? profile.operationLatencyInMs,
      ),
      requestLatencyInMs: nonNegative('requestLatencyInMs', options.requestLatencyInMs ?? 0),
      operationRetryAfterInSeconds: nonNegative(
        'operationRetryAfterInSeconds',
        options.operationRetryAfterInSeconds ?? profile.operationRetryAfterInSeconds,
      ),
      busyAnswer: options.busyAnswer ?? 'AnotherOperationInProgress',
    };
    const limits = options.throttling ?? (options.profile === 'azure' ? ARM_THROTTLE_LIMITS : false);
    this.throttle = limits === false ? undefined : new ArmThrottle(limits);
    this.model = new ArmModel({
      operations: this.operations,
      operationLatencyInMs: this.options.operationLatencyInMs,
      busyAnswer: this.options.busyAnswer,
      operationRetryAfterInSeconds: this.options.operationRetryAfterInSeconds,
      operationUrl: (record) =>
        this.absoluteUrl(`${OperationRegistry.statusPath(record)}?api-version=${record.apiVersion}`),
    });
    const seeded = options.seedDemo ?? true;
    if (seeded) seedDemo(this);
    const assignments =
      options.roleAssignments ??
      (seeded ? DEMO.roleAssignments : [{ principalId: DEMO.identity.objectId, scope: '/', actions: ['*'] }]);
    for (const a of assignments) this.roles.assign(a);
  }

  /** Starts listening; resolves when the endpoint is ready. Calling it again is harmless. */
  async start(): Promise<void> {
    if (this.server) return;
    this.starting ??= this.listen().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  /** Stops listening, closes connections and settles operations in flight. Idempotent. */
  async stop(): Promise<void> {
    await this.starting?.catch(() => undefined);
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const [timer, release] of this.requestDelays) {
      clearTimeout(timer);
      release();
    }
    this.requestDelays.clear();
    // Nothing may keep running after stop, and a restarted emulator must not find an NSG locked by
    // an operation whose timer no longer exists.
    this.model.settlePendingOperations();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
  }

  /** `https://host:port`, without a trailing slash. */
  /** How Azure-like this emulator is: what it was started with, for a banner or a report. */
  get behaviour(): {
    operationLatencyInMs: number;
    operationRetryAfterInSeconds: number;
    throttled: boolean;
  } {
    return {
      operationLatencyInMs: this.options.operationLatencyInMs,
      operationRetryAfterInSeconds: this.options.operationRetryAfterInSeconds,
      throttled: this.throttle !== undefined,
    };
  }

  get endpoint(): string {
    const address = this.server?.address() as AddressInfo | null | undefined;
    if (!address) throw new Error('ArmEmulator: not started; await start() first.');
    const host = ['0.0.0.0', '::', ''].includes(this.options.host) ? '127.0.0.1' : this.options.host;
    return `https://${host.includes(':') ? `[${host}]` : host}:${address.port}`;
  }

  /** PEM of the self-signed server certificate: pass it as the client's `tlsOptions: { ca }`. */
  get caPem(): string {
    if (this.certificatePem === undefined) throw new Error('ArmEmulator: not started; await start() first.');
    return this.certificatePem;
  }

  addVm(spec: VmSpec): void {
    this.model.addVm(spec);
  }

  getNsg(id: string): NsgState | undefined {
    return this.model.nsgState(id);
  }

  listNsgs(): NsgState[] {
    return this.model.nsgStates();
  }

  /** Writes a rule out of band (drift, an operator's edit). Throws ArmError as a PUT would fail. */
  putRuleDirect(nsgId: string, rule: SecurityRuleInput): void {
    this.model.putRuleDirect(nsgId, rule);
  }

  /** Deletes a rule out of band. A missing rule is not an error. */
  deleteRuleDirect(nsgId: string, ruleName: string): void {
    this.model.deleteRuleDirect(nsgId, ruleName);
  }

  // ---------------------------------------------------------------------------------------------

  private async listen(): Promise<void> {
    const { key, cert } = await loopbackCertificate('localhost');
    const server = createServer({ key, cert }, (request, response) => {
      this.handle(request, response).catch((error: unknown) => {
        // Only a broken socket gets here; the request is lost either way.
        response.destroy(error instanceof Error ? error : undefined);
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.certificatePem = cert;
    this.server = server;
  }

  private absoluteUrl(pathAndQuery: string): string {
    return `${this.server ? this.endpoint : 'https://127.0.0.1'}${pathAndQuery}`;
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = request.method ?? 'GET';
    const url = new URL(request.url ?? '/', 'https://emulator.invalid');
    const body = await readBody(request);
    if (body === undefined) {
      send(response, {
        status: 413,
        body: { error: { code: 'RequestTooLarge', message: 'Request body too large.' } },
      });
      return;
    }
    if (url.pathname.startsWith(ADMIN_PREFIX)) {
      send(response, this.serveAdmin(method, url.pathname, body));
      return;
    }
    response.on('finish', () =>
      this.log.push({ method, path: url.pathname, status: response.statusCode, at }),
    );
    if (this.options.requestLatencyInMs > 0) await this.delay(this.options.requestLatencyInMs);
    if (!this.server) return; // stopped while waiting: the connection is already closed
    send(response, this.serveArm(method, url, body, request.headers));
  }

  private serveArm(method: string, url: URL, body: string, headers: IncomingMessage['headers']): ArmResponse {
    let rateLimitHeaders: Record<string, string> = {};
    try {
      const authorization = headers.authorization;
      if (authorization === undefined || authorization.trim() === '') throw armErrors.authorizationMissing();
      if (!/^Bearer\s+\S+/i.test(authorization)) throw armErrors.authorizationMalformed();
      const principal = this.roles.principalOf(authorization);
      // ARM counts the request against the caller's and the subscription's buckets before routing it on.
      const subscriptionId = /^\/subscriptions\/([^/]+)/i.exec(url.pathname)?.[1];
      if (this.throttle && subscriptionId !== undefined)
        rateLimitHeaders = this.throttle.take(subscriptionId, principal.objectId, requestKind(method));
      const fault = this.faults.takeRequestFault(method, url.pathname);
      if (fault) {
        throw new ArmError(fault.status, fault.code, fault.message, {
          fromResourceProvider: false,
          headers: fault.headers,
        });
      }
      const apiVersion = url.searchParams.get('api-version');
      if (!apiVersion) throw armErrors.missingApiVersion();
      const context: RouteContext = {
        model: this.model,
        sites: this.sites,
        operations: this.operations,
        faults: this.faults,
        absoluteUrl: (pathAndQuery) => this.absoluteUrl(pathAndQuery),
        operationRetryAfterInSeconds: this.options.operationRetryAfterInSeconds,
        locks: this.locks,
        rbac: this.roles,
        principal,
      };
      const ifMatch = headers['if-match'];
      const served = serveArmRequest(
        {
          method,
          path: url.pathname,
          apiVersion,
          body,
          query: url.searchParams,
          headers: { 'if-match': Array.isArray(ifMatch) ? ifMatch[0] : ifMatch },
        },
        context,
      );
      return { ...served, headers: { ...rateLimitHeaders, ...served.headers } };
    } catch (error) {
      if (error instanceof ArmError)
        return {
          status: error.statusCode,
          body: error.toBody(),
          headers: { ...rateLimitHeaders, ...error.headers },
        };
      // A bug in the emulator: answer like ARM's internal errors, with the cause to debug it.
      const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
      return {
        status: 500,
        body: { error: { code: 'InternalServerError', message } } satisfies ArmErrorBody,
      };
    }
  }

  /** The admin surface, for people watching a sandbox and for tests in other processes. */
  private serveAdmin(method: string, path: string, body: string): ArmResponse {
    const invalid = (message: string): ArmResponse => ({
      status: 400,
      body: { error: { code: 'InvalidEmulatorRequest', message } },
    });
    try {
      if (method === 'GET' && path === '/_emulator/nsgs') return { status: 200, body: this.listNsgs() };
      if (method === 'POST' && path === '/_emulator/faults') {
        this.faults.inject(JSON.parse(body) as RequestFaultSpec);
        return { status: 204 };
      }
      if (method === 'POST' && path === '/_emulator/operation-faults') {
        this.faults.failNextOperations(JSON.parse(body) as OperationFaultSpec);
        return { status: 204 };
      }
      if (method === 'DELETE' && path === '/_emulator/faults') {
        this.faults.clear();
        return { status: 204 };
      }
      if (method === 'POST' && path === '/_emulator/role-assignments') {
        this.roles.assign(JSON.parse(body) as RoleAssignmentSpec);
        return { status: 204 };
      }
      if (method === 'GET' && path === '/_emulator/role-assignments')
        return { status: 200, body: this.roles.list() };
    } catch (error) {
      return invalid(error instanceof Error ? error.message : String(error));
    }
    return {
      status: 404,
      body: {
        error: {
          code: 'NotFound',
          message:
            'Admin routes: GET /_emulator/nsgs, POST /_emulator/faults, POST /_emulator/operation-faults, ' +
            'DELETE /_emulator/faults, GET and POST /_emulator/role-assignments (locks: the ARM locks API).',
        },
      },
    };
  }

  private delay(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.requestDelays.delete(timer);
        resolve();
      }, ms);
      this.requestDelays.set(timer, resolve);
    });
  }
}

function send(response: ServerResponse, result: ArmResponse): void {
  if (response.destroyed) return;
  const headers: Record<string, string> = {
    'x-ms-request-id': randomUUID(),
    'x-ms-correlation-request-id': randomUUID(),
    'Cache-Control': 'no-cache',
    ...result.headers,
  };
  if (result.body === undefined || result.status === 204) {
    response.writeHead(result.status, headers).end();
    return;
  }
  const json = JSON.stringify(result.body);
  headers['Content-Type'] = 'application/json; charset=utf-8';
  headers['Content-Length'] = String(Buffer.byteLength(json));
  response.writeHead(result.status, headers).end(json);
}

/** The body as text, or undefined when it exceeds the limit. */
async function readBody(request: IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) return undefined;
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function nonNegative(name: string, value: number): number {
  if (!Number.isFinite(value) || value < 0) throw new RangeError(`ArmEmulator: ${name} must be >= 0.`);
  return value;
}
