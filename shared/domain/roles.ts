import { RoleRequired } from './errors';
import type { Principal } from './types';

/** The app roles the API knows (Entra app roles; `x-jit-dev-roles` in the sandbox). */
export const ROLES = {
  /** Manages policies; sees every request. */
  admin: 'Jit.Admin',
  /** Reads requests and the audit trail. */
  auditor: 'Jit.Auditor',
} as const;

export function hasRole(caller: Principal, role: string): boolean {
  return caller.roles.includes(role);
}

/** Throws `RoleRequired` unless the caller holds the role. */
export function requireRole(caller: Principal, role: string): void {
  if (!hasRole(caller, role)) throw new RoleRequired(role);
}
