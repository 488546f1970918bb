import { expireApproval } from './approvals';
import { decodeTime } from 'ulid';
import { baselineSpecOf, ruleMatchesSpec } from '../domain/baseline';
import type { BaselineRule } from '../domain/baseline';
import { findDrift, portInRange, ruleFingerprint } from '../domain/drift';
import { ArmCallBudgetSpent, CloseBlocked, ResourceNotFound } from '../domain/errors';
import { selectPolicy } from '../domain/policy';
import type { WatchedNsg } from '../domain/ports';
import { grantIdOfRuleName, isBaselineRuleName, sameRuleName } from '../domain/ruleNames';
import { scopesOf } from '../domain/resourceId';
import { isFinal } from '../domain/types';
import type { AccessRequest, Policy, SecurityRuleView, VmNetworkPath } from '../domain/types';
import type { AuditAction } from '../domain/auditActions';
import {
  auditBaseline,
  collect,
  coverVm,
  vmsInScope,
  dropBaselineRule,
  emptyBaselineReport,
  keepBaselineRule,
  releaseVm,
} from './baseline';
import { emitAll, signalsOfReconcile } from '../domain/signals';
import type { Deps } from './deps';
import { grantRuleSpec } from './applying';
import { expireGrant } from './expiry';
import { failGrant, removeRules } from './teardown';
import { signalCloseBlocked, signalNeutralised } from './closeAlerts';
import { announce } from './notifyChannels';
import { startScheduledRequest } from './lifecycle';
import { closeRule, withArmBudget, withArmPacing, withNsg, withNsgToClose } from './nsgWrites';
import { RateLimiterMemory, RateLimiterQueue } from 'rate-limiter-flexible';

const ACTOR = 'system:reconciler';

/** What a reconciler run needs: nearly everything, being the sweep that heals what every other step left. */
export type ReconcilePorts = Omit<Deps, 'leases' | 'enforcement' | 'reach'>;

/** What one reconciler run did, for its log line and for tests. */
export interface ReconcileReport {
  examined: number;
  closedExpired: number;
  redriven: number;
  failedStuck: number;
  forgotten: number;
  /** Pending requests past their approval deadline, closed as `approval-expired`. */
  approvalsExpired: number;
  /** Grants whose request had ended but whose rules were still recorded as present. */
  leftoversRemoved: number;
  nsgsSwept: number;
  /** NSGs that no longer exist, dropped from the watch list. */
  nsgsForgotten: number;
  orphansRemoved: number;
  baselinesRestored: number;
  driftFound: number;
  vmsRefreshed: number;
  vmsReleased: number;
  /** Rules of live grants whose last ARM operation had ended `Failed`, written again. */
  rulesRewritten: number;
  /** ARM calls made (a path resolution counts 3: VM, NIC, subnet). */
  armCalls: number;
  /** Set when the run stopped at its ARM call budget; `remaining` says what waits for the next run. */
  budgetSpent: boolean;
  /** The phase the budget ran out in (`requests`, `leftovers`, `nsgs`, `coverage`). */
  stoppedIn?: string;
  remaining: { nsgs: number; vms: number };
  errors: number;
}

export interface ReconcileOptions {
  /** Most open requests examined in one run, to bound its table reads. */
  maxRequests?: number;
  /** How long a request may sit in `submitted` or `approved` before it is handed on again. */
  staleAfterInSeconds?: number;
  /** Most ARM calls in this run; the configured JIT_RECONCILE_MAX_ARM_CALLS when unset. */
  maxArmCalls?: number;
  /** How old a VM's recorded network path may get before it is resolved again. */
  coverageRefreshInSeconds?: number;
  /** Most ARM calls a second the sweeps (NSGs, coverage) make in one subscription; {@link SWEEP_CALLS_PER_SECOND}. */
  sweepCallsPerSecond?: number;
}

