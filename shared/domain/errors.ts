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

/** The caller is signed in but lacks the role the operation needs (auditors' and admins' views). */
export class RoleRequired extends JitError {
  readonly code = 'RoleRequired';
  constructor(readonly roles: string[]) {
    super(`this needs the ${roles.join(' or ')} role`);
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

/** ARM refused a rule because another rule in the NSG has the same priority and direction: plan again. */
export class PriorityTaken extends JitError {
  readonly code = 'PriorityTaken';
}
