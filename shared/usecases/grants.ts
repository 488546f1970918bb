import {
  CloseBlocked,
  ConcurrencyConflict,
  GrantNotApplicable,
  NetworkPermissionMissing,
  ResourceNotFound,
  TransientFailure,
} from '../domain/errors';
import type { AuditAction } from '../domain/auditActions';
import { startsLater } from '../domain/lifecycle';
import { planGrantRules } from '../domain/networkPath';
import type { RulePlacement } from '../domain/networkPath';
import type { ExpiryMessage, StoredRequest } from '../domain/ports';
import { describeShadow, findShadow } from '../domain/effectiveAccess';
import { lowestFreePriority, ruleNameFor } from '../domain/priority';
import { MAX_RULES_PER_NSG } from '../domain/limits';
import { emitAll, signalsOfTransition } from '../domain/signals';
import { assertTransition } from '../domain/state';
import { isFinal } from '../domain/types';
import type {
  AccessRequest,
  AllowRuleSpec,
  AuditEvent,
  GrantRule,
  RequestStatus,
  SecurityRuleView,
  VmNetworkPath,
} from '../domain/types';
import { startApproval } from './approvals';
import { writeAudited } from './auditOutbox';
import type { Deps } from './deps';
import { notifyRequester } from './notify';
import { announceTransition } from './notifyChannels';
import {
  closeRule,
  enableFlushConnection,
  putRuleWithRetry,
  retryTransient,
  watchNsg,
  withNsg,
  withNsgToClose,
} from './nsgWrites';
import type { CloseOutcome } from './nsgWrites';
import { awaitRecording, cancelSuperseded } from './scheduledMessages';

/**
 * Moves a request to a new status with a conditional write that carries its audit event (see auditOutbox.ts).
 * Returns undefined (and writes nothing) when someone else moved it first.
 */
export async function transition(
  deps: Deps,
  current: StoredRequest,
  to: RequestStatus,
  changes: Partial<AccessRequest>,
  audit: {
    actor: string;
    actorId?: string;
    action: AuditAction;
    detail?: string;
    clientAddress?: string;
    expiresAt?: string;
  },
): Promise<StoredRequest | undefined> {
  assertTransition(current.value.status, to);
  const next: AccessRequest = {
    ...current.value,
    ...changes,
    status: to,
    updatedAt: deps.clock.now().toISOString(),
  };
  let written: StoredRequest;
  try {
    // The change and its event in one write; the event is appended right after (shared/usecases/auditOutbox.ts).
    written = await writeAudited(deps, current, next, {
      actor: audit.actor,
      ...(audit.actorId ? { actorId: audit.actorId } : {}),
      action: audit.action,
      requestId: next.id,
      vm: next.vmId,
      ports: next.ports,
      sourcePrefix: next.sourcePrefix,
      expiresAt: audit.expiresAt,
      detail: audit.detail,
      clientAddress: audit.clientAddress,
    });
  } catch (err) {
    if (err instanceof ConcurrencyConflict) return undefined;
    throw err;
  }
  deps.log.info(audit.action, { requestId: next.id, status: to });
  // Operators' signals and chat notifications: after the write, never able to undo or fail it.
  emitAll(deps.signals, signalsOfTransition(current.value.status, written.value, audit.actor));
  await announceTransition(deps, written.value, audit.actor);
  return written;
}

/**
 * `evaluateRequest` (queue jit-requests): decide by policy. Auto-approval moves the request on to `jit-grants`;
 * manual approval mails the approvers (shared/usecases/approvals.ts). A message for a request that already moved
 * on is a no-op, except that an `approved` request is handed on again and a pending one whose approvers were
 * never mailed is mailed (the previous run may have crashed between the write and the next step).
 */
