/**
 * Opening access: writing a grant's rule in every NSG in front of the VM, scheduling its expiry, and activating it.
 */
import {
  ConcurrencyConflict,
  GrantNotApplicable,
  NetworkPermissionMissing,
  TransientFailure,
} from '../domain/errors';
import type { AuditAction } from '../domain/auditActions';
import { closingBeginsAt } from '../domain/lifecycle';
import { planGrantRules } from '../domain/networkPath';
import type { RulePlacement } from '../domain/networkPath';
import type { StoredRequest } from '../domain/ports';
import { bandClearOfDefender, describeShadow, findShadow } from '../domain/effectiveAccess';
import { ruleNameFor } from '../domain/ruleNames';
import { isFinal } from '../domain/types';
import type {
  AccessRequest,
  AllowRuleSpec,
  GrantRule,
  RequestStatus,
  SecurityRuleView,
  VmNetworkPath,
} from '../domain/types';
import type { Deps } from './deps';
import { notifyRequester } from './notify';
import { enableFlushConnection, putRuleWithRetry, watchNsg, withNsg } from './nsgWrites';
import { cancelSuperseded } from './scheduledMessages';
import { preflight } from './grantability';
import { failGrant, removeRules } from './teardown';
import { grantSubject, transition } from './transition';
import type { CancelPorts } from './scheduledMessages';
import type { TeardownPorts } from './teardown';

/** What opening a grant needs. */
export type ApplyPorts = TeardownPorts & CancelPorts & Pick<Deps, 'policies' | 'scheduledMessages'>;

/**
 * `applyGrant` (queue jit-grants): open the hole in every NSG in front of the VM, then schedule the one expiry
 * message and mark the request active. Idempotent: rules are found by name, the expiry is scheduled once.
 * A message for a request that already ended only finishes its clean-up (a failure may have stopped half-way).
 */
export async function applyGrant(deps: ApplyPorts, requestId: string): Promise<void> {
  let found = await deps.requests.get(requestId);
  if (!found) return void deps.log.warn('apply.unknown-request', { requestId });
  if (isFinal(found.value.status)) {
    if ((await deps.grants.list(requestId)).some((g) => g.state !== 'removed'))
      await removeRules(deps, requestId);
    return;
  }
  if (found.value.status !== 'approved') return;

  // Fix the deadline before the first rule exists, so every rule ever written has a recorded end.
  if (!found.value.expiresAt) {
    const expiresAt = new Date(
      deps.clock.now().getTime() + found.value.durationInSeconds * 1000,
    ).toISOString();
    const next = { ...found.value, expiresAt, updatedAt: deps.clock.now().toISOString() };
    try {
      found = {
        value: next,
        etag: await deps.requests.update(next, found.etag, found.pendingAudit),
        pendingAudit: found.pendingAudit,
      };
    } catch (err) {
      if (err instanceof ConcurrencyConflict)
        throw new TransientFailure('request changed while applying; retry');
      throw err;
    }
  }
  const request = found.value;
  const expiresAt = request.expiresAt as string;
  // Never open what is already over (a message that waited out the whole grant in a queue).
  if (deps.clock.now().getTime() >= Date.parse(expiresAt)) {
    await failGrant(deps, found, 'the grant expired before its rules could be written');
    return;
  }

  let rules: GrantRule[];
  try {
    const path = await deps.network.resolvePath(request.vmId);
    rules = await writeRules(deps, request, path, expiresAt);
  } catch (err) {
    if (err instanceof GrantNotApplicable || err instanceof NetworkPermissionMissing) {
      if (err instanceof NetworkPermissionMissing)
        deps.log.error('grant.permission-missing', {
          requestId,
          permission: err.permission,
          scope: err.scope,
        });
      await failGrant(deps, found, err.message);
      return;
    }
    if (err instanceof RequestMovedOn) {
      // Revoked or failed by someone else while we wrote: a rule that landed after their clean-up is ours to remove.
      deps.log.info('apply.request-moved-on', { requestId, status: err.status });
      if (err.status === 'missing' || isFinal(err.status)) await removeRules(deps, requestId);
      return;
    }
    throw err;
  }

  // The live message for this expiry: if a run before this one scheduled it already (a retry after a crash, or a
  // duplicate delivery racing this one), Service Bus dropped ours as a duplicate and this is that run's message.
  const closingAt = closingBeginsAt({ ...request, expiresAt }, deps.settings.closeLeadInSeconds);
  const sequenceNumber = await deps.scheduledMessages.schedule('expire', requestId, expiresAt, closingAt);
  await deps.audit.append({
    ...grantSubject(request),
    actor: 'system:grant',
    action: 'grant.expiry-scheduled' satisfies AuditAction,
    expiresAt,
    expirySequenceNumber: sequenceNumber,
    detail: `closing begins at ${closingAt}, so that the port is shut by ${expiresAt}`,
  });
  const moved = await activate(deps, found, rules, sequenceNumber);
  if (moved) return void (await notifyRequester(deps, moved.value));

  // Another run activated it first, or it was revoked meanwhile. Our message is most likely the very one the
  // winner recorded (the same id): it is cancelled only if the request ended or recorded another.
  const [cancelled] = await cancelSuperseded(deps, 'expire', requestId, [
    { sequenceNumber, dueAt: expiresAt },
  ]);
  if (cancelled) {
    await deps.audit.append({
      ...grantSubject(request),
      actor: 'system:grant',
      action: 'grant.expiry-cancelled' satisfies AuditAction,
      expirySequenceNumber: sequenceNumber,
      detail: 'a duplicate: the request ended, or another run activated it with its own expiry message',
    });
  }
  // If it was revoked meanwhile, its clean-up may have run before our rules landed.
  const latest = await deps.requests.get(requestId);
  if (!latest || isFinal(latest.value.status)) await removeRules(deps, requestId);
}