/**
 * The sweeps' pace in one subscription: 5 ARM calls a second, a fifth of the 25 reads a second ARM refills per
 * subscription and principal (request limits page, docs/performance.md). Grants opening and closing in that
 * subscription use the same identity and therefore the same bucket: a sweep leaves them the other four fifths, so
 * an expiry never waits behind a sweep's reads. Closing overdue grants and leftovers (phases 1 and 2) is not paced.
 */
const SWEEP_CALLS_PER_SECOND = 5;

/**
 * The safety net (timer, and at start-up). In order of what matters most, within a budget of ARM calls:
 * 1. open requests: close grants past expiresAt + grace (a lost or failed expiry message, a crash), fail those
 *    that never went live before their deadline, hand on what stalled, close pending approvals past their
 *    deadline (a lost deadline message) and mail approvers never mailed;
 * 2. grants whose request ended but whose rules are still recorded as present (a clean-up that failed);
 * 3. the watched NSGs, least recently swept first, with at most half of what is left of the budget: remove orphan
 *    `jit-` rules no live grant owns, write again a live grant's rule ARM shows `Failed`, restore missing baseline
 *    deny rules, report others' allow rules that open a protected port to a broad source (drift);
 * 4. coverage: the VMs in every policy's scope, so new VMs get their baseline rules and NSGs get watched (a
 *    subscription's paths from its listings, not VM by VM);
 * 5. more of phase 3 with whatever coverage left.
 * Phases 3 to 5 are paced per subscription ({@link SWEEP_CALLS_PER_SECOND}); a large estate is swept over several
 * runs (docs/performance.md). Every action goes through the same idempotent use cases as the message flow, and NSG
 * writes take the NSG's lease, so two runs at once are safe.
 */
export async function reconcile(
  deps: ReconcilePorts,
  options: ReconcileOptions = {},
): Promise<ReconcileReport> {
  const report: ReconcileReport = {
    examined: 0,
    closedExpired: 0,
    redriven: 0,
    failedStuck: 0,
    forgotten: 0,
    approvalsExpired: 0,
    leftoversRemoved: 0,
    nsgsSwept: 0,
    nsgsForgotten: 0,
    orphansRemoved: 0,
    baselinesRestored: 0,
    driftFound: 0,
    vmsRefreshed: 0,
    vmsReleased: 0,
    rulesRewritten: 0,
    armCalls: 0,
    budgetSpent: false,
    remaining: { nsgs: 0, vms: 0 },
    errors: 0,
  };
  const runStartedAt = deps.clock.now().toISOString();
  const budget = { left: options.maxArmCalls ?? deps.settings.reconcileMaxArmCalls, used: 0 };
  const counted = withArmBudget(deps.network, budget);
  // What closes access runs first and unpaced; the sweeps are paced per subscription and share what is left.
  const urgent: ReconcilePorts = { ...deps, network: counted };
  const limiter = new RateLimiterQueue(
    new RateLimiterMemory({ points: options.sweepCallsPerSecond ?? SWEEP_CALLS_PER_SECOND, duration: 1 }),
  );
  const paced = withArmPacing(counted, limiter);
  // The NSG sweep may take half of what is left, so that coverage (new VMs under `enforce`) is never starved by a
  // large estate's NSGs; what coverage leaves goes back to the NSGs.
  type Phase = (d: ReconcilePorts, r: ReconcileReport, share: number) => Promise<void>;
  const phases: Array<[string, 'urgent' | 'half' | 'rest', Phase]> = [
    ['requests', 'urgent', (d, r) => sweepRequests(d, r, options)],
    ['leftovers', 'urgent', (d, r) => sweepLeftovers(d, r)],
    ['nsgs', 'half', (d, r, share) => sweepNsgs(d, r, runStartedAt, share)],
    ['coverage', 'rest', (d, r) => refreshCoverage(d, r, options)],
    ['nsgs', 'rest', (d, r, share) => sweepNsgs(d, r, runStartedAt, share)],
  ];
  for (const [name, kind, phase] of phases) {
    const share = kind === 'half' ? Math.ceil(budget.left / 2) : budget.left;
    let spent = kind !== 'urgent' && share <= 0;
    if (!spent) {
      const d: ReconcilePorts =
        kind === 'urgent' ? urgent : { ...deps, network: withArmBudget(paced, { left: share, used: 0 }) };
      try {
        await phase(d, report, share);
      } catch (err) {
        if (!(err instanceof ArmCallBudgetSpent)) {
          report.errors++;
          deps.log.error('reconcile.phase-failed', { phase: name, error: String(err) });
          continue;
        }
        spent = budget.left <= 0; // otherwise only the phase's share is spent
      }
    }
    if (spent) {
      report.budgetSpent = true;
      report.stoppedIn = name;
      deps.log.warn('reconcile.budget-spent', { phase: name, armCalls: budget.used, ...report.remaining });
      break;
    }
  }
  report.armCalls = budget.used;
  deps.log.info('reconcile.done', { ...report });
  emitAll(deps.signals, signalsOfReconcile(report));
  return report;
}

