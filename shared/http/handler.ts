import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { FeatureUnavailable, InvalidRequest, TooManyRequests } from '../domain/errors';
import { forwardedClientAddress } from '../domain/network';
import type { Principal } from '../domain/types';
import type { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Features } from '../config';
import type { Deps } from '../usecases/deps';
import type { Authenticator } from './auth';
import { toProblem } from './problem';

/** Largest request body accepted; anything bigger is refused before it is parsed. */
export const MAX_BODY_BYTES = 16 * 1024;

/**
 * What an HTTP function is handed by the host (shared/hosting/host.ts builds it at start): the use cases'
 * dependencies for this invocation and what the HTTP layer itself needs to serve a caller.
 */
export interface HttpServices {
  config: { features: Features };
  /** Resolves once the start-up checks pass; throws `NotServing` saying why otherwise. */
  serving: () => Promise<unknown>;
  authenticate: Authenticator;
  /** Per-caller limit on creating requests; undefined while the requests feature is off. */
  requestLimiter?: RateLimiterMemory;
  /** Per-caller limit on every other changing call and on audit reads, one bucket per kind. */
  callLimiter?: RateLimiterMemory;
  /** Per-person-and-address limit on posting approval decisions; undefined while approval is off. */
  approvalLimiter?: RateLimiterMemory;
  deps: Deps;
}

export interface HttpCall<S extends HttpServices = HttpServices> {
  request: HttpRequest;
  context: InvocationContext;
  /** Everything the host handed this invocation (the use cases' `deps` among it). */
  services: S;
  deps: Deps;
  caller: Principal;
  /** The caller's address, read from X-Forwarded-For past the trusted proxies (`callerAddress`). */
  callerAddress: string | undefined;
}

/**
 * Wraps an HTTP function body: refuses to serve until the start-up checks pass, authenticates the caller, runs
 * the body, and maps any error to problem+json in one place. Unexpected errors are logged with the invocation id
 * and answered with a 500 that leaks nothing.
 */
export function httpEndpoint<S extends HttpServices = HttpServices>(
  body: (call: HttpCall<S>) => Promise<HttpResponseInit>,
) {
  return async (request: HttpRequest, context: InvocationContext, services: S): Promise<HttpResponseInit> => {
    try {
      await services.serving();
      const caller = await services.authenticate(request.headers);
      return await body({
        request,
        context,
        services,
        deps: services.deps,
        caller,
        callerAddress: callerAddress(services, request),
      });
    } catch (err) {
      return problemOf(err, context);
    }
  };
}

/** What an HTTP function answers for an error: the problem+json it maps to, logged when it is the app's fault. */
export function problemOf(err: unknown, context: InvocationContext): HttpResponseInit {
  const problem = toProblem(err);
  if (problem.status >= 500)
    context.error(
      JSON.stringify({
        event: 'http.error',
        invocationId: context.invocationId,
        error: String((err as Error)?.stack ?? err),
      }),
    );
  return problem;
}

/**
 * Who is calling a route anyone may call: undefined for an anonymous caller, a credential that does not check out,
 * or while authentication is switched off (such a route answers everyone, with less for the anonymous).
 */
export async function optionalCaller(
  services: Pick<HttpServices, 'authenticate'>,
  request: HttpRequest,
): Promise<Principal | undefined> {
  try {
    return await services.authenticate(request.headers);
  } catch {
    return undefined;
  }
}

/**
 * The caller's address: the X-Forwarded-For entry `JIT_TRUSTED_PROXY_HOPS` places left of the last one, which App
 * Service's front end appends (shared/domain/network.ts, `forwardedClientAddress`).
 */
export function callerAddress(
  services: Pick<HttpServices, 'config'>,
  request: HttpRequest,
): string | undefined {
  const auth = services.config.features.authentication;
  // Without the authentication feature nobody is served, and no setting says how many proxies there are.
  const hops = auth.ready ? auth.settings.trustedProxyHops : 0;
  return forwardedClientAddress(request.headers.get('x-forwarded-for'), hops);
}