export async function evaluateRequest(deps: Deps, requestId: string): Promise<void> {
  const found = await deps.requests.get(requestId);
  if (!found) return void deps.log.warn('evaluate.unknown-request', { requestId });
  const r = found.value;
  if (r.status === 'approved') return deps.queues.enqueueGrant(r.id);
  const unmailed = r.status === 'pending-approval' && !r.approversNotifiedAt;
  if (r.status !== 'submitted' && !unmailed) return;

  const [policy] = await deps.policies.getForScopes([r.policyScope]);
  if (!policy) {
    await transition(
      deps,
      found,
      'denied',
      {
        statusReason: 'the policy was removed before the request was decided',
        endedAt: deps.clock.now().toISOString(),
      },
      {
        actor: 'system:policy',
        action: 'request.denied',
        detail: 'policy removed',
      },
    );
    return;
  }
  if (policy.approval.mode === 'auto' && startsLater(r, deps.clock.now())) {
    await scheduleStart(deps, found, {
      actor: 'system:policy',
      detail: `auto-approved by policy ${policy.scope}`,
    });
    return;
  }
  if (policy.approval.mode === 'auto') {
    const moved = await transition(
      deps,
      found,
      'approved',
      { approvedAt: deps.clock.now().toISOString() },
      {
        actor: 'system:policy',
        action: 'request.approved',
        detail: `auto-approved by policy ${policy.scope}`,
      },
    );
    if (moved) await deps.queues.enqueueGrant(r.id);
    return;
  }
  await startApproval(deps, found, policy);
}

/**
 * Approval of a request that asks to start later: schedule its start message, then move it to `scheduled` with
 * the message's sequence number (so a revoke can cancel it). The approval flow calls this too when approvers
 * decide before the start. Returns whether this call moved the request.
 */
export async function scheduleStart(
  deps: Deps,
  found: StoredRequest,
  audit: { actor: string; detail: string },
): Promise<boolean> {
  const r = found.value;
  const startAt = r.startAt as string;
  // The message first: a crash after it leaves a message the retry finds again (the same id, which Service Bus
  // drops as a duplicate, handing back the live one), never a request nothing will start.
  const sequenceNumber = await deps.starts.scheduleStart({ requestId: r.id, startAt }, new Date(startAt));
  const moved = await transition(
    deps,
    found,
    'scheduled',
    { approvedAt: deps.clock.now().toISOString(), startSequenceNumber: sequenceNumber },
    { actor: audit.actor, action: 'request.scheduled', detail: `${audit.detail}; starts at ${startAt}` },
  );
  // Lost the race: the message may be the very one the winner recorded (the same id), so it goes only if the
  // request ended or recorded another.
  if (!moved) await cancelSuperseded(deps, 'start', r.id, [{ sequenceNumber, dueAt: startAt }]);
  return moved !== undefined;
}

/**
 * `applyGrant` (queue jit-grants): open the hole in every NSG in front of the VM, then schedule the one expiry
 * message and mark the request active. Idempotent: rules are found by name, the expiry is scheduled once.
 * A message for a request that already ended only finishes its clean-up (a failure may have stopped half-way).
 */
