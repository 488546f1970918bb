/**
 * The small set of things that can go wrong, named after what happened (STYLE.md §5).
 * Each maps to one HTTP status and a problem+json body in shared/http/problem.ts.
 */

/** One field that failed validation, and why. */
export interface FieldProblem {
  /** JSON path of the field in the request body, e.g. `ports[1]`. */
  field: string;
  /** Human-readable reason, e.g. `must be an integer from 1 to 65535`. */
  reason: string;
}

export abstract class JitError extends Error {
  abstract readonly code: string;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The input is malformed; nothing was written. */
export class InvalidRequest extends JitError {
  readonly code = 'InvalidRequest';
  constructor(
    readonly problems: FieldProblem[],
    message = problems.map((p) => `${p.field}: ${p.reason}`).join('; '),
  ) {
    super(message);
  }
}

/**
 * No policy covers the VM, or the caller may not use it, or the request falls outside it.
 * Deliberately one error for all of these so that the API does not reveal which VMs exist.
 */
export class AccessNotAllowed extends JitError {
  readonly code = 'AccessNotAllowed';
  constructor(
    /** Why, for the audit log and for the caller when the reason leaks nothing (ports, duration). */
    readonly reason: string,
    /** Whether `reason` may be shown to the caller. */
    readonly disclose: boolean,
  ) {
    super(reason);
  }
}

/** The caller did not authenticate, or the credential was not valid. */
export class Unauthenticated extends JitError {
  readonly code = 'Unauthenticated';
}

/** The caller is signed in but lacks the app role the operation needs (one of them, where several would do). */
export class RoleRequired extends JitError {
  readonly code = 'RoleRequired';
  readonly roles: string[];
  constructor(roles: string | readonly string[]) {
    const list = typeof roles === 'string' ? [roles] : [...roles];
    super(`This needs the ${list.join(' or ')} app role`);
    this.roles = list;
  }
}

/** The request does not exist, or the caller may not see it (the same answer for both). */
export class RequestNotFound extends JitError {
  readonly code = 'RequestNotFound';
  constructor(readonly requestId: string) {
    super(`Request ${requestId} was not found`);
  }
}

/** A conditional write lost a race: someone else changed the row first. */
export class ConcurrencyConflict extends JitError {
  readonly code = 'ConcurrencyConflict';
}

/** The request is not in a state that allows the operation. */
export class InvalidState extends JitError {
  readonly code = 'InvalidState';
}

/** A dependency failed in a way that is worth retrying (throttling, a busy NSG, a network blip). */
export class TransientFailure extends JitError {
  readonly code = 'TransientFailure';
  constructor(
    message: string,
    readonly retryAfterInMs?: number,
  ) {
    super(message);
  }
}

/** The grant cannot be applied and retrying will not help (no NSG in the path, VM gone, ...). */
export class GrantNotApplicable extends JitError {
  readonly code = 'GrantNotApplicable';
}

/** Configuration is missing or malformed; thrown at start-up, naming the setting. */
export class ConfigurationError extends JitError {
  readonly code = 'ConfigurationError';
}

/**
 * An operation needs a feature that is switched off because one of its settings is broken (`GET /api/health` says
 * which, to admins). Thrown before anything is written.
 */
export class FeatureUnavailable extends JitError {
  readonly code = 'FeatureUnavailable';
  constructor(readonly feature: string) {
    super(`the ${feature} feature is switched off: one of its settings is not valid`);
  }
}

/**
 * The app refuses to serve callers: a start-up check found that what it relies on does not hold (App Service
 * Authentication not enforced, manual-approval policies where approvers cannot sign in). Says why; retried shortly.
 */
export class NotServing extends JitError {
  readonly code = 'NotServing';
  constructor(
    message: string,
    readonly retryAfterInMs = 30_000,
  ) {
    super(message);
  }
}

/** One rule a policy document breaks, where it breaks it (1-based line and column) and which rule it is. */
export interface PolicyProblem extends FieldProblem {
  /** The file (or `(body)`) the document came from. */
  source: string;
  line: number;
  column: number;
  /** Stable name of the rule broken, e.g. `unknown-field`, `max-duration-over-cap` (docs/policies.md lists them). */
  rule: string;
}

/** A policy document failed to parse or validate; nothing was applied. */
export class PolicyDocumentInvalid extends JitError {
  readonly code = 'PolicyDocumentInvalid';
  constructor(readonly problems: PolicyProblem[]) {
    super(problems.map(formatPolicyProblem).join('\n'));
  }
}

/** `file:line:column: field: reason [rule]`, the form compilers use, so editors and CI annotations pick it up. */
export function formatPolicyProblem(p: PolicyProblem): string {
  return `${p.source}:${p.line}:${p.column}: ${p.field ? `${p.field}: ` : ''}${p.reason} [${p.rule}]`;
}

/** No policy is stored for the scope asked about (admins only, so saying so leaks nothing). */
export class PolicyNotFound extends JitError {
  readonly code = 'PolicyNotFound';
  constructor(readonly scope: string) {
    super(`No policy has the scope ${scope}`);
  }
}

/**
 * ARM answered `403 AuthorizationFailed`: the deployment's identity may not perform `permission` at `scope` (a VM
 * whose VNet or NSG lives outside the scopes the deployment's role covers, typically a hub resource group). Not the
 * caller's fault and not the VM's: the operator must extend the role (docs/deploy.md).
 */
export class NetworkPermissionMissing extends JitError {
  readonly code = 'NetworkPermissionMissing';
  constructor(
    /** The RBAC action ARM named, e.g. `Microsoft.Network/virtualNetworks/subnets/read`. */
    readonly permission: string,
    /** The scope ARM named (the resource asked for). */
    readonly scope: string,
    message = `the deployment's identity lacks ${permission} on ${scope}; its role must cover that scope (see docs/deploy.md)`,
  ) {
    super(message);
  }
}

/**
 * ARM answered `409 ScopeLocked`: a management lock at or above `scope` forbids the operation. A `CanNotDelete`
 * lock refuses deletes only, a `ReadOnly` lock writes as well.
 */
export class ScopeLocked extends JitError {
  readonly code = 'ScopeLocked';
  constructor(
    readonly operation: 'write' | 'delete',
    /** The locked scope(s) ARM named. */
    readonly lockedScopes: string[],
    message: string,
  ) {
    super(message);
  }
}

/**
 * A grant rule could be neither deleted nor turned to `Deny` (a `ReadOnly` lock): the access it gives is still open.
 * Thrown so that it is retried (the message is redelivered, then the reconciler tries every run) until an operator
 * lifts the lock.
 */
export class CloseBlocked extends JitError {
  readonly code = 'CloseBlocked';
}

/** ARM refused a rule because another rule in the NSG has the same priority and direction: plan again. */
export class PriorityTaken extends JitError {
  readonly code = 'PriorityTaken';
}

/** ARM says the VM, NIC, subnet or NSG does not exist (any more). A grant on it can never be applied. */
export class ResourceNotFound extends GrantNotApplicable {}

/** The reconciler used up the ARM calls one run may make; what is left waits for the next run. */
export class ArmCallBudgetSpent extends JitError {
  readonly code = 'ArmCallBudgetSpent';
}

/** The caller has sent too many requests; they may try again after the given time. */
export class TooManyRequests extends JitError {
  readonly code = 'TooManyRequests';
  constructor(
    message: string,
    readonly retryAfterInMs: number,
  ) {
    super(message);
  }
}

/**
 * The operation needs live (or not yet live) access, but access already ended: it expired, was revoked, failed,
 * or never started (denied, approval expired). Nothing was changed.
 */
export class AccessAlreadyEnded extends JitError {
  readonly code = 'AccessAlreadyEnded';
  constructor(
    readonly requestId: string,
    /** The request's final status, e.g. `expired`. */
    readonly requestStatus: string,
    message: string,
  ) {
    super(message);
  }
}

/** An approval link's token is malformed, tampered with, signed by an unknown key or with another algorithm. */
export class ApprovalTokenInvalid extends JitError {
  readonly code = 'ApprovalTokenInvalid';
}

/** An approval link's token was genuine but is past its expiry. */
export class ApprovalTokenExpired extends JitError {
  readonly code = 'ApprovalTokenExpired';
}

/** The person deciding is not (or no longer) an approver the link and the policy name. */
export class ApproverNotAllowed extends JitError {
  readonly code = 'ApproverNotAllowed';
}

/** The requester tried to decide on their own request. */
export class SelfApprovalRefused extends JitError {
  readonly code = 'SelfApprovalRefused';
}

/** This approver has already decided on this request: a link is good for one decision. */
export class AlreadyDecided extends JitError {
  readonly code = 'AlreadyDecided';
}

/** The request no longer waits for a decision (approved, denied, expired, ...). */
export class ApprovalClosed extends JitError {
  readonly code = 'ApprovalClosed';
  constructor(
    readonly status: string,
    message = `the request is no longer awaiting approval: it is ${status}`,
  ) {
    super(message);
  }
}

/** A decision form was not posted from the page this app served for that link. */
export class CsrfCheckFailed extends JitError {
  readonly code = 'CsrfCheckFailed';
}