/** Phase 1: the open requests (the `open` index of JitRequests). */
async function sweepRequests(
  deps: ReconcilePorts,
  report: ReconcileReport,
  options: ReconcileOptions,
): Promise<void> {
  const max = options.maxRequests ?? 500;
  const staleMs = (options.staleAfterInSeconds ?? 120) * 1000;
  const now = deps.clock.now().getTime();
  const graceMs = deps.settings.expiryGraceInSeconds * 1000;

  for await (const id of deps.requests.listOpen()) {
    if (report.examined >= max) break;
    report.examined++;
    try {
      const found = await deps.requests.get(id);
      if (!found || isFinal(found.value.status)) {
        // A final request whose event is still in its row (a writer is appending it, or crashed doing so): the
        // read above appends it once the grace has passed, and clearing it takes the request off the list.
        if (found?.pendingAudit) continue;
        await deps.requests.forgetOpen(id);
        report.forgotten++;
        continue;
      }
      const r = found.value;
      const idle = now - Date.parse(r.updatedAt) > staleMs;
      const deadline = r.expiresAt ? Date.parse(r.expiresAt) : undefined;
      if (r.status === 'active' && deadline !== undefined && now > deadline + graceMs) {
        await expireGrant(deps, { requestId: r.id, expiresAt: r.expiresAt as string }, ACTOR);
        report.closedExpired++;
      } else if (r.status === 'approved' && deadline !== undefined && now > deadline + graceMs) {
        await failGrant(
          deps,
          found,
          'the grant could not be completed before its expiry; the reconciler removed what was written',
          'system:reconciler',
        );
        report.failedStuck++;
      } else if (r.status === 'approved' && idle) {
        await deps.queues.enqueueGrant(r.id);
        await redriven(deps, r, 'applyGrant');
        report.redriven++;
      } else if (r.status === 'scheduled' && r.startAt && now > Date.parse(r.startAt) + graceMs) {
        // Its start message never came (lost, or dead-lettered): start it as the message would have.
        await startScheduledRequest(deps, { requestId: r.id, startAt: r.startAt }, ACTOR);
        await redriven(deps, r, 'applyGrant (its start time passed with no start message)');
        report.redriven++;
      } else if (r.status === 'submitted' && idle) {
        await deps.queues.enqueueEvaluation(r.id);
        await redriven(deps, r, 'evaluateRequest');
        report.redriven++;
      } else if (r.status === 'pending-approval' && r.approvalDeadline) {
        if (now > Date.parse(r.approvalDeadline) + graceMs) {
          await expireApproval(deps, { requestId: r.id, deadline: r.approvalDeadline }, 'system:reconciler');
          report.approvalsExpired++;
        } else if (!r.approversNotifiedAt && idle) {
          await deps.queues.enqueueEvaluation(r.id);
          report.redriven++;
        }
      }
    } catch (err) {
      if (err instanceof ArmCallBudgetSpent) throw err;
      report.errors++;
      deps.log.error('reconcile.request-failed', { requestId: id, error: String(err) });
    }
  }
}

