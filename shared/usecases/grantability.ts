/**
 * What ARM says before a grant is written: the VM's canonical id, and whether every NSG in its path can take the
 * grant's rule (no ReadOnly lock, room, a free priority). Used at submission and again when the rules are written.
 */
import {
  GrantNotApplicable,
  NetworkPermissionMissing,
  ResourceNotFound,
  TransientFailure,
} from '../domain/errors';
import { planGrantRules } from '../domain/networkPath';
import type { RulePlacement } from '../domain/networkPath';
import { lowestFreePriority } from '../domain/priority';
import { MAX_RULES_PER_NSG } from '../domain/limits';
import type { SecurityRuleView, VmNetworkPath } from '../domain/types';
import type { Deps } from './deps';
import { retryTransient } from './nsgWrites';
import type { NsgWritePorts } from './deps';

/** What checking a grant before writing it needs: ARM, read as rule writes read it. */
export type GrantabilityPorts = NsgWritePorts;

/**
 * Refuses at submission what `applyGrant` would refuse anyway (no NSG in the path, no address of the source's
 * family), so nobody approves a request that can never be applied. ARM being unreachable is no reason to refuse:
 * `applyGrant` checks again, and fails the request then if it must.
 */
export async function checkGrantable(
  deps: GrantabilityPorts,
  vmId: string,
  sourcePrefix: string,
  /** The VM's path when it was read already (`canonicalVmId`); read here otherwise. */
  known?: VmNetworkPath,
): Promise<void> {
  let placements: RulePlacement[];
  try {
    const path = known ?? (await deps.network.resolvePath(vmId));
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
export async function preflight(
  deps: GrantabilityPorts,
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

/**
 * What ARM says of the VM a request names: its canonical id (and its network path, when that was read whole), or
 * why there is none to grant on.
 */
export type CanonicalVm =
  | { kind: 'found'; vmId: string; path?: VmNetworkPath }
  | { kind: 'unusable'; error: GrantNotApplicable | NetworkPermissionMissing };

/**
 * ARM's canonical id for the VM a request names, which decides the policy: never a guess from the id as typed, so
 * ARM not answering is a 503 to try again. A missing VM, or one the deployment may not read, is returned rather
 * than thrown: the caller says so only to someone the policy allows.
 *
 * The VM is read once: its network path carries ARM's id, and is handed to `checkGrantable` after the policy check.
 * When the path cannot be read whole (a NIC or subnet read fails, the VM is missing), nothing of that failure shows
 * here: the id alone is asked for, and `checkGrantable` reads the path again and reports what it must, after the
 * policy check, exactly as without the first read.
 */
export async function canonicalVmId(deps: Pick<Deps, 'network' | 'log'>, vmId: string): Promise<CanonicalVm> {
  try {
    const path = await deps.network.resolvePath(vmId);
    return { kind: 'found', vmId: path.vmId, path };
  } catch {
    // Read the id alone below; what went wrong is reported where it is today.
  }
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