/** How often the activation is tried again when the row changed but is still the same approved grant. */
const ACTIVATION_ATTEMPTS = 3;

/**
 * `approved` → `active` with the expiry's sequence number. A write that is not a decision (the audit outbox
 * clearing the row's pending event, a reader flushing it) changes the ETag too: then the request, still approved
 * with the same expiry, is read again and activated. Undefined when someone else moved it on.
 */
async function activate(
  deps: ApplyPorts,
  found: StoredRequest,
  rules: GrantRule[],
  sequenceNumber: string,
): Promise<StoredRequest | undefined> {
  const expiresAt = found.value.expiresAt as string;
  let current = found;
  for (let attempt = 1; ; attempt++) {
    const moved = await transition(
      deps,
      current,
      'active',
      { activatedAt: deps.clock.now().toISOString(), expirySequenceNumber: sequenceNumber },
      {
        actor: 'system:grant',
        action: 'grant.activated',
        expiresAt,
        detail:
          `until ${expiresAt}; ` +
          rules
            .map(
              (g) =>
                `${g.ruleName} priority ${g.priority} in ${g.nsgId}` +
                (g.effective === false
                  ? ` (not effective: shadowed by ${g.shadowedBy ?? 'a deny rule'})`
                  : ''),
            )
            .join('; '),
      },
    );
    if (moved || attempt >= ACTIVATION_ATTEMPTS) return moved;
    const latest = await deps.requests.get(found.value.id);
    if (latest?.value.status !== 'approved' || latest.value.expiresAt !== expiresAt) return undefined;
    current = latest;
  }
}

/** The request left `approved` while its rules were being written. */
class RequestMovedOn extends Error {
  constructor(readonly status: RequestStatus | 'missing') {
    super(`the request is ${status}`);
  }
}

/** Writes (or finds) this grant's rule in each NSG. Throws GrantNotApplicable when it can never succeed. */
async function writeRules(
  deps: ApplyPorts,
  request: AccessRequest,
  path: VmNetworkPath,
  expiresAt: string,
): Promise<GrantRule[]> {
  const placements = planGrantRules(path, request.sourcePrefix);
  if (path.unguardedAddresses.length) {
    deps.log.warn('grant.unguarded-addresses', { requestId: request.id, addresses: path.unguardedAddresses });
  }
  const listings = await preflight(deps, placements);
  const [policy] = await deps.policies.getForScopes([request.policyScope]);
  // Before the allow rules exist, so the end of the grant (removing them) re-evaluates and cuts their sessions.
  if (policy?.cutSessions === true) {
    await Promise.all(
      placements.map((p) => withNsg(deps, p.nsgId, () => enableFlushConnection(deps, p.nsgId))),
    );
  }
  // On the live index before any row or rule exists, so whatever follows is on the reconciler's list.
  await deps.grants.markLive(request.id);
  // Every NSG at once: access needs all of them, so the user waits for the slowest write, not their sum. Order does
  // not matter for safety (a rule in one NSG opens nothing while another NSG in the path still denies). All
  // writes settle before a failure is reported, so the clean-up never races a write still in flight.
  const results = await Promise.allSettled(
    placements.map((p) => writeRule(deps, request, p, expiresAt, listings.get(p.nsgId) ?? [])),
  );
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<GrantRule>).value);
}