export async function applyGrant(deps: Deps, requestId: string): Promise<void> {
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
  const sequenceNumber = await deps.scheduler.scheduleExpiry({ requestId, expiresAt }, new Date(expiresAt));
  await deps.audit.append({
    ...grantSubject(request),
    actor: 'system:grant',
    action: 'grant.expiry-scheduled' satisfies AuditAction,
    expiresAt,
    expirySequenceNumber: sequenceNumber,
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
  deps: Deps,
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

/**
 * Refuses at submission what `applyGrant` would refuse anyway (no NSG in the path, no address of the source's
 * family), so nobody approves a request that can never be applied. ARM being unreachable is no reason to refuse:
 * `applyGrant` checks again, and fails the request then if it must.
 */
export async function checkGrantable(deps: Deps, vmId: string, sourcePrefix: string): Promise<void> {
  let placements: RulePlacement[];
  try {
    const path = await deps.network.resolvePath(vmId);
    placements = planGrantRules(path, sourcePrefix);
    // Refused up front what could not be closed (a ReadOnly lock) or not written (a full NSG). One try each: a
    // caller waits on this, and applyGrant checks again with retries.
    await preflight(deps, placements, { retry: false });
  } catch (err) {
    if (err instanceof ResourceNotFound) throw new GrantNotApplicable('the VM was not found');
    if (err instanceof GrantNotApplicable || err instanceof NetworkPermissionMissing) throw err;
    deps.log.warn('request.path-unchecked', { vm: vmId, error: String(err) });
  }
}

/**
 * Before any rule of a grant is written, every NSG it needs is checked, so a grant that cannot complete writes
 * nothing (a grant over two NSGs whose second is full leaves no rule in the first):
 * - locks: a `ReadOnly` lock on the NSG, its resource group or subscription refuses (JIT could neither open nor
 *   close there). A `CanNotDelete` lock does not: closing turns the rule to `Deny`, which that lock allows, so the
 *   access still ends on time (see docs/operations.md); it is logged.
 * - room: 1,000 rules per NSG is Azure's limit, and the JIT band needs a free priority.
 * Returns each NSG's rules as read, for the effective-access check after writing.
 * Throws `GrantNotApplicable` naming the NSG and why, `NetworkPermissionMissing` when they cannot be read.
 */
async function preflight(
  deps: Deps,
  placements: RulePlacement[],
  options: { retry: boolean } = { retry: true },
): Promise<Map<string, SecurityRuleView[]>> {
  const listings = await Promise.all(
    placements.map(async ({ nsgId }) => {
      // Read like every other ARM call here: what is transient (throttling, a busy NSG) is retried, not fatal.
      const read = <T>(what: string, task: () => Promise<T>) =>
        options.retry
          ? retryTransient(deps, task, (attempt, err) =>
              deps.log.warn('grant.preflight-retry', { nsgId, what, attempt, error: err.message }),
            )
          : task();
      const [locks, rules] = await Promise.all([
        read('locks', () => deps.network.listLocks(nsgId)),
        read('rules', () => deps.network.listRules(nsgId)),
      ]);
      const readOnly = locks.find((l) => l.level === 'ReadOnly');
      if (readOnly) {
        throw new GrantNotApplicable(
          `${nsgId} is under the ReadOnly lock '${readOnly.name}' on ${readOnly.scope}: JIT could neither open nor close a rule there`,
        );
      }
      const canNotDelete = locks.find((l) => l.level === 'CanNotDelete');
      if (canNotDelete) {
        deps.log.warn('grant.lock-can-not-delete', {
          nsgId,
          lock: canNotDelete.name,
          scope: canNotDelete.scope,
        });
      }
      if (rules.length >= MAX_RULES_PER_NSG) {
        throw new GrantNotApplicable(
          `${nsgId} is full: it holds ${rules.length} rules and Azure allows ${MAX_RULES_PER_NSG} per network security group`,
        );
      }
      const band = deps.settings.priorityBand;
      if (lowestFreePriority(rules, band) === undefined) {
        throw new GrantNotApplicable(
          `no free priority in ${band.min}-${band.max} in ${nsgId} (${rules.length} rules)`,
        );
      }
      return [nsgId, rules] as const;
    }),
  );
  return new Map(listings);
}

/** What ARM says of the VM a request names: its canonical id, or why there is none to grant on. */
export type CanonicalVm =
  | { kind: 'found'; vmId: string }
  | { kind: 'unusable'; error: GrantNotApplicable | NetworkPermissionMissing };

/**
 * ARM's canonical id for the VM a request names, which decides the policy: never a guess from the id as typed, so
 * ARM not answering is a 503 to try again. A missing VM, or one the deployment may not read, is returned rather
 * than thrown: the caller says so only to someone the policy allows.
 */
export async function canonicalVmId(deps: Pick<Deps, 'network' | 'log'>, vmId: string): Promise<CanonicalVm> {
  try {
    return { kind: 'found', vmId: await deps.network.getVmId(vmId) };
  } catch (err) {
    if (err instanceof ResourceNotFound)
      return { kind: 'unusable', error: new GrantNotApplicable('the VM was not found') };
    if (err instanceof NetworkPermissionMissing) return { kind: 'unusable', error: err };
    deps.log.warn('request.vm-unread', { vm: vmId, error: String(err) });
    if (err instanceof TransientFailure) throw err;
    throw new TransientFailure('ARM could not be asked about the VM; try again shortly');
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
  deps: Deps,
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
  deps: Deps,
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
  // Watched before anything is written there: a rule stranded by a crash is in an NSG the reconciler sweeps.
  await watchNsg(deps, nsgId, { ports: request.ports, addresses: destinations });
  // Only what must not interleave with another writer of the NSG runs under its lock.
  const { priority } = await withNsg(deps, nsgId, () =>
    putRuleWithRetry(deps, {
      nsgId,
      name,
      band: deps.settings.priorityBand,
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
  const shadow = findShadow(rulesBefore, {
    name,
    priority,
    protocol: request.protocol,
    sourcePrefix: request.sourcePrefix,
    destinations,
    ports: request.ports,
  });
  const applied: GrantRule = { ...row(priority, 'applied'), effective: shadow === undefined };
  if (shadow) {
    applied.shadowedBy = describeShadow(shadow);
    const band = deps.settings.priorityBand;
    deps.log.warn('grant.rule-shadowed', {
      requestId: request.id,
      nsgId,
      rule: name,
      priority,
      shadowedBy: applied.shadowedBy,
      // Where the band cannot go above the deny rule, say so: JIT_PRIORITY_RANGE must start below it.
      bandCanGoAbove: band.min < shadow.priority,
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

function grantSubject(r: AccessRequest): Pick<AuditEvent, 'requestId' | 'vm' | 'ports' | 'sourcePrefix'> {
  return { requestId: r.id, vm: r.vmId, ports: r.ports, sourcePrefix: r.sourcePrefix };
}

/**
 * Deletes every rule this grant wrote, exactly those (by name, in the NSGs its rows name), retrying what is
 * transient. A rule already gone is fine; another grant's rule for the same VM and port is never touched.
 * The NSGs are worked on at once (each still one writer at a time): a grant's port stays open until every rule
 * in its path is gone, and one after another doubled that time. Throws if ARM keeps refusing — after every NSG
 * has had its try, so a retry finds less to do; the rows that are not `removed` and the live index keep it on
 * the reconciler's list until it succeeds.
 *
 * A management lock that refuses the delete does not leave the hole open: the rule is turned to `Deny` where the
 * lock allows a write (`CanNotDelete`), its row says `neutralised`, an audit event and an error log line
 * (`grant.rule-neutralised`) say so, and the grant stays on the live index so the reconciler retries the delete
 * until the lock is lifted; the grant counts as closed. Where nothing can be written (`ReadOnly`), the row, the
 * request's statusReason, the audit trail and an error log line (`grant.close-blocked`) say that access is still
 * open, and this throws `CloseBlocked`, so nothing marks the grant closed and every retry tries again.
 */
export async function removeRules(
  deps: Deps,
  requestId: string,
  actor = 'system:grant',
  subject: Pick<AuditEvent, 'vm' | 'ports' | 'sourcePrefix'> = {},
): Promise<GrantRule[]> {
  const rows = await deps.grants.list(requestId);
  const results = await Promise.allSettled(
    rows.filter((g) => g.state !== 'removed').map((g) => closeGrantRule(deps, g, actor, subject)),
  );
  const blocked = results.find(
    (r): r is PromiseRejectedResult => r.status === 'rejected' && r.reason instanceof CloseBlocked,
  );
  if (blocked) await recordCloseBlocked(deps, requestId, (blocked.reason as CloseBlocked).message);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  await deps.grants.clearLive(requestId);
  // A writer that lost the race to a revoke may have recorded a rule since we listed, and a neutralised rule is
  // still to be deleted: either keeps the grant on the index.
  if ((await deps.grants.list(requestId)).some((g) => g.state !== 'removed')) {
    await deps.grants.markLive(requestId);
  }
  return rows;
}

async function closeGrantRule(
  deps: Deps,
  g: GrantRule,
  actor: string,
  subject: Pick<AuditEvent, 'vm' | 'ports' | 'sourcePrefix'>,
): Promise<void> {
  const requestId = g.requestId;
  const now = () => deps.clock.now().toISOString();
  let outcome: CloseOutcome;
  try {
    outcome = await withNsgToClose(deps, g.nsgId, () => closeRule(deps, g.nsgId, g.ruleName, { requestId }));
  } catch (err) {
    if (err instanceof CloseBlocked && g.closeBlocked !== err.message) {
      await deps.audit.append({
        ...subject,
        actor,
        action: 'grant.close-blocked' satisfies AuditAction,
        requestId,
        nsg: g.nsgId,
        rule: g.ruleName,
        priority: g.priority,
        detail: err.message,
      });
      await deps.grants.upsert({ ...g, closeBlocked: err.message, updatedAt: now() });
    }
    // The alert operators act on: access that should be over is still open.
    if (err instanceof CloseBlocked)
      deps.log.error('grant.close-blocked', {
        requestId,
        nsgId: g.nsgId,
        rule: g.ruleName,
        error: err.message,
      });
    throw err;
  }
  if (outcome.closed === 'neutralised') {
    if (g.state !== 'neutralised') {
      await deps.audit.append({
        ...subject,
        actor,
        action: 'grant.rule-neutralised' satisfies AuditAction,
        requestId,
        nsg: g.nsgId,
        rule: g.ruleName,
        priority: g.priority,
        detail: `${outcome.lock} refuses deleting ${g.ruleName}; it was turned to Deny and lets nothing in; the delete is retried until the lock is lifted`,
      });
      await deps.grants.upsert({ ...withoutCloseBlocked(g), state: 'neutralised', updatedAt: now() });
    }
    // Alertable: JIT keeps a Deny rule it could not delete (it counts against the NSG's limits) until someone acts.
    deps.log.error('grant.rule-neutralised', {
      requestId,
      nsgId: g.nsgId,
      rule: g.ruleName,
      lock: outcome.lock,
    });
    return;
  }
  await deps.audit.append({
    ...subject,
    actor,
    action: 'grant.rule-removed' satisfies AuditAction,
    requestId,
    nsg: g.nsgId,
    rule: g.ruleName,
    priority: g.priority,
  });
  await deps.grants.upsert({ ...withoutCloseBlocked(g), state: 'removed', updatedAt: now() });
  deps.log.info('grant.rule-removed', { requestId, nsgId: g.nsgId, rule: g.ruleName });
}

function withoutCloseBlocked(g: GrantRule): GrantRule {
  const copy = { ...g };
  delete copy.closeBlocked;
  return copy;
}

/**
 * Says on the request that its access could not be closed, once per reason: the request keeps its status (nothing
 * may read as closed while the hole is open) and its statusReason names the lock. Its own audit event.
 */
async function recordCloseBlocked(deps: Deps, requestId: string, reason: string): Promise<void> {
  const statusReason = `access could not be closed and is still open: ${reason}`;
  try {
    const found = await deps.requests.get(requestId);
    if (!found || found.value.statusReason === statusReason) return;
    const r = found.value;
    await writeAudited(
      deps,
      found,
      { ...r, statusReason, updatedAt: deps.clock.now().toISOString() },
      {
        actor: 'system:grant',
        action: 'grant.close-blocked' satisfies AuditAction,
        requestId,
        vm: r.vmId,
        ports: r.ports,
        sourcePrefix: r.sourcePrefix,
        detail: statusReason,
      },
    );
  } catch (err) {
    // The rule rows and the error log already say it; the next retry records it on the request.
    deps.log.warn('grant.close-blocked-unrecorded', { requestId, error: String(err) });
  }
}

/**
 * Ends a grant that cannot be applied: record why, then remove whatever it wrote. The decision is recorded
 * first so that a retry of the message cannot write the rules again; if the removal fails, the live index
 * keeps the rules on the reconciler's list. When someone else moved the request on first (a duplicate run
 * activated it), its rules are theirs and stay.
 */
export async function failGrant(
  deps: Deps,
  found: StoredRequest,
  reason: string,
  actor = 'system:grant',
): Promise<void> {
  const moved = await transition(
    deps,
    found,
    'failed',
    { statusReason: reason, endedAt: deps.clock.now().toISOString() },
    {
      actor,
      action: 'grant.failed',
      detail: reason,
    },
  );
  if (!moved) {
    const latest = await deps.requests.get(found.value.id);
    if (latest && !isFinal(latest.value.status)) return;
  }
  await removeRules(deps, found.value.id, actor, grantSubject(found.value));
  if (moved) await notifyRequester(deps, moved.value);
}

/**
 * `revokeGrant` (Service Bus jit-expirations): close the rules and mark the request expired. A message whose
 * expiry no longer matches the request (it was extended or revoked meanwhile) is ignored. The rules go first,
 * so the request never says `expired` while its hole is still open.
 */
export async function expireGrant(
  deps: Deps,
  message: ExpiryMessage,
  actor = 'system:expiry',
): Promise<void> {
  const applying = (r: AccessRequest) => r.status === 'approved' && r.expiresAt === message.expiresAt;
  let found = await deps.requests.get(message.requestId);
  // Due while the apply that scheduled it is still writing the rules (a grant shorter than its apply).
  if (found && applying(found.value)) found = await awaitRecording(deps, message.requestId, applying);
  if (!found) return void deps.log.warn('expire.unknown-request', { requestId: message.requestId });
  const r = found.value;
  if (r.status !== 'active' || r.expiresAt !== message.expiresAt) {
    deps.log.info('expire.stale-message', { requestId: r.id, status: r.status });
    return;
  }
  const removed = await removeRules(deps, r.id, actor, grantSubject(r));
  const moved = await transition(
    deps,
    found,
    'expired',
    { endedAt: deps.clock.now().toISOString() },
    {
      actor,
      action: 'grant.expired',
      detail: `closed ${removed.map((g) => `${g.ruleName} in ${g.nsgId}`).join('; ')}`,
    },
  );
  if (moved) await notifyRequester(deps, moved.value);
}
