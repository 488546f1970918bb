import type { SecurityRuleView } from './types';

/** The priorities JIT may use in an NSG: a band that sits above (numerically below) the baseline deny rules. */
export interface PriorityBand {
  min: number;
  max: number;
}

/**
 * The lowest priority in the band that no inbound rule of the NSG uses, skipping those in `exclude`
 * (priorities that lost a race a moment ago). Undefined when the band is full.
 */
export function lowestFreePriority(
  rules: readonly SecurityRuleView[],
  band: PriorityBand,
  exclude: ReadonlySet<number> = new Set(),
): number | undefined {
  const taken = new Set(rules.filter((r) => r.direction === 'Inbound').map((r) => r.priority));
  for (let p = band.min; p <= band.max; p++) {
    if (!taken.has(p) && !exclude.has(p)) return p;
  }
  return undefined;
}

/** The rule name for a grant. Derived from the grant id so that a retry finds the rule it wrote before. */
export function ruleNameFor(grantId: string): string {
  return `jit-${grantId.toLowerCase()}`;
}

/** Whether a rule name looks like one of ours. */
export function isJitRuleName(name: string): boolean {
  return /^jit-[0-9a-z]{26}$/.test(name);
}