async function writeRule(
  deps: ApplyPorts,
  request: AccessRequest,
  placement: RulePlacement,
  expiresAt: string,
  rulesBefore: readonly SecurityRuleView[],
): Promise<GrantRule> {
  const { nsgId, destinations } = placement;
  const name = ruleNameFor(request.id);
  const row = (priority: number, state: GrantRule['state']): GrantRule => ({
    requestId: request.id,
    nsgId,
    ruleName: name,
    priority,
    destinationAddresses: destinations,
    state,
    expiresAt,
    updatedAt: deps.clock.now().toISOString(),
  });
  const allow = {
    name,
    protocol: request.protocol,
    sourcePrefix: request.sourcePrefix,
    destinations,
    ports: request.ports,
  };
  // Above Defender for Cloud's JIT deny rule where one would shadow the grant.
  const band = bandClearOfDefender(rulesBefore, deps.settings.priorityBand, allow);
  // Watched before anything is written there: a rule stranded by a crash is in an NSG the reconciler sweeps.
  await watchNsg(deps, nsgId, { ports: request.ports, addresses: destinations });
  // Only what must not interleave with another writer of the NSG runs under its lock.
  const { priority } = await withNsg(deps, nsgId, () =>
    putRuleWithRetry(deps, {
      nsgId,
      name,
      band,
      specAt: (p) => grantRuleSpec(request, destinations, p),
      beforeAttempt: async () => {
        // A revoke or a failure elsewhere ends the attempt: no rule for a request that is not waiting for one.
        const now = await deps.requests.get(request.id);
        if (now?.value.status !== 'approved') throw new RequestMovedOn(now?.value.status ?? 'missing');
      },
      // Recorded before the write: a crash after ARM accepted it still leaves a row that says where to look.
      beforeWrite: (p) => deps.grants.upsert(row(p, 'applying')),
      logFields: { requestId: request.id },
    }),
  );
  // Audited before the row says `applied`: a crash in between repeats the event rather than losing it.
  await deps.audit.append({
    ...grantSubject(request),
    actor: 'system:grant',
    action: 'grant.rule-applied' satisfies AuditAction,
    nsg: nsgId,
    rule: name,
    priority,
  });
  // Written is not the same as letting traffic in: a deny rule of higher priority (Defender's JIT deny rule, an
  // operator's) would shadow it. Reported on the request rather than refused: the operator decides.
  const shadow = findShadow(rulesBefore, { ...allow, priority });
  const applied: GrantRule = { ...row(priority, 'applied'), effective: shadow === undefined };
  if (shadow) {
    applied.shadowedBy = describeShadow(shadow);
    deps.log.warn('grant.rule-shadowed', {
      requestId: request.id,
      nsgId,
      rule: name,
      priority,
      shadowedBy: applied.shadowedBy,
      // Where the band cannot go above the deny rule, say so: JIT_PRIORITY_RANGE must start below it.
      bandCanGoAbove: deps.settings.priorityBand.min < shadow.priority,
    });
  }
  await deps.grants.upsert(applied);
  return applied;
}

/** The allow rule a grant holds in one NSG: the request's source to these destinations, on its ports. */
export function grantRuleSpec(
  request: AccessRequest,
  destinations: string[],
  priority: number,
): AllowRuleSpec {
  return {
    name: ruleNameFor(request.id),
    access: 'Allow',
    priority,
    protocol: request.protocol,
    sourceAddressPrefix: request.sourcePrefix,
    destinationAddressPrefixes: destinations,
    destinationPortRanges: request.ports.map(String),
    description: `JIT access for ${request.requester}, request ${request.id}, until ${request.expiresAt ?? ''}`,
  };
}
