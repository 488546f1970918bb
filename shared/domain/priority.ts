import { createHash } from 'node:crypto';
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

/** ARM compares rule names without regard to case. */
export function sameRuleName(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

/** The rule name for a grant. Derived from the grant id so that a retry finds the rule it wrote before. */
export function ruleNameFor(grantId: string): string {
  return `jit-${grantId.toLowerCase()}`;
}

/** Whether a rule name looks like one of ours: a grant's rule (`jit-` and a 26-character id). */
export function isJitRuleName(name: string): boolean {
  return /^jit-[0-9a-z]{26}$/i.test(name);
}

/** The grant (request) id a grant rule's name was derived from, or undefined for any other name. */
export function grantIdOfRuleName(name: string): string | undefined {
  return isJitRuleName(name) ? name.slice(4).toUpperCase() : undefined;
}

const BASELINE = /^jit-baseline-[0-9a-f]{16}$/i;

/**
 * The name of the baseline deny rule JIT keeps in an NSG for one set of ports, one protocol and one address family:
 * `jit-baseline-<hash>`, shared by every VM behind the NSG that a policy with those ports covers (one rule per NSG,
 * not one per VM: an NSG holds at most 1,000 rules). Stable, so the reconciler finds the rule it wrote; never
 * mistaken for a grant's rule (`isJitRuleName` is false for it).
 */
export function baselineRuleName(
  ports: readonly number[],
  family: 'ipv4' | 'ipv6',
  protocol: string,
): string {
  const portSet = [...new Set(ports)].sort((a, b) => a - b).join(',');
  const hash = createHash('sha256').update(`${portSet}|${family}|${protocol.toLowerCase()}`).digest('hex');
  return `jit-baseline-${hash.slice(0, 16)}`;
}

export function isBaselineRuleName(name: string): boolean {
  return BASELINE.test(name);
}

/** Whether JIT wrote (or would write) the rule: a grant rule or a baseline rule. Nothing else is ever touched. */
export function isOwnRuleName(name: string): boolean {
  return isJitRuleName(name) || isBaselineRuleName(name);
}
