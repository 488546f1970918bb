/**
 * Azure RBAC as ARM applies it to every request: who is calling (from the bearer token), which role assignments
 * they hold, and whether those grant the action at the scope asked for. A request that is not granted is answered
 * `403 AuthorizationFailed` before anything else is looked at, whether the resource exists or not ("or the scope
 * is invalid").
 *
 * Sources: https://learn.microsoft.com/azure/role-based-access-control/overview ("Azure RBAC is an additive model";
 * assignments at a parent scope are inherited by child scopes);
 * https://learn.microsoft.com/azure/role-based-access-control/role-definitions#actions-format (`*` wildcards in
 * Actions and NotActions; effective permissions are Actions minus NotActions);
 * https://learn.microsoft.com/azure/role-based-access-control/resource-provider-operations (the action names).
 * A collection GET at a scope the caller cannot read as a whole answers with the items the caller can read, when it
 * holds any assignment below that scope (ARM filters list results by RBAC), and 403 when it holds none.
 */
import { isAllowed } from '../../shared/domain/permissions';
import { armErrors } from './errors';
import { isWithin } from './locks';

/** Who a request comes from: what ARM names in an AuthorizationFailed message. */
export interface Principal {
  /** Application (client) id of a service principal or managed identity. */
  clientId: string;
  /** Object (principal) id, which role assignments name. */
  objectId: string;
}

/** A role assignment reduced to what decides: a principal, a scope, and the role's Actions/NotActions. */
export interface RoleAssignmentSpec {
  principalId: string;
  scope: string;
  actions: string[];
  notActions?: string[];
}

export class RoleAssignments {
  private assignments: RoleAssignmentSpec[] = [];

  constructor(
    /** The principal of an opaque (non-JWT) bearer token: the sandbox's and the tests' stub credentials. */
    readonly defaultPrincipal: Principal,
  ) {}

  assign(spec: RoleAssignmentSpec): void {
    this.assignments.push({ ...spec, notActions: [...(spec.notActions ?? [])], actions: [...spec.actions] });
  }

  /** Removes every assignment of the principal at exactly this scope (all of them when `scope` is omitted). */
  unassign(principalId: string, scope?: string): void {
    this.assignments = this.assignments.filter(
      (a) =>
        a.principalId.toLowerCase() !== principalId.toLowerCase() ||
        (scope !== undefined && a.scope.toLowerCase() !== scope.toLowerCase()),
    );
  }

  list(): RoleAssignmentSpec[] {
    return this.assignments.map((a) => ({ ...a }));
  }

  /**
   * The caller of a request. A JWT's `oid` and `appid` (or `azp`) claims name it, as Entra ID tokens for ARM carry
   * them; the signature is not checked (an emulator has no keys to check it with). Any other token is the default
   * principal.
   */
  principalOf(authorization: string): Principal {
    const token = authorization.replace(/^Bearer\s+/i, '').trim();
    const parts = token.split('.');
    if (parts.length !== 3) return this.defaultPrincipal;
    try {
      const claims = JSON.parse(Buffer.from(parts[1] ?? '', 'base64url').toString('utf8')) as Record<
        string,
        unknown
      >;
      const objectId = typeof claims['oid'] === 'string' ? claims['oid'] : undefined;
      const clientId =
        typeof claims['appid'] === 'string'
          ? claims['appid']
          : typeof claims['azp'] === 'string'
            ? claims['azp']
            : undefined;
      if (!objectId) throw new Error('no oid claim');
      return { objectId, clientId: clientId ?? objectId };
    } catch {
      throw armErrors.invalidAuthenticationToken();
    }
  }

  /** Whether the principal may perform `action` at `scope` (inherited from any scope above it). */
  allows(principal: Principal, action: string, scope: string): boolean {
    return this.assignments.some(
      (a) =>
        a.principalId.toLowerCase() === principal.objectId.toLowerCase() &&
        isWithin(scope, a.scope) &&
        // Actions minus NotActions, `*` wildcards: the same reading the service applies to ARM's Permissions API.
        isAllowed([{ actions: a.actions, notActions: a.notActions ?? [] }], action),
    );
  }

  /** The principal's permissions at a scope: one entry per assignment at or above it (Permissions_List*). */
  permissionsAt(
    principal: Principal,
    scope: string,
  ): Array<{ actions: string[]; notActions: string[]; dataActions: string[]; notDataActions: string[] }> {
    return this.assignments
      .filter(
        (a) => a.principalId.toLowerCase() === principal.objectId.toLowerCase() && isWithin(scope, a.scope),
      )
      .map((a) => ({
        actions: [...a.actions],
        notActions: [...(a.notActions ?? [])],
        dataActions: [],
        notDataActions: [],
      }));
  }

  /** Whether the principal holds any assignment at or below `scope` (then a list there is filtered, not refused). */
  hasAnyBelow(principal: Principal, scope: string): boolean {
    return this.assignments.some(
      (a) => a.principalId.toLowerCase() === principal.objectId.toLowerCase() && isWithin(a.scope, scope),
    );
  }

  /** @throws ArmError 403 AuthorizationFailed unless the principal may perform the action at the scope. */
  authorize(principal: Principal, action: string, scope: string): void {
    if (!this.allows(principal, action, scope)) {
      throw armErrors.authorizationFailed(principal.clientId, principal.objectId, action, scope);
    }
  }
}
