import type { AuditAction } from '../domain/auditActions';
import { ConcurrencyConflict, GrantNotApplicable, PriorityTaken, TransientFailure } from '../domain/errors';
import { familyOfAddress, parsePrefix } from '../domain/network';
import type { ExpiryMessage, Versioned } from '../domain/ports';
import { lowestFreePriority, ruleNameFor } from '../domain/priority';
import { assertTransition } from '../domain/state';
import type {
  AccessRequest,
  AllowRuleSpec,
  AuditEvent,
  GrantRule,
  RequestStatus,
  VmNetworkPath,
} from '../domain/types';
import type { Deps } from './deps';
import { KeyedMutex } from './keyedMutex';

const nsgWrites = new KeyedMutex();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Moves a request to a new status with a conditional write and records the audit event.
 * Returns undefined (and writes nothing) when someone else moved it first.
 */
async function transition(
  deps: Deps,
  current: Versioned<AccessRequest>,
  to: RequestStatus,
  changes: Partial<AccessRequest>,
  audit: { actor: string; action: AuditAction; detail?: string; expiresAt?: string },
): Promise<Versioned<AccessRequest> | undefined> {
  assertTransition(current.value.status, to);
  const next: AccessRequest = {
    ...current.value,
    ...changes,
    status: to,
    updatedAt: deps.clock.now().toISOString(),
  };
  let etag: string;
  try {
    etag = await deps.requests.update(next, current.etag);
  } catch (err) {
    if (err instanceof ConcurrencyConflict) return undefined;
    throw err;
  }
  await deps.audit.append({
    actor: audit.actor,
    action: audit.action,
    requestId: next.id,
    vm: next.vmId,
    ports: next.ports,
    sourcePrefix: next.sourcePrefix,
    expiresAt: audit.expiresAt,
    detail: audit.detail,
  });
  deps.log.info(audit.action, { requestId: next.id, status: to });
  return { value: next, etag };
}

/**
 * `evaluateRequest` (queue jit-requests): decide by policy. Auto-approval moves the request on to `jit-grants`.
 * A message for a request that already moved on is a no-op, except that an `approved` request is handed on
 * again (the previous run may have crashed between the write and the enqueue).
 */
export async function evaluateRequest(deps: Deps, requestId: string): Promise<void> {
  const found = await deps.requests.get(requestId);
  if (!found) return void deps.log.warn('evaluate.unknown-request', { requestId });
  const r = found.value;
  if (r.status === 'approved') return deps.queues.enqueueGrant(r.id);
  if (r.status !== 'submitted') return;

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
  await transition(
    deps,
    found,
    'pending-approval',
    {},
    {
      actor: 'system:policy',
      action: 'request.pending-approval',
      detail: `awaiting ${policy.approval.required} approval(s) from ${policy.approval.approvers.join(', ')}`,
    },
  );
}

/**
 * `applyGrant` (queue jit-grants): open the hole in every NSG in front of the VM, then schedule the one expiry
 * message and mark the request active. Idempotent: rules are found by name, the expiry is scheduled once.
 */
