/**
 * Permissions: who may do what to a request (its requester, an approver of its policy, an admin or an auditor),
 * and what the deployment itself may do on an NSG.
 */
import { principalMatches } from './policy';
import { ROLES } from './roles';
import { requesterKey } from './types';
import type { AccessRequest, Policy, Principal } from './types';

export const isAdmin = (p: Principal): boolean => p.roles.includes(ROLES.admin);

/** Whether the caller is the request's requester. */
export const isRequester = (p: Principal, r: AccessRequest) => p.id.toLowerCase() === requesterKey(r);

/** Whether the caller may read the request: its requester, an admin or an auditor (others get a 404). */
export function mayRead(caller: Principal, request: AccessRequest): boolean {
  return isRequester(caller, request) || isAdmin(caller) || caller.roles.includes(ROLES.auditor);
}

/** Whether the caller may end the request early: its requester, an approver of its policy, or an admin. */
export function mayRevoke(caller: Principal, request: AccessRequest, policy: Policy | undefined): boolean {
  return (
    isRequester(caller, request) ||
    isAdmin(caller) ||
    (policy !== undefined && principalMatches(caller, policy.approval.approvers))
  );
}

/**
 * Whether the caller may extend the request: only its requester. The policy's `requesters` are checked against
 * the caller's own groups, which are known only for the caller.
 */
export function mayExtend(caller: Principal, request: AccessRequest): boolean {
  return isRequester(caller, request);
}

/*
 * Azure RBAC's reading of a role's Actions and NotActions
 * (https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions-format): an action is allowed
 * by an entry when one of its Actions matches and none of its NotActions does; `*` matches any run of characters,
 * and case does not matter. Entries (role assignments) add up.
 */

/** One role assignment's permissions at a scope, as ARM's Permissions API returns them. */
export interface PermissionEntry {
  actions: readonly string[];
  notActions: readonly string[];
}

/** What the deployment must be able to do on every NSG in front of a covered VM. */
export const NSG_RULE_ACTIONS = [
  'Microsoft.Network/networkSecurityGroups/securityRules/read',
  'Microsoft.Network/networkSecurityGroups/securityRules/write',
  'Microsoft.Network/networkSecurityGroups/securityRules/delete',
  'Microsoft.Authorization/locks/read',
] as const;

/** And, for a policy with `cutSessions`, to turn on flushConnection. */
export const NSG_FLUSH_ACTIONS = [
  'Microsoft.Network/networkSecurityGroups/read',
  'Microsoft.Network/networkSecurityGroups/write',
] as const;

export function isAllowed(entries: readonly PermissionEntry[], action: string): boolean {
  return entries.some(
    (e) => e.actions.some((p) => matches(p, action)) && !e.notActions.some((p) => matches(p, action)),
  );
}

/** The actions of `wanted` that no entry allows. */
export function missingActions(entries: readonly PermissionEntry[], wanted: readonly string[]): string[] {
  return wanted.filter((a) => !isAllowed(entries, a));
}

function matches(pattern: string, action: string): boolean {
  const p = pattern.toLowerCase();
  const a = action.toLowerCase();
  const parts = p.split('*');
  if (parts.length === 1) return p === a;
  // Glob: the first part is a prefix, the last a suffix, the ones between appear in order.
  let at = 0;
  for (const [i, part] of parts.entries()) {
    if (i === 0) {
      if (!a.startsWith(part)) return false;
      at = part.length;
    } else if (i === parts.length - 1) {
      return a.length - part.length >= at && a.endsWith(part);
    } else {
      const found = a.indexOf(part, at);
      if (found === -1) return false;
      at = found + part.length;
    }
  }
  return true;
}
