/**
 * The life of a grant after it is asked for: listing one's requests, starting those made ahead of time, ending
 * access early, and extending it. Every move is a conditional write with one audit event (through `transition`),
 * and every hop tolerates a message that arrives twice, late, or after the request moved on.
 */
import { AccessNotAllowed, ConcurrencyConflict, InvalidState, RequestNotFound } from '../domain/errors';
import { formatDuration } from '../domain/duration';
import {
  alreadyEnded,
  assertExtendable,
  assertNotClosing,
  checkExtension,
  closingBeginsAt,
} from '../domain/lifecycle';
import { isAdmin, isRequester, mayExtend, mayRead, mayRevoke } from '../domain/permissions';
import { ROLES } from '../domain/roles';
import { parseExtendBody, parseListQuery } from '../domain/lifecycleInput';
import type { RequestPage, StoredRequest } from '../domain/ports';
import type { StartMessage } from '../domain/scheduledMessages';
import { auditActor } from '../domain/types';
import type { ScheduledRef } from '../domain/scheduledMessages';
import type { AccessRequest, Principal } from '../domain/types';
import type { Deps } from './deps';
import { markExpired } from './expiry';
import { notifyRequester } from './notify';
import { removeRules } from './teardown';
import { transition } from './transition';
import { awaitRecording, cancelQuietly, cancelSuperseded } from './scheduledMessages';
import { writeAudited } from './auditOutbox';
import { viewOf } from './requests';
import type { RequestView } from './requests';
import type { RequestViewPorts } from './requests';
import type { CancelPorts } from './scheduledMessages';
import type { TeardownPorts } from './teardown';

/** What the life of a grant after it is asked for needs. */
export type LifecyclePorts = TeardownPorts &
  CancelPorts &
  RequestViewPorts &
  Pick<Deps, 'queues' | 'scheduledMessages' | 'settings'>;

/** How often a revoke or an extension re-reads and tries again after losing a race, before answering 409. */
const MAX_ATTEMPTS = 4;

/**
 * `GET /api/requests`: the caller's requests, newest first, a page at a time. Admins and auditors may name
 * another requester (auditors may read any request already; listing is no more than that).
 */
export async function listRequests(
  deps: LifecyclePorts,
  caller: Principal,
  query: Record<string, string>,
): Promise<RequestPage> {
  const q = parseListQuery(query);
  const requester = q.requester ?? caller.id.toLowerCase();
  if (requester !== caller.id.toLowerCase() && !isAdmin(caller) && !caller.roles.includes(ROLES.auditor)) {
    throw new AccessNotAllowed(
      `only callers with the ${ROLES.admin} or ${ROLES.auditor} role may list another requester's requests`,
      true,
    );
  }
  return deps.requests.listByRequester(requester, {
    status: q.status,
    vmId: q.vmId,
    limit: q.limit,
    continuationToken: q.continuationToken,
  });
}

/**
 * Service Bus `jit-starts`: a scheduled request's start time has come; approve it for `applyGrant`, which fixes
 * its expiry from now. A message for a request that moved on (revoked, or one whose start changed) is ignored.
 */
export async function startScheduledRequest(
  deps: LifecyclePorts,
  message: StartMessage,
  actor = 'system:schedule',
): Promise<void> {
  const scheduling = (r: AccessRequest) => r.status === 'submitted' && r.startAt === message.startAt;
  let found = await deps.requests.get(message.requestId);
  // Due while the evaluation that scheduled it is still recording it (a start moments after the request).
  if (found && scheduling(found.value)) found = await awaitRecording(deps, message.requestId, scheduling);
  if (!found) return void deps.log.warn('start.unknown-request', { requestId: message.requestId });
  const r = found.value;
  // An earlier delivery moved it but may not have handed it on; handing on twice is harmless.
  if (r.status === 'approved' && r.startAt === message.startAt) return deps.queues.enqueueGrant(r.id);
  if (r.status !== 'scheduled' || r.startAt !== message.startAt) {
    return void deps.log.info('start.stale-message', { requestId: r.id, status: r.status });
  }
  const moved = await transition(
    deps,
    found,
    'approved',
    {},
    { actor, action: 'request.starting', detail: `start time ${r.startAt} reached` },
  );
  if (moved) await deps.queues.enqueueGrant(r.id);
}

