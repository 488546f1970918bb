import { familyOf } from './networkPath';
import type { AddressFamily } from './networkPath';
import { baselineRuleName, sameRuleName } from './ruleNames';
import type { AllowRuleSpec, NsgGuard, Policy, Protocol, SecurityRuleView, VmNetworkPath } from './types';

/**
 * One covered VM's share of a baseline deny rule JIT keeps in an NSG for a policy with `enforce: true`: the policy's
 * ports on the VM's addresses (one family, one protocol) are closed except while a grant's allow rule, which sits
 * above it, is in place. The NSG holds one rule per port set, protocol and family (`ruleName`), denying towards the
 * addresses of every VM that shares it (`baselineSpecOf`): an NSG in front of hundreds of VMs stays far from Azure's
 * 1,000-rule limit. Covering or releasing a VM rewrites the shared rule with one address more or less.
 */
export interface BaselineRule {
  nsgId: string;
  ruleName: string;
  vmId: string;
  /** Scope of the policy that asks for it. */
  policyScope: string;
  protocol: Protocol;
  ports: number[];
  family: AddressFamily;
  destinations: string[];
  /** Set while the rule is being taken away: the reconciler finishes the removal instead of restoring it. */
  removing?: boolean;
}

/** A VM a policy covers, and the NSGs in front of it as last seen. */
export interface VmCoverage {
  vmId: string;
  policyScope: string;
  enforce: boolean;
  ports: number[];
  guards: NsgGuard[];
  refreshedAt: string;
}

/** The baseline rules a policy asks for in front of one VM: per NSG, per address family, per protocol. */
export function planBaseline(path: VmNetworkPath, policy: Policy): BaselineRule[] {
  if (!policy.enforce) return [];
  const byProtocol = new Map<Protocol, number[]>();
  for (const p of policy.ports) byProtocol.set(p.protocol, [...(byProtocol.get(p.protocol) ?? []), p.port]);
  const out: BaselineRule[] = [];
  for (const guard of path.guards) {
    for (const family of ['ipv4', 'ipv6'] as const) {
      const destinations = guard.addresses.filter((a) => familyOf(a) === family);
      if (destinations.length === 0) continue;
      for (const [protocol, ports] of byProtocol) {
        out.push({
          nsgId: guard.nsgId,
          ruleName: baselineRuleName(ports, family, protocol),
          vmId: path.vmId,
          policyScope: policy.scope,
          protocol,
          ports: [...new Set(ports)].sort((a, b) => a - b),
          family,
          destinations: [...destinations].sort(),
        });
      }
    }
  }
  return out;
}

/**
 * The NSG rule for a baseline: deny from anywhere to the addresses of every VM that shares it (the members of one
 * `ruleName` in one NSG), on their ports. Throws on an empty list: a rule with no member is deleted, not written.
 */
export function baselineSpecOf(members: readonly BaselineRule[], priority: number): AllowRuleSpec {
  const [first] = members;
  if (!first) throw new RangeError('a baseline rule needs at least one VM');
  const destinations = [...new Set(members.flatMap((m) => m.destinations))].sort();
  const vms = new Set(members.map((m) => m.vmId.toLowerCase())).size;
  return {
    name: first.ruleName,
    access: 'Deny',
    priority,
    protocol: first.protocol,
    sourceAddressPrefix: '*',
    destinationAddressPrefixes: destinations,
    destinationPortRanges: first.ports.map(String),
    description:
      vms === 1
        ? `JIT baseline: ${first.protocol} ${first.ports.join(',')} to ${vmName(first.vmId)} closed except while granted`
        : `JIT baseline: ${first.protocol} ${first.ports.join(',')} to ${vms} VMs closed except while granted`,
  };
}

/** Whether a rule in an NSG says what the spec says (priority aside): then there is nothing to write. */
export function ruleMatchesSpec(view: SecurityRuleView, spec: AllowRuleSpec): boolean {
  const set = (xs: readonly string[]) => [...new Set(xs.map((x) => x.toLowerCase()))].sort().join(',');
  return (
    sameRuleName(view.name, spec.name) &&
    view.direction === 'Inbound' &&
    view.access === (spec.access ?? 'Allow') &&
    view.protocol.toLowerCase() === spec.protocol.toLowerCase() &&
    set(view.sourceAddressPrefixes) === set([spec.sourceAddressPrefix]) &&
    set(view.destinationAddressPrefixes) === set(spec.destinationAddressPrefixes) &&
    set(view.destinationPortRanges) === set(spec.destinationPortRanges)
  );
}

function vmName(vmId: string): string {
  return vmId.slice(vmId.lastIndexOf('/') + 1);
}
