/** Principals for tests of the rules. */
import type { Principal } from '../../shared/domain/types';

/**
 * A person as the sandbox's `dev` mode presents them: the name is their key and their (member) UPN. Entra
 * principals, keyed by tenant and object id, are made by the authentication tests from real claims.
 */
export function person(id: string, groups: string[] = [], roles: string[] = []): Principal {
  const name = id.toLowerCase();
  return { id, kind: 'user', name, upn: name, groups, roles };
}