/** Phase 2: grants on the live index whose request has ended (a removal that failed after the state moved). */
async function sweepLeftovers(deps: ReconcilePorts, report: ReconcileReport): Promise<void> {
  for await (const id of deps.grants.listLive()) {
    try {
      const rows = await deps.grants.list(id);
      const found = await deps.requests.get(id);
      if (found && !isFinal(found.value.status)) continue; // phase 1 owns requests still open
      if (rows.some((g) => g.state !== 'removed')) {
        await removeRules(deps, id);
        report.leftoversRemoved++;
        deps.log.warn('reconcile.leftovers-removed', { requestId: id, status: found?.value.status });
      } else {
        await deps.grants.clearLive(id);
      }
    } catch (err) {
      if (err instanceof ArmCallBudgetSpent) throw err;
      report.errors++;
      deps.log.error('reconcile.leftover-failed', { requestId: id, error: String(err) });
    }
  }
}

/**
 * Phase 3: the watched NSGs not yet swept in this run, least recently swept first, so a run cut short by its budget
 * is resumed fairly by the next; among those this run can reach, one subscription after another in turn, so the
 * per-subscription pace does not hold the sweep up behind one subscription.
 */
async function sweepNsgs(
  deps: ReconcilePorts,
  report: ReconcileReport,
  runStartedAt: string,
  reach: number,
): Promise<void> {
  const due = (await collect(deps.nsgs.listWatchedNsgs()))
    .filter((n) => (n.reconciledAt ?? '') < runStartedAt)
    .sort((a, b) => (a.reconciledAt ?? '').localeCompare(b.reconciledAt ?? ''));
  // Each NSG costs at least one call: no more than `reach` of them can be swept now.
  const nsgs = [...inTurnBySubscription(due.slice(0, reach)), ...due.slice(reach)];
  report.remaining.nsgs = nsgs.length;
  for (const [i, nsg] of nsgs.entries()) {
    try {
      await sweepNsg(deps, nsg, report);
      report.remaining.nsgs = nsgs.length - i - 1;
    } catch (err) {
      if (err instanceof ArmCallBudgetSpent) {
        report.remaining.nsgs = nsgs.length - i;
        throw err;
      }
      report.errors++;
      deps.log.error('reconcile.nsg-failed', { nsgId: nsg.nsgId, error: String(err) });
    }
  }
}

