import { sameRuleName } from './ruleNames';
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

/**
 * The priority to write rule `name` at: the one it already holds when that is in the band and nobody else's
 * (a retry after a write that landed keeps its place), otherwise the lowest free one, not counting the rule
 * itself. Undefined when the band is full.
 */
export function planPriority(
  rules: readonly SecurityRuleView[],
  band: PriorityBand,
  name: string,
  exclude: ReadonlySet<number> = new Set(),
): number | undefined {
  const own = rules.find((r) => sameRuleName(r.name, name));
  const others = rules.filter((r) => r !== own);
  if (
    own &&
    own.direction === 'Inbound' &&
    own.priority >= band.min &&
    own.priority <= band.max &&
    !exclude.has(own.priority) &&
    !others.some((o) => o.direction === 'Inbound' && o.priority === own.priority)
  ) {
    return own.priority;
  }
  return lowestFreePriority(others, band, exclude);
}
