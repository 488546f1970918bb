import type { HttpRequest, HttpResponseInit, InvocationContext } from '@azure/functions';
import { FeatureUnavailable, InvalidRequest, TooManyRequests } from '../domain/errors';
import { parseClientAddress } from '../domain/network';
import type { Principal } from '../domain/types';
import { depsFor, services } from '../composition';
import type { RateLimiterMemory } from 'rate-limiter-flexible';
import type { Deps } from '../usecases/deps';
import { toProblem } from './problem';

/** Largest request body accepted; anything bigger is refused before it is parsed. */
export const MAX_BODY_BYTES = 16 * 1024;

export interface HttpCall {
  request: HttpRequest;
  context: InvocationContext;
  deps: Deps;
  caller: Principal;
  /** The caller's address: the last X-Forwarded-For entry, which Azure's front end appends. */
  callerAddress: string | undefined;
}

/**
 * Wraps an HTTP function body: authenticates the caller, runs the body, and maps any error to problem+json in
 * one place. Unexpected errors are logged with the invocation id and answered with a 500 that leaks nothing.
 */
export function httpEndpoint(body: (call: HttpCall) => Promise<HttpResponseInit>) {
  return async (request: HttpRequest, context: InvocationContext): Promise<HttpResponseInit> => {
    try {
      const caller = await services().authenticate(request.headers);
      return await body({
        request,
        context,
        deps: depsFor(context),
        caller,
        callerAddress: callerAddress(request),
      });
    } catch (err) {
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
  };
}

/**
 * Who is calling a route anyone may call: undefined for an anonymous caller, a credential that does not check out,
 * or while authentication is switched off (such a route answers everyone, with less for the anonymous).
 */
export async function optionalCaller(request: HttpRequest): Promise<Principal | undefined> {
  try {
    return await services().authenticate(request.headers);
  } catch {
    return undefined;
  }
}

/** The caller's address: the last X-Forwarded-For entry, which Azure's front end appends. */
export function callerAddress(request: HttpRequest): string | undefined {
  const xff = request.headers.get('x-forwarded-for');
  if (!xff) return undefined;
  const last = xff.split(',').pop();
  return last ? parseClientAddress(last) : undefined;
}

/** Reads a JSON body with a size limit and a content type check; malformed input is an InvalidRequest. */
export async function readJson(request: HttpRequest): Promise<unknown> {
  const type = request.headers.get('content-type') ?? '';
  if (!/^application\/(.+\+)?json\b/i.test(type)) {
    throw new InvalidRequest([{ field: '(body)', reason: 'must be sent as application/json' }]);
  }
  const declared = Number(request.headers.get('content-length') ?? '0');
  if (declared > MAX_BODY_BYTES)
    throw new InvalidRequest([{ field: '(body)', reason: `must be at most ${MAX_BODY_BYTES} bytes` }]);
  const text = await request.text();
  if (Buffer.byteLength(text) > MAX_BODY_BYTES) {
    throw new InvalidRequest([{ field: '(body)', reason: `must be at most ${MAX_BODY_BYTES} bytes` }]);
  }
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
export async function consumeRequestQuota(callerId: string): Promise<void> {
  const { requestLimiter } = services();
  if (!requestLimiter) throw new FeatureUnavailable('requests');
  return consume(
    requestLimiter,
    callerId.toLowerCase(),
    'too many requests from this caller; try again later',
  );
}

/**
 * Spends one of the approval decisions a person may post from one address per minute, before the token is even
 * looked at: links are signed, so this does not guard the signature; it bounds what one browser (or script) can
 * throw at the decision endpoint — replays, stale links, guesses — and the mail and audit noise that makes.
 * Nobody is signed in on the sandbox's pages, so there the address alone is the key.
 */
export async function consumeApprovalQuota(
  personId: string | undefined,
  address: string | undefined,
): Promise<void> {
  const { approvalLimiter } = services();
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
