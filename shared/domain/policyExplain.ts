import { principalMatches, selectPolicy } from './policy';
import { toPolicyEntry } from './policyDocument';
import type { AccessExplanation, ScopeCheck } from './policyEntries';
import type { Policy, Principal, Protocol } from './types';

export type { AccessExplanation, ScopeCheck } from './policyEntries';

const LEVELS: ScopeCheck['level'][] = ['vm', 'resourceGroup', 'subscription'];

/**
 * Explains the decision for a VM the way `decide` makes it: the most specific scope with a policy wins, and only
 * that policy's ports, limits and approval apply. `scopes` come from `scopesOf`, `found` from the repository.
 */
export function explainPolicy(
  vm: string,
  scopes: string[],
  found: Policy[],
  caller: Principal,
  ask?: { port: number; protocol: Protocol },
): AccessExplanation {
  const policy = selectPolicy(scopes, found);
  const explanation: AccessExplanation = {
    vm,
    checked: scopes.map((scope, i) => ({
      scope,
      level: LEVELS[i] ?? 'subscription',
      hasPolicy: found.some((p) => p.scope === scope),
      decides: scope === policy?.scope,
    })),
    callerIsRequester: policy ? principalMatches(caller, policy.requesters) : false,
  };
  if (policy) {
    explanation.decidedBy = policy.scope;
    explanation.policy = toPolicyEntry(policy);
  }
  if (ask) {
    const entry = explanation.policy?.ports.find(
      (p) => p.port === ask.port && (p.protocol === '*' || p.protocol === ask.protocol),
    );
    explanation.port = entry
      ? { ...ask, allowed: true, maxDuration: entry.maxDuration }
      : { ...ask, allowed: false };
  }
  return explanation;
}
