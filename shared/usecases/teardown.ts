/**
 * Closing access: removing every rule a grant wrote (or neutralising it where a lock refuses the delete), and
 * ending a grant that cannot be applied.
 */
import { CloseBlocked } from '../domain/errors';
import type { AuditAction } from '../domain/auditActions';
import type { StoredRequest } from '../domain/ports';
import { isFinal } from '../domain/types';
import type { AuditEvent, GrantRule } from '../domain/types';
import { writeAudited } from './auditOutbox';
import { signalCloseBlocked, signalNeutralised } from './closeAlerts';
import type { Deps } from './deps';
import { notifyRequester } from './notify';
import { closeRule, withNsgToClose } from './nsgWrites';
import type { CloseOutcome } from './nsgWrites';
import { grantSubject, transition } from './transition';
import type { NsgWritePorts } from './deps';
import type { NotifyPorts } from './notify';
import type { TransitionPorts } from './transition';

/** What closing a grant's rules and ending a grant need. */
export type TeardownPorts = TransitionPorts & NotifyPorts & NsgWritePorts & Pick<Deps, 'grants'>;

/**
 * Deletes every rule this grant wrote, exactly those (by name, in the NSGs its rows name), retrying what is
 * transient. A rule already gone is fine; another grant's rule for the same VM and port is never touched.
 * The NSGs are worked on at once (each still one writer at a time): a grant's port stays open until every rule
 * in its path is gone, and one after another doubled that time. Throws if ARM keeps refusing — after every NSG
 * has had its try, so a retry finds less to do; the rows that are not `removed` and the live index keep it on
 * the reconciler's list until it succeeds.
 *
 * A management lock that refuses the delete does not leave the hole open: the rule is turned to `Deny` where the
 * lock allows a write (`CanNotDelete`), its row says `neutralised`, an audit event, an error log line
 * (`grant.rule-neutralised`) and the operator's alert signal (`jit.grant.neutralised`) say so, and the grant stays
 * on the live index so the reconciler retries the delete until the lock is lifted; the grant counts as closed.
 * Where nothing can be written (`ReadOnly`), the row, the request's statusReason, the audit trail, an error log line
 * (`grant.close-blocked`) and the operator's alert signal (`jit.grant.close-blocked`) say that access is still
 * open, and this throws `CloseBlocked`, so nothing marks the grant closed and every retry tries again.
 */
export async function removeRules(
  deps: TeardownPorts,
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
  deps: TeardownPorts,
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
    if (err instanceof CloseBlocked)
      await signalCloseBlocked(
        deps,
        { requestId, vm: subject.vm, nsg: g.nsgId, rule: g.ruleName },
        err.message,
      );
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
        detail: `${outcome.refusedBy} refuses deleting ${g.ruleName}; it was turned to Deny and lets nothing in; the delete is retried until it is allowed`,
      });
      await deps.grants.upsert({ ...withoutCloseBlocked(g), state: 'neutralised', updatedAt: now() });
    }
    // Alertable: JIT keeps a Deny rule it could not delete (it counts against the NSG's limits) until someone acts.
    deps.log.error('grant.rule-neutralised', {
      requestId,
      nsgId: g.nsgId,
      rule: g.ruleName,
      refusedBy: outcome.refusedBy,
    });
    await signalNeutralised(
      deps,
      { requestId, vm: subject.vm, nsg: g.nsgId, rule: g.ruleName },
      outcome.refusedBy,
    );
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
async function recordCloseBlocked(deps: TeardownPorts, requestId: string, reason: string): Promise<void> {
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
  deps: TeardownPorts,
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