/**
 * `POST /api/requests/{id}/revoke`: end access now, or cancel a request that is not live yet.
 * Live access: the rules are deleted first and only then is the request marked revoked, so a failure on the way
 * leaves it `active` — still enforced by its expiry and the reconciler — and the caller can simply try again.
 * Idempotent: revoking a revoked request answers with it (and removes anything an interrupted run left behind).
 */
export async function revokeRequest(
  deps: LifecyclePorts,
  caller: Principal,
  id: string,
): Promise<RequestView> {
  for (let attempt = 1; ; attempt++) {
    const found = await deps.requests.get(id);
    if (!found) throw new RequestNotFound(id);
    const r = found.value;
    const [policy] = await deps.policies.getForScopes([r.policyScope]);
    if (!mayRevoke(caller, r, policy)) {
      if (!mayRead(caller, r)) throw new RequestNotFound(id);
      throw new AccessNotAllowed(
        'only the requester, an approver of its policy or an admin may revoke a request',
        true,
      );
    }
    const ended = { endedAt: deps.clock.now().toISOString(), revokedBy: caller.name };
    const by = auditActor(caller);
    let moved: StoredRequest | undefined;
    switch (r.status) {
      case 'revoked':
        await removeRules(deps, r.id);
        return viewOf(deps, r);
      case 'expired':
      case 'failed':
      case 'denied':
      case 'approval-expired':
        throw alreadyEnded(r, 'there is nothing to revoke');
      case 'active': {
        const removed = await removeRules(deps, r.id);
        moved = await transition(
          deps,
          found,
          'revoked',
          { ...ended, statusReason: `revoked by ${caller.name}` },
          {
            ...by,
            action: 'grant.revoked',
            detail: `closed early (expiry was ${r.expiresAt}); ${removed.map((g) => `${g.ruleName} in ${g.nsgId}`).join('; ')}`,
          },
        );
        if (moved && r.expirySequenceNumber)
          await cancelQuietly(deps, 'expire', r.id, r.expirySequenceNumber);
        // Someone else ended it (an admin, an approver): the requester hears it, as of any end of access.
        if (moved && !isRequester(caller, r)) await notifyRequester(deps, moved.value);
        break;
      }
      case 'approved':
        // applyGrant may be writing rules right now: stop it first (it checks the status, and cleans up after
        // itself when it loses), then remove whatever it wrote already.
        moved = await transition(
          deps,
          found,
          'revoked',
          { ...ended, statusReason: `cancelled by ${caller.name} before access went live` },
          { ...by, action: 'request.cancelled', detail: 'cancelled while being applied' },
        );
        if (moved) await removeRules(deps, r.id);
        break;
      case 'scheduled':
        moved = await transition(
          deps,
          found,
          'revoked',
          { ...ended, statusReason: `cancelled by ${caller.name} before its start at ${r.startAt}` },
          { ...by, action: 'request.cancelled', detail: `was scheduled to start at ${r.startAt}` },
        );
        if (moved && r.startSequenceNumber) await cancelQuietly(deps, 'start', r.id, r.startSequenceNumber);
        break;
      case 'submitted':
      case 'pending-approval':
        moved = await transition(
          deps,
          found,
          'revoked',
          { ...ended, statusReason: `cancelled by ${caller.name} while ${r.status}` },
          { ...by, action: 'request.cancelled', detail: `cancelled while ${r.status}` },
        );
        break;
    }
    if (moved) return viewOf(deps, moved.value);
    if (attempt >= MAX_ATTEMPTS) {
      throw new ConcurrencyConflict(`request ${id} kept changing while being revoked; try again`);
    }
  }
}

/**
 * `POST /api/requests/{id}/extend`: move the end of live access later, within the policy's maximum.
 * The new expiry message is scheduled before the request is written, and the old one cancelled after, so at every
 * moment a message is due at or before the recorded expiry; an old message that still arrives is ignored
 * (`expireGrant` compares `expiresAt`).
 *
 * Exactly one expiry message stays scheduled. A message of an attempt that lost the write is not cancelled at
 * once: the next attempt usually means the same expiry, schedules the same id, and Service Bus's duplicate
 * detection hands back that very message. Cancelling it first would leave its id in the duplicate history with
 * nothing behind it, and the retry with no expiry message at all. So on the way out, whatever the outcome, every
 * message this call scheduled and the previous one are cancelled if the request as it now stands cannot use them
 * (domain/scheduledMessages.ts `isSuperseded`).
 */
