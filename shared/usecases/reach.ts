/**
 * Whether the deployment can reach the network of the VMs a policy covers: read each VM's path (VM, NICs, subnets),
 * and read, write and delete rules on every NSG in it. A VM whose VNet or NSG lives outside the scopes the
 * deployment's role covers (a hub resource group) would otherwise be found only when someone asks for access.
 * Used by `jit policy apply` and `jit policy explain` to warn; it never refuses anything itself.
 */
import { NetworkPermissionMissing } from '../domain/errors';
import { NSG_FLUSH_ACTIONS, NSG_RULE_ACTIONS, missingActions } from '../domain/permissions';
import type { NetworkReachCheck } from '../domain/ports';
import type { Policy } from '../domain/types';
import { vmsInScope } from './baseline';
import type { BaselinePorts } from './baseline';

/** What checking the deployment's reach needs. */
export type ReachPorts = BaselinePorts;

/** How many VMs of a scope are looked at (each costs about five ARM reads); the rest is said to be unchecked. */
const REACH_SAMPLE = 20;

/** The NetworkReachCheck of the policy use cases, over these dependencies. */
export function networkReach(deps: () => ReachPorts): NetworkReachCheck {
  return {
    policy: (policy) => checkReach(deps(), policy),
    vm: (vmId, policy) => checkVms(deps(), [vmId], policy.cutSessions === true),
  };
}

/** Warnings, one line each, about what the deployment cannot do for the VMs in `policy`'s scope. */
async function checkReach(deps: ReachPorts, policy: Policy, sample = REACH_SAMPLE): Promise<string[]> {
  const warnings: string[] = [];
  let vms: string[];
  try {
    vms = await vmsInScope(deps, policy.scope);
  } catch (err) {
    return [`${policy.scope}: cannot list its VMs: ${(err as Error).message}`];
  }
  if (vms.length > sample) {
    warnings.push(`${policy.scope}: checked the network of ${sample} of its ${vms.length} VMs only`);
  }
  return [...warnings, ...(await checkVms(deps, vms.slice(0, sample), policy.cutSessions === true))];
}

/** The same for given VMs (explain asks about one). */
async function checkVms(deps: ReachPorts, vmIds: readonly string[], cutSessions: boolean): Promise<string[]> {
  const warnings: string[] = [];
  const nsgs = new Map<string, string>();
  for (const vmId of vmIds) {
    try {
      const path = await deps.network.resolvePath(vmId);
      for (const id of path.nsgIds) if (!nsgs.has(id)) nsgs.set(id, vmId);
    } catch (err) {
      if (err instanceof NetworkPermissionMissing) warnings.push(`${vmId}: ${err.message}`);
    }
  }
  const wanted = [...NSG_RULE_ACTIONS, ...(cutSessions ? NSG_FLUSH_ACTIONS : [])];
  for (const [nsgId, vmId] of nsgs) {
    try {
      const missing = missingActions(await deps.network.listPermissions(nsgId), wanted);
      if (missing.length) {
        warnings.push(
          `${nsgId} (in front of ${vmId}): the deployment's identity lacks ${missing.join(', ')}; its role must cover that scope (see docs/deploy.md)`,
        );
      }
    } catch (err) {
      if (err instanceof NetworkPermissionMissing)
        warnings.push(`${nsgId} (in front of ${vmId}): ${err.message}`);
    }
  }
  return warnings;
}
