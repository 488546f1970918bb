/**
 * Enforcement: for a policy with `enforce: true`, JIT keeps a baseline deny rule for the policy's ports in every
 * NSG in front of every VM the policy covers (as Defender for Cloud's JIT does), so the ports stay closed except
 * while a grant's allow rule, which sits above it, is in place. The desired rules are recorded in `JitNsgs`
 * before they are written, so the reconciler restores any that go missing.
 */
import type { AuditAction } from '../domain/auditActions';
import { baselineSpecOf, planBaseline } from '../domain/baseline';
import { sameRuleName } from '../domain/ruleNames';
import type { BaselineRule, VmCoverage } from '../domain/baseline';
import { ArmCallBudgetSpent, ResourceNotFound } from '../domain/errors';
import type { PolicyEnforcement } from '../domain/ports';
import { selectPolicy } from '../domain/policy';
import { scopesOf } from '../domain/resourceId';
import type { Policy, VmNetworkPath } from '../domain/types';
import type { Deps } from './deps';
import { deleteRuleWithRetry, putRuleWithRetry, withArmBudget, withNsg } from './nsgWrites';
import type { NsgWritePorts } from './deps';

/** What keeping baseline deny rules needs. */
export type BaselinePorts = NsgWritePorts & Pick<Deps, 'audit' | 'clock' | 'policies'>;

/** What an enforcement call did. */
export interface BaselineReport {
  /** VMs the policy covers (those a more specific policy decides for are not its own). */
  vmsCovered: number;
  /** VMs it covered before and no longer does (deleted, moved, or now under a more specific policy). */
  vmsReleased: number;
  rulesWritten: number;
  rulesRemoved: number;
  /** VMs left out, and why (not found, no NSG in front of them). */
  skipped: string[];
}

export const emptyBaselineReport = (): BaselineReport => ({
  vmsCovered: 0,
  vmsReleased: 0,
  rulesWritten: 0,
  rulesRemoved: 0,
  skipped: [],
});

/**
 * The `enforce` flag's effect for the policy use cases (the PolicyEnforcement port), called after a policy change
 * is stored. Quick by design: it does at most `maxArmCalls` of the work at once (a resource group of a dozen VMs
 * or so) and leaves the rest to the reconciler, which covers VMs new to an enforcing policy first and releases
 * those a policy stopped enforcing on, so a large scope converges over a few runs.
 */
export function baselineEnforcement(deps: () => BaselinePorts, maxArmCalls = 60): PolicyEnforcement {
  const bounded = async (work: (d: BaselinePorts) => Promise<BaselineReport>, scope: string) => {
    const d = deps();
    try {
      await work({ ...d, network: withArmBudget(d.network, { left: maxArmCalls, used: 0 }) });
    } catch (err) {
      if (!(err instanceof ArmCallBudgetSpent)) throw err;
      d.log.info('baseline.continued-by-reconciler', { policy: scope, armCalls: maxArmCalls });
    }
  };
  return {
    sync: (policy) => bounded((d) => ensureBaselineDeny(d, policy), policy.scope),
    remove: (policy) => bounded((d) => removeBaselineDeny(d, policy.scope), policy.scope),
  };
}

/**
 * Makes the NSGs of every VM the policy covers hold its baseline deny rules, and releases VMs it no longer
 * covers. Called when a policy is applied; the reconciler calls the same steps for VMs that appear later.
 * A policy without `enforce` removes what an earlier version of it put in place.
 */