/**
 * Reads a body as text, at most `maxBytes` of it: the stream is read a chunk at a time and abandoned as soon as it
 * passes the limit, so a chunked body (no Content-Length) or one whose Content-Length lies is refused without being
 * held in memory. (The Functions host also caps bodies: FUNCTIONS_REQUEST_BODY_SIZE_LIMIT in infra/.)
 */
export async function readBodyText(request: HttpRequest, maxBytes: number): Promise<string> {
  const tooLarge = () =>
    new InvalidRequest([{ field: '(body)', reason: `must be at most ${maxBytes} bytes` }]);
  const declared = request.headers.get('content-length');
  if (declared !== null && Number(declared) > maxBytes) throw tooLarge();
  const stream = request.body as ReadableStream<Uint8Array> | null;
  if (!stream) return '';
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel().catch(() => undefined);
        throw tooLarge();
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Reads a JSON body with a size limit and a content type check; malformed input is an InvalidRequest. */
export async function readJson(request: HttpRequest): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new InvalidRequest([{ field: '(body)', reason: 'must be sent as application/json' }]);
  }
  const text = await readBodyText(request, MAX_BODY_BYTES);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new InvalidRequest([{ field: '(body)', reason: 'is not valid JSON' }]);
  }
}

/**
 * Spends one unit of the caller's request-creation quota, or refuses with 429 and when to come back.
 * Counted per instance: with N instances a caller may get up to N times the limit (see docs/security.md).
 */
export async function consumeRequestQuota(
  { requestLimiter }: Pick<HttpServices, 'requestLimiter'>,
  callerId: string,
): Promise<void> {
  if (!requestLimiter) throw new FeatureUnavailable('requests');
  return consume(
    requestLimiter,
    callerId.toLowerCase(),
    'too many requests from this caller; try again later',
  );
}

/**
 * The calls besides creating a request that change something (extend, revoke, policy changes) or cost the
 * service a scan (audit reads and verification). Each kind has its own per-caller bucket of
 * `JIT_RATE_LIMIT_PER_MINUTE` calls a minute, per instance.
 */
export type CallKind = 'extend' | 'revoke' | 'policies' | 'audit' | 'audit-verify';

/** Spends one call of this kind from the caller's quota, or refuses with 429 (checked before the body is read). */
export async function consumeCallQuota(
  { callLimiter }: Pick<HttpServices, 'callLimiter'>,
  kind: CallKind,
  callerId: string,
): Promise<void> {
  if (!callLimiter) throw new FeatureUnavailable('requests');
  return consume(
    callLimiter,
    `${kind}|${callerId.toLowerCase()}`,
    `too many ${kind} calls from this caller; try again later`,
  );
}

/**
 * Spends one of the approval decisions a person may post from one address per minute, before the token is even
 * looked at: links are signed, so this does not guard the signature; it bounds what one browser (or script) can
 * throw at the decision endpoint — replays, stale links, guesses — and the mail and audit noise that makes.
 * Nobody is signed in on the sandbox's pages, so there the address alone is the key.
 */
export async function consumeApprovalQuota(
  { approvalLimiter }: Pick<HttpServices, 'approvalLimiter'>,
  personId: string | undefined,
  address: string | undefined,
): Promise<void> {
  if (!approvalLimiter) throw new FeatureUnavailable('approval');
  return consume(
    approvalLimiter,
    `${personId?.toLowerCase() ?? '(anonymous)'}|${address ?? '(no address)'}`,
    'too many approval attempts from this person and address; try again in a minute',
  );
}

async function consume(limiter: RateLimiterMemory, key: string, refusal: string): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (res) {
    const ms = (res as { msBeforeNext?: number }).msBeforeNext ?? 60_000;
    throw new TooManyRequests(refusal, ms);
  }
}
