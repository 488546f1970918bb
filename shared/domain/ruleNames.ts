/**
 * The names of the rules JIT writes in NSGs: a grant's rule (`jit-<request id>`) and a baseline deny rule
 * (`jit-baseline-<hash>`). The name is how JIT finds its own rules again after a crash, and how it knows never to
 * touch anyone else's.
 */
import { createHash } from 'node:crypto';

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

/**
 * Whether Microsoft Defender for Cloud's JIT wrote the rule: `SecurityCenter-JITRule_…` (its deny rule) or
 * `SecurityCenter-JITRule-…` (an allow rule of one of its requests).
 */
export function isDefenderJitRuleName(name: string): boolean {
  return /^SecurityCenter-JITRule[-_]/i.test(name);
}

/** Whether JIT wrote (or would write) the rule: a grant rule or a baseline rule. Nothing else is ever touched. */
export function isOwnRuleName(name: string): boolean {
  return isJitRuleName(name) || isBaselineRuleName(name);
}