async function sweepNsg(deps: ReconcilePorts, nsg: WatchedNsg, report: ReconcileReport): Promise<void> {
  let rules: SecurityRuleView[];
  try {
    rules = await deps.network.listRules(nsg.nsgId);
  } catch (err) {
    if (!(err instanceof ResourceNotFound)) throw err;
    await deps.nsgs.forgetNsg(nsg.nsgId);
    report.nsgsForgotten++;
    deps.log.info('reconcile.nsg-gone', { nsgId: nsg.nsgId });
    return;
  }
  for (const rule of rules) await removeIfOrphan(deps, nsg.nsgId, rule, report);
  for (const rule of rules)
    if (rule.provisioningState === 'Failed') await rewriteFailedGrantRule(deps, nsg.nsgId, rule, report);

  const desired = await deps.nsgs.listBaselinesInNsg(nsg.nsgId);
  for (const b of desired.filter((d) => d.removing))
    await dropBaselineRule(deps, b, ACTOR, emptyBaselineReport());
  // One shared rule per name: compared with what all its VMs want, restored once.
  const groups = new Map<string, BaselineRule[]>();
  for (const b of desired.filter((d) => !d.removing)) {
    const k = b.ruleName.toLowerCase();
    groups.set(k, [...(groups.get(k) ?? []), b]);
  }
  for (const members of groups.values()) {
    const [b] = members as [BaselineRule, ...BaselineRule[]];
    const present = rules.find((r) => sameRuleName(r.name, b.ruleName));
    const band = deps.settings.baselineBand;
    // A baseline rule ARM shows `Failed` (or still `Updating`) is not one to count on: keepBaselineRule writes it.
    if (
      present &&
      present.provisioningState === 'Succeeded' &&
      present.priority >= band.min &&
      present.priority <= band.max &&
      ruleMatchesSpec(present, baselineSpecOf(members, present.priority))
    )
      continue;
    if (await keepBaselineRule(deps, b)) {
      report.baselinesRestored++;
      const destinations = [...new Set(members.flatMap((m) => m.destinations))].sort();
      await auditBaseline(deps, ACTOR, 'baseline.restored', { ...b, destinations });
    }
  }
  for (const r of rules) {
    // Ours by name but not on record: left in place, since deleting a deny rule can only open a port.
    if (isBaselineRuleName(r.name) && !desired.some((b) => sameRuleName(b.ruleName, r.name)))
      deps.log.warn('reconcile.unknown-baseline-rule', { nsgId: nsg.nsgId, rule: r.name });
  }

  const surface = {
    ports: [...new Set([...nsg.ports, ...desired.flatMap((b) => b.ports)])],
    addresses: [...new Set([...nsg.addresses, ...desired.flatMap((b) => b.destinations)])],
  };
  const baselineTop = Math.min(
    ...desired.map((b) => rules.find((r) => sameRuleName(r.name, b.ruleName))?.priority ?? Infinity),
  );
  const drift = findDrift(rules, surface);
  for (const r of drift)
    deps.log.warn('reconcile.drift', {
      nsgId: nsg.nsgId,
      rule: r.name,
      detail: driftDetail(nsg.nsgId, r, baselineTop),
    });
  // Under the NSG's lock with a fresh read of what was reported, so two runs at once audit a drift once.
  await withNsg(deps, nsg.nsgId, async () => {
    const reported = (await deps.nsgs.getWatchedNsg(nsg.nsgId))?.driftReported ?? [];
    for (const r of drift) {
      if (reported.includes(ruleFingerprint(r))) continue;
      report.driftFound++;
      const detail = driftDetail(nsg.nsgId, r, baselineTop);
      deps.signals.event('jit.drift.found', { nsg: nsg.nsgId, rule: r.name, detail });
      await announce(deps, {
        kind: 'drift.found',
        actor: ACTOR,
        drift: { nsg: nsg.nsgId, rule: r.name, detail },
      });
      await deps.audit.append({
        actor: ACTOR,
        action: 'drift.detected',
        ports: surface.ports.filter((p) => r.destinationPortRanges.some((range) => portInRange(p, range))),
        sourcePrefix: r.sourceAddressPrefixes.join(','),
        detail,
      });
    }
    await deps.nsgs.markSwept(nsg.nsgId, deps.clock.now().toISOString(), drift.map(ruleFingerprint));
  });
  report.nsgsSwept++;
}

function driftDetail(nsgId: string, r: SecurityRuleView, baselineTop: number): string {
  return (
    `${r.name} in ${nsgId} allows ${r.protocol} ${r.destinationPortRanges.join(',')} from ` +
    `${r.sourceAddressPrefixes.join(',')} to ${r.destinationAddressPrefixes.join(',')} at priority ${r.priority}` +
    (r.priority < baselineTop ? ', above the JIT baseline deny rule' : '')
  );
}

/**
 * Removes a `jit-<id>` rule that no live grant owns: no row for it in this NSG, its row says removed, or its
 * request has ended or does not exist. Left alone within the grace period: a rule of a request created that
 * recently (its writer may be between steps), or of one that ended that recently (its clean-up is running).
 * Rules of others (any other name) are never touched.
 */
