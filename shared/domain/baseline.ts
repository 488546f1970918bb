import { familyOf } from './networkPath';
import type { AddressFamily } from './networkPath';
import { baselineRuleName, sameRuleName } from './priority';
import type { AllowRuleSpec, NsgGuard, Policy, Protocol, SecurityRuleView, VmNetworkPath } from './types';

/**
 * A baseline deny rule JIT keeps in an NSG for a policy with `enforce: true`: the policy's ports on one covered
 * VM's addresses (one family, one protocol) are closed except while a grant's allow rule, which sits above it,
 * is in place. One rule per VM, never shared, so covering or releasing one VM never rewrites another's rule.
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
          ruleName: baselineRuleName(path.vmId, family, protocol),
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

/** The NSG rule for a baseline: deny from anywhere to the VM's addresses on the ports. */
export function baselineSpec(rule: BaselineRule, priority: number): AllowRuleSpec {
  return {
    name: rule.ruleName,
    access: 'Deny',
    priority,
    protocol: rule.protocol,
    sourceAddressPrefix: '*',
    destinationAddressPrefixes: rule.destinations,
    destinationPortRanges: rule.ports.map(String),
    description: `JIT baseline: ${rule.protocol} ${rule.ports.join(',')} to ${vmName(rule.vmId)} closed except while granted`,
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