export async function ensureBaselineDeny(
  deps: BaselinePorts,
  policy: Policy,
  actor = 'system:baseline',
): Promise<BaselineReport> {
  if (!policy.enforce) return removeBaselineDeny(deps, policy.scope, actor);
  // The caller may call this before or after storing the policy: decide with this version of it.
  const policies = [...(await collect(deps.policies.list())).filter((p) => p.scope !== policy.scope), policy];
  const report = emptyBaselineReport();
  const covered = new Set<string>();
  for (const vmId of await vmsInScope(deps, policy.scope)) {
    if (selectPolicy(scopesOf(vmId), policies)?.scope !== policy.scope) continue;
    covered.add(vmId.toLowerCase());
    await coverVm(deps, vmId, policy, actor, report);
  }
  for (const c of await collect(deps.nsgs.listCoverage())) {
    if (c.policyScope === policy.scope && !covered.has(c.vmId)) await releaseVm(deps, c, actor, report);
  }
  deps.log.info('baseline.ensured', { policy: policy.scope, ...report });
  return report;
}

/**
 * Takes away every baseline rule a policy put in place (the policy was removed, or no longer enforces). Only
 * JIT's own baseline rules are deleted. A VM that a broader enforcing policy now covers gets that policy's
 * rules from the next reconciler run.
 */
export async function removeBaselineDeny(
  deps: BaselinePorts,
  policyScope: string,
  actor = 'system:baseline',
): Promise<BaselineReport> {
  const scope = policyScope.trim().toLowerCase();
  const report = emptyBaselineReport();
  for (const c of await collect(deps.nsgs.listCoverage())) {
    if (c.policyScope === scope) await releaseVm(deps, c, actor, report);
  }
  deps.log.info('baseline.removed', { policy: scope, ...report });
  return report;
}

/**
 * Records that the policy covers the VM and the NSGs in front of it (the reconciler sweeps those), then makes
 * them hold exactly the baseline rules the policy asks for: writes what is missing, takes away what is stale.
 * `resolved` is the VM's path when the caller already read it (the reconciler reads a subscription's at once).
 */
export async function coverVm(
  deps: BaselinePorts,
  vmId: string,
  policy: Policy,
  actor: string,
  report: BaselineReport,
  resolved?: VmNetworkPath,
): Promise<void> {
  let path = resolved;
  try {
    path ??= await deps.network.resolvePath(vmId);
  } catch (err) {
    if (!(err instanceof ResourceNotFound)) throw err;
    report.skipped.push(`${vmId}: not found`);
    return;
  }
  report.vmsCovered++;
  const ports = policy.ports.map((p) => p.port);
  // Coverage first: whatever is recorded below is then always reachable from a coverage row.
  await deps.nsgs.upsertCoverage({
    vmId: vmId.toLowerCase(),
    policyScope: policy.scope,
    enforce: policy.enforce,
    ports,
    guards: path.guards,
    refreshedAt: deps.clock.now().toISOString(),
  });
  for (const g of path.guards) await deps.nsgs.watchNsg(g.nsgId, { ports, addresses: g.addresses });
  if (policy.enforce && path.guards.length === 0) {
    report.skipped.push(`${vmId}: no network security group in front of it`);
    deps.log.warn('baseline.no-nsg', { vm: vmId, policy: policy.scope });
  }
  const desired = planBaseline(path, policy);
  const previous = await deps.nsgs.listBaselinesOfVm(vmId);
  for (const b of desired) {
    // Desired state first: if we stop here, the reconciler writes the rule.
    await deps.nsgs.upsertBaseline(b);
    if (await keepBaselineRule(deps, b)) {
      report.rulesWritten++;
      await auditBaseline(deps, actor, 'baseline.applied', b);
    }
  }
  for (const p of previous) {
    if (!desired.some((d) => d.nsgId === p.nsgId && d.ruleName === p.ruleName)) {
      await dropBaselineRule(deps, p, actor, report);
    }
  }
}

/** Takes away the VM's baseline rules and forgets that a policy covers it. */
export async function releaseVm(
  deps: BaselinePorts,
  coverage: VmCoverage,
  actor: string,
  report: BaselineReport,
): Promise<void> {
  for (const b of await deps.nsgs.listBaselinesOfVm(coverage.vmId))
    await dropBaselineRule(deps, b, actor, report);
  await deps.nsgs.deleteCoverage(coverage.vmId);
  report.vmsReleased++;
}

