import { principalMatches, selectPolicy } from './policy';
import { toPolicyEntry } from './policyDocument';
import type { PolicyEntry } from './policyDocument';
import type { Policy, Principal, Protocol } from './types';

/** One scope looked at, most specific first. */
export interface ScopeCheck {
  scope: string;
  level: 'vm' | 'resourceGroup' | 'subscription';
  /** A policy is stored for this scope. */
  hasPolicy: boolean;
  /** This is the policy that decides: the first scope, in this order, with a policy. */
  decides: boolean;
}

/** Why a VM (and a port) is or is not requestable: `jit policy explain`. */
export interface AccessExplanation {
  vm: string;
  /** The VM, its resource group, its subscription: the order in which policies are looked for. */
  checked: ScopeCheck[];
  /** Scope of the deciding policy; absent when no scope has one (every request is refused). */
  decidedBy?: string;
  policy?: PolicyEntry;
  /** Whether the deciding policy names the caller among its requesters. */
  callerIsRequester: boolean;
  /** The asked port under the deciding policy; broader policies do not add ports to it. */
  port?: { port: number; protocol: Protocol; allowed: boolean; maxDuration?: string };
  /**
   * For administrators: what the deployment cannot read or write in the VM's network (a VNet or NSG outside the
   * scopes its role covers), one line each. Absent when there is nothing to say.
   */
  warnings?: string[];
}

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