async function removeIfOrphan(
  deps: ReconcilePorts,
  nsgId: string,
  rule: SecurityRuleView,
  report: ReconcileReport,
): Promise<void> {
  const requestId = grantIdOfRuleName(rule.name);
  if (!requestId) return;
  const now = deps.clock.now().getTime();
  const bornAt = ulidTime(requestId);
  if (bornAt !== undefined && now - bornAt < deps.settings.expiryGraceInSeconds * 1000) return;
  const row = await deps.grants.get(requestId, nsgId);
  // Turned to Deny because a lock refuses its deletion: the leftovers phase retries the delete and reports it.
  if (row?.state === 'neutralised') return;
  if (row && row.state !== 'removed') {
    const request = await deps.requests.get(requestId);
    if (request && !isFinal(request.value.status)) return;
    // Ended a moment ago: its own clean-up is running (and the leftovers phase finishes it if that dies).
    const endedAt = request && Date.parse(request.value.endedAt ?? request.value.updatedAt);
    if (endedAt && now - endedAt < deps.settings.expiryGraceInSeconds * 1000) return;
  }
  const outcome = await withNsgToClose(deps, nsgId, async () => {
    // Another run may have removed it meanwhile: then it is that run's to report.
    if (!(await deps.network.getRule(nsgId, rule.name))) return undefined;
    // A lock that refuses the delete gets the rule turned to Deny instead (and CloseBlocked where it refuses that).
    return closeRule(deps, nsgId, rule.name, { requestId });
  }).catch(async (err: unknown) => {
    // A rule still letting traffic in that nothing can remove: the operator's alert, then the NSG's error count.
    if (err instanceof CloseBlocked)
      await signalCloseBlocked(deps, { requestId, nsg: nsgId, rule: rule.name }, err.message);
    throw err;
  });
  const deleted = outcome !== undefined;
  if (outcome?.closed === 'neutralised') {
    deps.log.error('grant.rule-neutralised', {
      requestId,
      nsgId,
      rule: rule.name,
      refusedBy: outcome.refusedBy,
    });
    await signalNeutralised(deps, { requestId, nsg: nsgId, rule: rule.name }, outcome.refusedBy);
    if (row)
      await deps.grants.upsert({ ...row, state: 'neutralised', updatedAt: deps.clock.now().toISOString() });
    // Audited when it is turned; later runs only retry the delete (and log it).
    if (rule.access === 'Deny') return;
    await deps.audit.append({
      actor: ACTOR,
      action: 'grant.rule-neutralised',
      requestId,
      nsg: nsgId,
      rule: rule.name,
      priority: rule.priority,
      detail: `${outcome.refusedBy} refuses deleting ${rule.name}, which no live grant owns; it was turned to Deny and lets nothing in`,
    });
    return;
  }
  if (row && row.state !== 'removed') {
    await deps.grants.upsert({ ...row, state: 'removed', updatedAt: deps.clock.now().toISOString() });
  }
  if (!deleted) return;
  report.orphansRemoved++;
  const detail =
    `removed ${rule.name} from ${nsgId} (allow ${rule.protocol} ${rule.destinationPortRanges.join(',')} from ` +
    `${rule.sourceAddressPrefixes.join(',')}, priority ${rule.priority}): no live grant owns it`;
  deps.log.warn('reconcile.orphan-removed', { requestId, nsgId, rule: rule.name });
  await deps.audit.append({
    actor: ACTOR,
    action: 'reconcile.orphan-removed',
    requestId,
    sourcePrefix: rule.sourceAddressPrefixes.join(','),
    detail,
  });
}