/**
 * Makes the NSG hold `b`'s shared rule as all its members want it: the members are read under the NSG's lock, so
 * two VMs covered at once both end up in the rule. Returns whether it had to write it.
 */
export async function keepBaselineRule(deps: BaselinePorts, b: BaselineRule): Promise<boolean> {
  return withNsg(deps, b.nsgId, async () => {
    const members = await membersOf(deps, b.nsgId, b.ruleName);
    if (members.length === 0) return false; // released meanwhile: its remover takes the rule away
    return putSharedRule(deps, b, members);
  });
}

/** Writes `b`'s shared rule as `members` want it (call inside `withNsg`). Returns whether it had to. */
async function putSharedRule(
  deps: BaselinePorts,
  b: BaselineRule,
  members: BaselineRule[],
): Promise<boolean> {
  const { written } = await putRuleWithRetry(deps, {
    nsgId: b.nsgId,
    name: b.ruleName,
    band: deps.settings.baselineBand,
    specAt: (priority) => baselineSpecOf(members, priority),
    logFields: { vm: b.vmId, policy: b.policyScope },
  });
  return written;
}

/** The VMs (not being removed) that share a baseline rule in an NSG. */
async function membersOf(deps: BaselinePorts, nsgId: string, ruleName: string): Promise<BaselineRule[]> {
  return (await deps.nsgs.listBaselinesInNsg(nsgId)).filter(
    (m) => sameRuleName(m.ruleName, ruleName) && !m.removing,
  );
}

/**
 * Takes one VM's share out of a baseline rule: the rule is rewritten without its addresses, or deleted when no VM is
 * left in it. Marked `removing` first, so that a failure part-way is finished by the reconciler rather than undone.
 */
export async function dropBaselineRule(
  deps: BaselinePorts,
  b: BaselineRule,
  actor: string,
  report: BaselineReport,
): Promise<void> {
  if (!b.removing) await deps.nsgs.upsertBaseline({ ...b, removing: true });
  const outcome = await withNsg(deps, b.nsgId, async () => {
    const others = await membersOf(deps, b.nsgId, b.ruleName);
    if (others.length > 0) return (await putSharedRule(deps, b, others)) ? 'narrowed' : 'kept';
    if (!(await deps.network.getRule(b.nsgId, b.ruleName))) return 'gone';
    await deleteRuleWithRetry(deps, b.nsgId, b.ruleName, { vm: b.vmId });
    return 'deleted';
  });
  await deps.nsgs.deleteBaseline(b);
  if (outcome === 'deleted') {
    report.rulesRemoved++;
    await auditBaseline(deps, actor, 'baseline.removed', b);
  } else if (outcome === 'narrowed') {
    report.rulesWritten++;
    await auditBaseline(deps, actor, 'baseline.removed', b, 'its addresses taken out of the shared rule');
  }
}

export async function auditBaseline(
  deps: BaselinePorts,
  actor: string,
  action: AuditAction,
  b: BaselineRule,
  note?: string,
): Promise<void> {
  await deps.audit.append({
    actor,
    action,
    vm: b.vmId,
    ports: b.ports,
    sourcePrefix: '*',
    detail:
      `${b.ruleName} (deny ${b.protocol} ${b.ports.join(',')} to ${b.destinations.join(', ')}) in ${b.nsgId}, ` +
      `policy ${b.policyScope}${note ? `: ${note}` : ''}`,
  });
  deps.log.info(action, { vm: b.vmId, nsgId: b.nsgId, rule: b.ruleName, policy: b.policyScope });
}

/** The VMs in a policy's scope; none when the scope itself is gone (a deleted resource group or subscription). */
export async function vmsInScope(deps: BaselinePorts, scope: string): Promise<string[]> {
  try {
    return await collect(deps.network.listVms(scope));
  } catch (err) {
    if (err instanceof ResourceNotFound) return [];
    throw err;
  }
}

export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}
