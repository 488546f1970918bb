/**
 * Azure Resource Manager's request throttling: a token bucket per subscription, per caller and per kind of
 * request, beside a global bucket per subscription shared by every caller.
 *
 * Source: "Understand how Azure Resource Manager throttles requests",
 * https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling — since 2024
 * the limits are applied per region with a token bucket: subscription reads 250 tokens refilled at 25 a second,
 * deletes 200 at 10, writes 200 at 10; "Subscription limits apply per subscription, per service principal, and
 * per operation type", and a global subscription limit of 15 times the per-principal one applies to all
 * principals together. The emulator is one region.
 */
import { ArmError } from './errors';

export type RequestKind = 'read' | 'write' | 'delete';

export interface TokenBucketLimit {
  /** Most tokens the bucket holds (the burst). */
  size: number;
  /** Tokens returned a second. */
  refillPerSecond: number;
}

export interface ThrottleLimits {
  read: TokenBucketLimit;
  write: TokenBucketLimit;
  delete: TokenBucketLimit;
  /** The global (all principals) bucket is this many times a principal's. */
  globalFactor: number;
}

/** ARM's documented limits (see the page cited at the top of this file). */
export const ARM_THROTTLE_LIMITS: ThrottleLimits = {
  read: { size: 250, refillPerSecond: 25 },
  write: { size: 200, refillPerSecond: 10 },
  delete: { size: 200, refillPerSecond: 10 },
  globalFactor: 15,
};

/**
 * Headers ARM answers with, per kind: `x-ms-ratelimit-remaining-subscription-reads|writes|deletes` (the request
 * limits page above; deletes: MicrosoftDocs/azure-docs#83876, and Network RP's own DELETE responses in
 * Azure/azure-sdk-for-js sdk/network/arm-network/recordings/node/network_test/recording_subnets_begindeleteandwait_test.json)
 * and the `-global-` variants of the token-bucket era (as collected by monitoring tools, e.g.
 * https://coralogix.com/docs/integrations/azure/microsoft-azure-api-rate-limits/).
 */
const HEADER: Record<RequestKind, { own: string; global: string }> = {
  read: {
    own: 'x-ms-ratelimit-remaining-subscription-reads',
    global: 'x-ms-ratelimit-remaining-subscription-global-reads',
  },
  write: {
    own: 'x-ms-ratelimit-remaining-subscription-writes',
    global: 'x-ms-ratelimit-remaining-subscription-global-writes',
  },
  delete: {
    own: 'x-ms-ratelimit-remaining-subscription-deletes',
    global: 'x-ms-ratelimit-remaining-subscription-global-deletes',
  },
};

interface Bucket {
  tokens: number;
  at: number;
}

export class ArmThrottle {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limits: ThrottleLimits,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Takes one token for the request, or throws ARM's 429 when the caller's or the subscription's bucket is empty.
   * Returns the headers that report what remains. A refused request takes no token.
   */
  take(subscriptionId: string, principal: string, kind: RequestKind): Record<string, string> {
    const limit = this.limits[kind];
    const global: TokenBucketLimit = {
      size: limit.size * this.limits.globalFactor,
      refillPerSecond: limit.refillPerSecond * this.limits.globalFactor,
    };
    const sub = subscriptionId.toLowerCase();
    const own = this.refill(`${sub}|${principal}|${kind}`, limit);
    const all = this.refill(`${sub}|*|${kind}`, global);
    for (const [bucket, l] of [
      [own, limit],
      [all, global],
    ] as const) {
      if (bucket.tokens < 1) {
        const retryAfter = Math.max(1, Math.ceil((1 - bucket.tokens) / l.refillPerSecond));
        throw throttled(subscriptionId, principal, kind, retryAfter);
      }
    }
    own.tokens -= 1;
    all.tokens -= 1;
    return {
      [HEADER[kind].own]: String(Math.floor(own.tokens)),
      [HEADER[kind].global]: String(Math.floor(all.tokens)),
    };
  }

  private refill(key: string, limit: TokenBucketLimit): Bucket {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: limit.size, at: now };
    bucket.tokens = Math.min(limit.size, bucket.tokens + ((now - bucket.at) / 1000) * limit.refillPerSecond);
    bucket.at = now;
    this.buckets.set(key, bucket);
    return bucket;
  }
}

/** The kind of request ARM counts a method as. */
export function requestKind(method: string): RequestKind {
  if (method === 'GET' || method === 'HEAD') return 'read';
  return method === 'DELETE' ? 'delete' : 'write';
}

/**
 * ARM's 429 for an empty bucket. Body as ARM sends it in the token-bucket era (velero-io/velero#9171:
 * "Number of 'read' requests for subscription '…' actor '…' exceeded. Please try again after '1' seconds after
 * additional tokens are available. Refer to https://aka.ms/arm-throttling for additional information."), raised by
 * ARM itself, so without `details`; with `Retry-After` in seconds (the request limits page, "Error code").
 */
function throttled(
  subscriptionId: string,
  principal: string,
  kind: RequestKind,
  retryAfter: number,
): ArmError {
  return new ArmError(
    429,
    'SubscriptionRequestsThrottled',
    `Number of '${kind}' requests for subscription '${subscriptionId}' actor '${principal}' exceeded. ` +
      `Please try again after '${retryAfter}' seconds after additional tokens are available. ` +
      'Refer to https://aka.ms/arm-throttling for additional information.',
    { fromResourceProvider: false, headers: { 'Retry-After': String(retryAfter) } },
  );
}