/**
 * Writes again the rule of a live grant whose last ARM operation ended `Failed`: ARM may or may not be enforcing
 * such a rule, and a write is what recovers it (https://learn.microsoft.com/azure/networking/troubleshoot-failed-state).
 * The rule is rebuilt from the request, at the priority it holds. A grant's rule that is not live is the orphan
 * sweep's (which has just removed it), and one still being applied is its writer's.
 */
async function rewriteFailedGrantRule(
  deps: ReconcilePorts,
  nsgId: string,
  rule: SecurityRuleView,
  report: ReconcileReport,
): Promise<void> {
  const requestId = grantIdOfRuleName(rule.name);
  if (!requestId) return;
  const [row, found] = await Promise.all([deps.grants.get(requestId, nsgId), deps.requests.get(requestId)]);
  if (!row || row.state === 'removed' || found?.value.status !== 'active') return;
  const request = found.value;
  const rewritten = await withNsg(deps, nsgId, async () => {
    // Under the lock, from a fresh read: another run or the expiry may have dealt with it meanwhile.
    const now = await deps.network.getRule(nsgId, rule.name);
    if (now?.provisioningState !== 'Failed') return false;
    await deps.network.putRule(nsgId, grantRuleSpec(request, row.destinationAddresses, now.priority));
    return true;
  });
  if (!rewritten) return;
  report.rulesRewritten++;
  deps.log.warn('reconcile.failed-rule-rewritten', { requestId, nsgId, rule: rule.name });
  await deps.audit.append({
    actor: ACTOR,
    action: 'grant.rule-applied' satisfies AuditAction,
    requestId,
    vm: request.vmId,
    ports: request.ports,
    sourcePrefix: request.sourcePrefix,
    nsg: nsgId,
    rule: rule.name,
    priority: rule.priority,
    detail: 'written again: ARM showed its last operation as Failed',
  });
}

/**
 * Phase 4: which VMs each policy covers now. VMs new to a policy (or whose record is old) have their path
 * resolved, their NSGs watched and, under `enforce`, their baseline rules written; VMs no policy covers any more
 * are released. Releasing needs the whole picture, so it happens only when every policy's VMs were listed.
 */
async function refreshCoverage(
  deps: ReconcilePorts,
  report: ReconcileReport,
  options: ReconcileOptions,
): Promise<void> {
  const policies = await collect(deps.policies.list());
  const wanted = new Map<string, { vmId: string; policy: Policy }>();
  let complete = true;
  for (const policy of policies) {
    try {
      for (const vmId of await vmsInScope(deps, policy.scope)) {
        if (selectPolicy(scopesOf(vmId), policies)?.scope === policy.scope)
          wanted.set(vmId.toLowerCase(), { vmId, policy });
      }
    } catch (err) {
      if (err instanceof ArmCallBudgetSpent) throw err;
      // One unreadable scope must not hold up the others; but without it, releasing would be a guess.
      complete = false;
      report.errors++;
      deps.log.error('reconcile.scope-failed', { scope: policy.scope, error: String(err) });
    }
  }
  const known = new Map((await collect(deps.nsgs.listCoverage())).map((c) => [c.vmId, c]));
  const now = deps.clock.now().getTime();
  const refreshMs = (options.coverageRefreshInSeconds ?? 3600) * 1000;
  const work = [...wanted.entries()]
    .map(([key, w]) => ({ ...w, record: known.get(key) }))
    .filter(({ policy, record }) => {
      if (!record) return true;
      const ports = policy.ports.map((p) => p.port).join(',');
      return (
        record.policyScope !== policy.scope ||
        record.enforce !== policy.enforce ||
        record.ports.join(',') !== ports ||
        now - Date.parse(record.refreshedAt) > refreshMs
      );
    })
    // VMs never seen first (a new VM under an enforcing policy is exposed until covered), then the oldest.
    .sort((a, b) => (a.record?.refreshedAt ?? '').localeCompare(b.record?.refreshedAt ?? ''));
  const baseline = emptyBaselineReport();
  // One policy scope at a time, in the order its first VM comes in `work`. Where two or more of its VMs are due,
  // one set of listings of the scope (VMs, NICs, virtual networks: three reads and their pages) resolves their
  // paths, instead of three reads per VM: 10,000 VMs under 20 subscription-wide policies cost some 60 reads, not
  // 30,000. A VM the listings leave out (its NIC or subnet in another resource group) is resolved on its own.
  const byScope = new Map<string, typeof work>();
  for (const w of work) byScope.set(w.policy.scope, [...(byScope.get(w.policy.scope) ?? []), w]);
  let done = 0;
  for (const [scope, vms] of byScope) {
    try {
      const paths = vms.length >= 2 ? await pathsIn(deps, scope) : new Map<string, VmNetworkPath>();
      for (const w of vms) {
        try {
          await coverVm(deps, w.vmId, w.policy, ACTOR, baseline, paths.get(w.vmId.toLowerCase()));
          report.vmsRefreshed++;
        } catch (err) {
          if (err instanceof ArmCallBudgetSpent) throw err;
          report.errors++;
          deps.log.error('reconcile.coverage-failed', { vm: w.vmId, error: String(err) });
        }
        done++;
      }
    } catch (err) {
      if (err instanceof ArmCallBudgetSpent) report.remaining.vms = work.length - done;
      throw err;
    }
  }
  if (!complete) return;
  for (const [key, record] of known) {
    if (wanted.has(key)) continue;
    await releaseVm(deps, record, ACTOR, baseline);
    report.vmsReleased++;
  }
}

