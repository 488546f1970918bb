/**
 * Rules of a grant's life after it is asked for: when it may start, and how far an extension may go (who may read,
 * revoke or extend it is in permissions.ts). Pure functions of their arguments (the clock is passed in), tested
 * without I/O.
 */
import { formatDuration } from './duration';
import { AccessAlreadyEnded, AccessNotAllowed, InvalidRequest, InvalidState } from './errors';
import { principalMatches } from './policy';
import { isFinal } from './types';
import type { AccessRequest, Policy, Principal } from './types';

/**
 * Furthest ahead a request may ask to start. A maintenance window is planned days ahead, not months: a grant
 * scheduled long before anyone remembers why it exists is a hole waiting to open.
 */
const MAX_START_AHEAD_IN_SECONDS = 30 * 86400;

/**
 * Checks a requested start against the clock. Returns it in UTC (`…Z`, which is what the tables and the start
 * message hold), or undefined when none was asked for.
 */
export function checkStartAt(startAt: string | undefined, now: Date): string | undefined {
  if (startAt === undefined) return undefined;
  const at = Date.parse(startAt);
  if (Number.isNaN(at)) throw new InvalidRequest([{ field: 'startAt', reason: 'is not a valid date-time' }]);
  if (at <= now.getTime()) throw new InvalidRequest([{ field: 'startAt', reason: 'must be in the future' }]);
  if (at - now.getTime() > MAX_START_AHEAD_IN_SECONDS * 1000) {
    throw new InvalidRequest([
      {
        field: 'startAt',
        reason: `must be at most ${formatDuration(MAX_START_AHEAD_IN_SECONDS)} ahead (no later than ${new Date(now.getTime() + MAX_START_AHEAD_IN_SECONDS * 1000).toISOString()})`,
      },
    ]);
  }
  return new Date(at).toISOString();
}

/** Whether an approved request must wait for its start time rather than go live now. */
export function startsLater(request: Pick<AccessRequest, 'startAt'>, now: Date): boolean {
  return request.startAt !== undefined && Date.parse(request.startAt) > now.getTime();
}

/** The error for an operation on a request whose access is over. */
export function alreadyEnded(request: AccessRequest, what: string): AccessAlreadyEnded {
  const when = request.endedAt ? ` at ${request.endedAt}` : '';
  return new AccessAlreadyEnded(
    request.id,
    request.status,
    `request ${request.id} is ${request.status}${when}: ${what}`,
  );
}

/** The most of a grant its close may take from the end: a short grant keeps nearly all of its time. */
const MAX_CLOSE_LEAD_SHARE = 0.1;

/**
 * When closing a grant begins: `leadInSeconds` (JIT_CLOSE_LEAD) before its expiry, but never more than a tenth of
 * the grant. Network RP runs one operation per NSG at a time and a rule delete takes seconds, so a close that began
 * at `expiresAt` would leave the port open past the time the grant names, by one operation or, when another
 * write holds the NSG, two (docs/performance.md). Beginning ahead of it, the port is shut by `expiresAt`: the
 * grant's end is a bound, as every promise the product makes about a hole is.
 */
export function closingBeginsAt(
  request: Pick<AccessRequest, 'durationInSeconds'> & { expiresAt: string },
  leadInSeconds: number,
): string {
  const leadInMs = Math.min(leadInSeconds, request.durationInSeconds * MAX_CLOSE_LEAD_SHARE) * 1000;
  return new Date(Date.parse(request.expiresAt) - Math.round(leadInMs)).toISOString();
}

/**
 * Refuses to extend access whose close has begun: the expiry's message may be removing the rules right now, and an
 * extension recorded under it would say `active` over a closed port.
 */
export function assertNotClosing(
  request: Pick<AccessRequest, 'id' | 'durationInSeconds' | 'expiresAt'>,
  leadInSeconds: number,
  now: Date,
): void {
  if (!request.expiresAt) return;
  const begins = closingBeginsAt({ ...request, expiresAt: request.expiresAt }, leadInSeconds);
  if (now.getTime() < Date.parse(begins)) return;
  throw new InvalidState(
    `request ${request.id} is closing: closing began at ${begins}, ahead of its expiry at ${request.expiresAt}, ` +
      'so that the port is shut by then; extend earlier next time, or submit a new request',
  );
}

/** Refuses an extension of anything but live access, saying what the caller can do instead. */
export function assertExtendable(request: AccessRequest): void {
  if (request.status === 'active') return;
  if (isFinal(request.status)) {
    throw alreadyEnded(request, 'access has ended and cannot be extended; submit a new request');
  }
  const hint =
    request.status === 'scheduled'
      ? `; it starts at ${request.startAt}: revoke it and submit a new one for the time you need`
      : '; try again once it is active';
  throw new InvalidState(
    `request ${request.id} is ${request.status}: only live access can be extended${hint}`,
  );
}

/**
 * The request's total duration after extending it by `bySeconds`, or `AccessNotAllowed` saying why not.
 * The whole of the access — as first granted plus every extension — must fit the policy's limit for each of its
 * ports and the system's limit: extending is not a way around the maximum. A policy that wants approval wants it
 * for more time too, so such access is not extended in place.
 */
export function checkExtension(
  policy: Policy | undefined,
  request: AccessRequest,
  caller: Principal,
  bySeconds: number,
  systemMaxInSeconds: number,
): number {
  if (!policy) {
    throw new AccessNotAllowed(
      'the policy that granted this access no longer exists, so it cannot be extended; submit a new request',
      true,
    );
  }
  if (!principalMatches(caller, policy.requesters)) {
    throw new AccessNotAllowed('no policy allows this caller to request access to this VM', false);
  }
  if (policy.approval.mode !== 'auto') {
    throw new AccessNotAllowed(
      'the policy for this VM requires approval, so access cannot be extended in place; submit a new request for the extra time',
      true,
    );
  }
  let limit = systemMaxInSeconds;
  let limitedBy = "the system's maximum";
  for (const port of request.ports) {
    const allowed = policy.ports.find(
      (p) => p.port === port && (p.protocol === '*' || p.protocol === request.protocol),
    );
    if (!allowed) {
      throw new AccessNotAllowed(
        `port ${port}/${request.protocol} is no longer allowed by the policy, so this access cannot be extended`,
        true,
      );
    }
    if (allowed.maxDurationInSeconds < limit) {
      limit = allowed.maxDurationInSeconds;
      limitedBy = `the policy's maximum for port ${port}`;
    }
  }
  const total = request.durationInSeconds + bySeconds;
  if (total > limit) {
    const room = limit - request.durationInSeconds;
    throw new AccessNotAllowed(
      `extending by ${formatDuration(bySeconds)} would make this access last ${formatDuration(total)} in all, ` +
        `over ${limitedBy} of ${formatDuration(limit)}; ` +
        (room > 0
          ? `it can be extended by at most ${formatDuration(room)}`
          : 'it cannot be extended further: submit a new request'),
      true,
    );
  }
  return total;
}
