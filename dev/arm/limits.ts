/**
 * Per-NSG limits Network RP enforces on a write, from "Networking limits - Azure Resource Manager" in
 * https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#networking-limits
 * (the include file is MicrosoftDocs/azure-docs includes/azure-virtual-network-limits.md):
 * - "NSG rules per NSG: 1,000";
 * - "IP addresses and ranges specified for source or destination in a security group (The limit applies separately
 *   to source and destination): 4,000".
 * The per-rule limits (priority 100-4096, name up to 80 characters, description up to 140) are in validation.ts.
 */
import { armErrors } from './errors';
import type { RuleDefinition } from './validation';

const MAX_RULES_PER_NSG = 1000;
const MAX_PREFIXES_PER_NSG_SIDE = 4000;

/**
 * Checks the NSG's rules as they would be after a write. Only a write that adds to a count past its limit fails:
 * an NSG already over a limit (raised by support, or seeded so) keeps working for writes that do not grow it.
 * @throws ArmError 400 naming the limit.
 */
export function assertNsgLimits(
  nsgId: string,
  before: readonly RuleDefinition[],
  after: readonly RuleDefinition[],
): void {
  if (after.length > MAX_RULES_PER_NSG && after.length > before.length) {
    throw armErrors.securityRuleCountLimitReached(MAX_RULES_PER_NSG);
  }
  for (const side of ['source', 'destination'] as const) {
    const count = prefixCount(after, side);
    if (count > MAX_PREFIXES_PER_NSG_SIDE && count > prefixCount(before, side)) {
      throw armErrors.securityRuleAddressPrefixLimitReached(nsgId, side, MAX_PREFIXES_PER_NSG_SIDE, count);
    }
  }
}

/** Addresses and ranges written on one side of every rule; `*` and service tags count as one entry each. */
function prefixCount(rules: readonly RuleDefinition[], side: 'source' | 'destination'): number {
  return rules.reduce((n, r) => {
    const one = side === 'source' ? r.sourceAddressPrefix : r.destinationAddressPrefix;
    const many = side === 'source' ? r.sourceAddressPrefixes : r.destinationAddressPrefixes;
    return n + many.length + (one === undefined ? 0 : 1);
  }, 0);
}