/**
 * The paths of the VMs in a policy's scope from its listings, keyed by lower-cased VM id; empty for a VM scope, or
 * when the listings cannot be read (the identity may read the VMs but not list the scope), and each VM is then
 * resolved on its own.
 */
async function pathsIn(deps: ReconcilePorts, scope: string): Promise<Map<string, VmNetworkPath>> {
  if (isVmScope(scope)) return new Map();
  try {
    const { paths } = await deps.network.resolvePathsInScope(scope);
    return new Map(paths.map((p) => [p.vmId.toLowerCase(), p]));
  } catch (err) {
    if (err instanceof ArmCallBudgetSpent) throw err;
    deps.log.warn('reconcile.scope-paths-unread', { scope, error: String(err) });
    return new Map();
  }
}

function isVmScope(scope: string): boolean {
  return /\/providers\/microsoft\.compute\/virtualmachines\//i.test(scope);
}

/** The NSGs one subscription after another in turn, each subscription's in the order given. */
function inTurnBySubscription(nsgs: readonly WatchedNsg[]): WatchedNsg[] {
  const queues = new Map<string, WatchedNsg[]>();
  for (const n of nsgs) {
    const subscription = subscriptionOf(n.nsgId);
    const queue = queues.get(subscription) ?? [];
    queue.push(n);
    queues.set(subscription, queue);
  }
  const out: WatchedNsg[] = [];
  for (let round = 0; out.length < nsgs.length; round++)
    for (const queue of queues.values()) {
      const n = queue[round];
      if (n) out.push(n);
    }
  return out;
}

function subscriptionOf(id: string): string {
  return /^\/subscriptions\/([^/]+)/i.exec(id)?.[1]?.toLowerCase() ?? '';
}

/** When a ULID was made, or undefined for anything that is not one. */
function ulidTime(id: string): number | undefined {
  try {
    return decodeTime(id);
  } catch {
    return undefined;
  }
}

function redriven(deps: ReconcilePorts, r: AccessRequest, step: string): Promise<void> {
  return deps.audit.append({
    actor: 'system:reconciler',
    action: 'reconcile.redriven' satisfies AuditAction,
    requestId: r.id,
    vm: r.vmId,
    ports: r.ports,
    sourcePrefix: r.sourcePrefix,
    detail: `${r.status} since ${r.updatedAt}: handed on to ${step} again`,
  });
}