export async function applyGrant(deps: Deps, requestId: string): Promise<void> {
  let found = await deps.requests.get(requestId);
  if (!found) return void deps.log.warn('apply.unknown-request', { requestId });
  if (found.value.status !== 'approved') return;

  // Fix the deadline before the first rule exists, so every rule ever written has a recorded end.
  if (!found.value.expiresAt) {
    const expiresAt = new Date(
      deps.clock.now().getTime() + found.value.durationInSeconds * 1000,
    ).toISOString();
    const next = { ...found.value, expiresAt, updatedAt: deps.clock.now().toISOString() };
    try {
      found = { value: next, etag: await deps.requests.update(next, found.etag) };
    } catch (err) {
      if (err instanceof ConcurrencyConflict)
        throw new TransientFailure('request changed while applying; retry');
      throw err;
    }
  }
  const request = found.value;
  const expiresAt = request.expiresAt as string;

  let rules: GrantRule[];
  try {
    const path = await deps.network.resolvePath(request.vmId);
    rules = await writeRules(deps, request, path, expiresAt);
  } catch (err) {
    if (err instanceof GrantNotApplicable) {
      await failGrant(deps, found, err.message);
      return;
    }
    throw err;
  }

  const sequenceNumber = await deps.scheduler.scheduleExpiry({ requestId, expiresAt }, new Date(expiresAt));
  await deps.audit.append({
    ...grantSubject(request),
    actor: 'system:grant',
    action: 'grant.expiry-scheduled' satisfies AuditAction,
    expiresAt,
    expirySequenceNumber: sequenceNumber,
  });
  const now = deps.clock.now().toISOString();
  const moved = await transition(
    deps,
    found,
    'active',
    { activatedAt: now, expirySequenceNumber: sequenceNumber },
    {
      actor: 'system:grant',
      action: 'grant.activated',
      expiresAt,
      detail:
        `until ${expiresAt}; ` +
        rules.map((g) => `${g.ruleName} priority ${g.priority} in ${g.nsgId}`).join('; '),
    },
  );
  if (!moved) {
    // Another run activated it first and scheduled its own expiry: ours would be a second one.
    await deps.scheduler.cancelExpiry(sequenceNumber);
    await deps.audit.append({
      ...grantSubject(request),
      actor: 'system:grant',
      action: 'grant.expiry-cancelled' satisfies AuditAction,
      expirySequenceNumber: sequenceNumber,
      detail: 'a duplicate: another run activated the grant first and scheduled its own expiry',
    });
  }
}

/** Writes (or finds) this grant's rule in each NSG. Throws GrantNotApplicable when it can never succeed. */
async function writeRules(
  deps: Deps,
  request: AccessRequest,
  path: VmNetworkPath,
  expiresAt: string,
): Promise<GrantRule[]> {
  if (path.nsgIds.length === 0) {
    throw new GrantNotApplicable(
      'the VM has no network security group in its path: there is no rule to open (the port is either already exposed or unreachable)',
    );
  }
  const source = parsePrefix(request.sourcePrefix);
  const destinations = path.privateAddresses.filter(
    (ip) => source.cidr === '*' || familyOfAddress(ip) === source.family,
  );
  if (destinations.length === 0) {
    throw new GrantNotApplicable(
      `the VM has no private ${source.family === 'ipv6' ? 'IPv6' : 'IPv4'} address to open`,
    );
  }
  const name = ruleNameFor(request.id);
  const existing = await deps.grants.list(request.id);
  const out: GrantRule[] = [];
  // NSGs one after another: the subnet NSG first, so a partial grant never leaves a NIC-only hole to clean up.
  for (const nsgId of path.nsgIds) {
    const rule = await nsgWrites.run(nsgId, () =>
      writeRule(
        deps,
        request,
        nsgId,
        name,
        destinations,
        expiresAt,
        existing.find((g) => g.nsgId === nsgId),
      ),
    );
    out.push(rule);
  }
  return out;
}

async function writeRule(
  deps: Deps,
  request: AccessRequest,
  nsgId: string,
  name: string,
  destinations: string[],
  expiresAt: string,
  recorded: GrantRule | undefined,
): Promise<GrantRule> {
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
  // Audited before the row says `applied`: a crash in between repeats the event rather than losing it.
  const audit = (priority: number) =>
    deps.audit.append({
      ...grantSubject(request),
      actor: 'system:grant',
      action: 'grant.rule-applied' satisfies AuditAction,
      nsg: nsgId,
      rule: name,
      priority,
    });
  const present = await deps.network.getRule(nsgId, name);
  if (present) {
    const applied = row(present.priority, 'applied');
    if (recorded?.state !== 'applied') {
      await audit(present.priority);
      await deps.grants.upsert(applied);
    }
    return applied;
  }
  const losers = new Set<number>();
  let lastError = '';
  for (let attempt = 1; attempt <= deps.settings.maxArmAttempts; attempt++) {
    const rules = await deps.network.listRules(nsgId);
    const priority = lowestFreePriority(rules, deps.settings.priorityBand, losers);
    if (priority === undefined) {
      throw new GrantNotApplicable(
        `no free priority in ${deps.settings.priorityBand.min}-${deps.settings.priorityBand.max} in ${nsgId}`,
      );
    }
    // Recorded before the write: a crash after ARM accepted it still leaves a row that says where to look.
    await deps.grants.upsert(row(priority, 'applying'));
    const spec: AllowRuleSpec = {
      name,
      priority,
      protocol: request.protocol,
      sourceAddressPrefix: request.sourcePrefix,
      destinationAddressPrefixes: destinations,
      destinationPortRanges: request.ports.map(String),
      description: `JIT access for ${request.requester}, request ${request.id}, until ${expiresAt}`,
    };
    try {
      await deps.network.putRule(nsgId, spec);
      const applied = row(priority, 'applied');
      await audit(priority);
      await deps.grants.upsert(applied);
      deps.log.info('grant.rule-applied', { requestId: request.id, nsgId, priority, attempt });
      return applied;
    } catch (err) {
      if (err instanceof PriorityTaken) {
        losers.add(priority);
      } else if (!(err instanceof TransientFailure)) {
        throw err;
      }
      lastError = (err as Error).message;
      deps.log.warn('grant.rule-retry', {
        requestId: request.id,
        nsgId,
        priority,
        attempt,
        error: lastError,
      });
      const retryAfter = err instanceof TransientFailure ? err.retryAfterInMs : undefined;
      await sleep(retryAfter ?? backoff(deps.settings.armBackoffInMs, attempt));
    }
  }
  throw new GrantNotApplicable(
    `gave up writing the rule to ${nsgId} after ${deps.settings.maxArmAttempts} attempts: ${lastError}`,
  );
}