export async function extendRequest(
  deps: LifecyclePorts,
  caller: Principal,
  id: string,
  body: unknown,
): Promise<RequestView> {
  const bySeconds = parseExtendBody(body);
  const scheduled: ScheduledRef[] = [];
  try {
    for (let attempt = 1; ; attempt++) {
      const found = await deps.requests.get(id);
      if (!found || !mayRead(caller, found.value)) throw new RequestNotFound(id);
      const r = found.value;
      if (!mayExtend(caller, r)) throw new AccessNotAllowed('only the requester may extend a request', true);
      assertExtendable(r);
      assertNotClosing(r, deps.settings.closeLeadInSeconds, deps.clock.now());
      const [policy] = await deps.policies.getForScopes([r.policyScope]);
      const total = checkExtension(policy, r, caller, bySeconds, deps.settings.maxDurationInSeconds);

      const previous = r.expiresAt as string;
      const expiresAt = new Date(Date.parse(previous) + bySeconds * 1000).toISOString();
      const closingAt = closingBeginsAt(
        { expiresAt, durationInSeconds: total },
        deps.settings.closeLeadInSeconds,
      );
      const sequenceNumber = await deps.scheduledMessages.schedule('expire', r.id, expiresAt, closingAt);
      scheduled.push({ sequenceNumber, dueAt: expiresAt });
      const next: AccessRequest = {
        ...r,
        expiresAt,
        durationInSeconds: total,
        expirySequenceNumber: sequenceNumber,
        updatedAt: deps.clock.now().toISOString(),
      };
      try {
        await writeAudited(deps, found, next, {
          ...auditActor(caller),
          action: 'grant.extended',
          requestId: r.id,
          vm: r.vmId,
          ports: r.ports,
          sourcePrefix: r.sourcePrefix,
          detail: `by ${formatDuration(bySeconds)}, from ${previous} to ${expiresAt} (${formatDuration(total)} in all)`,
        });
      } catch (err) {
        if (!(err instanceof ConcurrencyConflict)) throw err;
        if (attempt >= MAX_ATTEMPTS) {
          throw new ConcurrencyConflict(`request ${id} kept changing while being extended; try again`);
        }
        continue;
      }
      deps.log.info('grant.extended', { requestId: r.id, expiresAt });
      deps.signals.event('jit.grant.extended', {
        requestId: r.id,
        vm: r.vmId.toLowerCase(),
        expiresAt,
        actor: caller.name,
      });
      if (r.expirySequenceNumber) scheduled.push({ sequenceNumber: r.expirySequenceNumber, dueAt: previous });

      const rules = await deps.grants.list(r.id);
      if (rules.some((g) => g.state === 'removed')) {
        // The old expiry fired while we were extending: it removes the rules before it marks the request, and
        // our write made its mark fail. Finish its work rather than leave `active` access with no rules open.
        return await finishRacedExpiry(deps, r.id);
      }
      for (const g of rules) {
        await deps.grants.upsert({ ...g, expiresAt, updatedAt: deps.clock.now().toISOString() });
      }
      return await viewOf(deps, next);
    }
  } finally {
    await cancelSuperseded(deps, 'expire', id, scheduled);
  }
}

/**
 * The rules were being removed (the old expiry firing, or a revoke) while the extension was recorded: the removal
 * won at the network, so the record must say access ended rather than show `active` with nothing open.
 */
async function finishRacedExpiry(deps: LifecyclePorts, id: string): Promise<never> {
  await removeRules(deps, id);
  const found = await deps.requests.get(id);
  // The expiry's own mark lost to our write, so it told no one: the requester hears it from here.
  if (found?.value.status === 'active')
    await markExpired(
      deps,
      found,
      'system:extend',
      'its rules were removed (expiry or revoke) while it was being extended',
    );
  const now = await deps.requests.get(id);
  throw now
    ? alreadyEnded(now.value, 'access ended while the extension was being recorded; submit a new request')
    : new InvalidState(`request ${id} ended while being extended`);
}