/** The columns that say which grant an event is about, so every event of a grant shows in the VM's index. */
function grantSubject(r: AccessRequest): Pick<AuditEvent, 'requestId' | 'vm' | 'ports' | 'sourcePrefix'> {
  return { requestId: r.id, vm: r.vmId, ports: r.ports, sourcePrefix: r.sourcePrefix };
}

function backoff(baseInMs: number, attempt: number): number {
  const cap = Math.min(8000, baseInMs * 2 ** (attempt - 1));
  return cap / 2 + Math.random() * (cap / 2);
}

/** Deletes every rule this grant wrote, retrying what is transient. Throws if ARM keeps refusing. */
export async function removeRules(
  deps: Deps,
  requestId: string,
  actor = 'system:grant',
  subject: Pick<AuditEvent, 'vm' | 'ports' | 'sourcePrefix'> = {},
): Promise<GrantRule[]> {
  const rows = await deps.grants.list(requestId);
  for (const g of rows) {
    if (g.state === 'removed') continue;
    await nsgWrites.run(g.nsgId, async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await deps.network.deleteRule(g.nsgId, g.ruleName);
          break;
        } catch (err) {
          if (!(err instanceof TransientFailure) || attempt >= deps.settings.maxArmAttempts) throw err;
          await sleep(err.retryAfterInMs ?? backoff(deps.settings.armBackoffInMs, attempt));
        }
      }
    });
    await deps.audit.append({
      ...subject,
      actor,
      action: 'grant.rule-removed' satisfies AuditAction,
      requestId,
      nsg: g.nsgId,
      rule: g.ruleName,
      priority: g.priority,
    });
    await deps.grants.upsert({ ...g, state: 'removed', updatedAt: deps.clock.now().toISOString() });
    deps.log.info('grant.rule-removed', { requestId, nsgId: g.nsgId, rule: g.ruleName });
  }
  return rows;
}

/** Ends a grant that cannot be applied: remove whatever it wrote, then record why. */
export async function failGrant(
  deps: Deps,
  found: Versioned<AccessRequest>,
  reason: string,
  actor = 'system:grant',
): Promise<void> {
  await removeRules(deps, found.value.id, actor, grantSubject(found.value));
  await transition(
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
}

/**
 * `revokeGrant` (Service Bus jit-expirations): close the rules and mark the request expired. A message whose
 * expiry no longer matches the request (it was extended or revoked meanwhile) is ignored.
 */
export async function expireGrant(
  deps: Deps,
  message: ExpiryMessage,
  actor = 'system:expiry',
): Promise<void> {
  const found = await deps.requests.get(message.requestId);
  if (!found) return void deps.log.warn('expire.unknown-request', { requestId: message.requestId });
  const r = found.value;
  if (r.status !== 'active' || r.expiresAt !== message.expiresAt) {
    deps.log.info('expire.stale-message', { requestId: r.id, status: r.status });
    return;
  }
  const removed = await removeRules(deps, r.id, actor, grantSubject(r));
  await transition(
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
}
