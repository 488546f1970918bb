import {
  AccessAlreadyEnded,
  AccessNotAllowed,
  AlreadyDecided,
  ApprovalClosed,
  ApprovalTokenExpired,
  ApprovalTokenInvalid,
  ApproverNotAllowed,
  CsrfCheckFailed,
  FeatureUnavailable,
  SelfApprovalRefused,
  ConcurrencyConflict,
  GrantNotApplicable,
  InvalidRequest,
  InvalidState,
  JitError,
  NotServing,
  NetworkPermissionMissing,
  CloseBlocked,
  PolicyDocumentInvalid,
  PolicyNotFound,
  RequestNotFound,
  RoleRequired,
  TooManyRequests,
  TransientFailure,
  Unauthenticated,
  formatPolicyProblem,
} from '../domain/errors';
import type { FieldProblem } from '../domain/errors';

/** An RFC 9457 problem document, the body of every error answer. */
interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** For 400: every field that failed and why (for a policy document, also its line, column and rule). */
  errors?: FieldProblem[];
  /** For AccessAlreadyEnded: the request's status, e.g. `expired`. */
  requestStatus?: string;
  /** For NetworkPermissionMissing: the RBAC action the deployment's identity lacks, and where. */
  permission?: string;
  scope?: string;
  /** For FeatureUnavailable: the feature that is switched off, e.g. `approval`. */
  feature?: string;
}

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  jsonBody: Problem;
}

const TYPE_BASE = 'https://github.com/azure-jit-access/azure-jit-access/blob/main/docs/api.md#';

/** What a caller is told is off, per feature (shared/config.ts FeatureConfigs). */
const FEATURE_NAMES: Readonly<Record<string, string>> = {
  authentication: 'Signing callers in',
  approval: 'Manual approval (approval links)',
  mail: 'Mail, which carries approval links,',
  requests: 'Creating requests',
};

/** The one place errors become HTTP answers (STYLE.md §5). Anything unexpected is a 500 that leaks nothing. */
export function toProblem(err: unknown): ProblemResponse {
  const make = (
    status: number,
    code: string,
    title: string,
    detail: string,
    extra: Partial<Problem> = {},
    headers: Record<string, string> = {},
  ) => ({
    status,
    headers: { 'Content-Type': 'application/problem+json', ...headers },
    jsonBody: { type: TYPE_BASE + code.toLowerCase(), title, status, detail, ...extra },
  });
  if (err instanceof InvalidRequest) {
    return make(400, err.code, 'The request is not valid', err.message, { errors: err.problems });
  }
  if (err instanceof PolicyDocumentInvalid) {
    const n = err.problems.length;
    return make(
      400,
      err.code,
      'The policy document is not valid',
      `${n} problem${n === 1 ? '' : 's'}; nothing was applied. First: ${err.problems[0] ? formatPolicyProblem(err.problems[0]) : ''}`,
      { errors: err.problems },
    );
  }
  if (err instanceof Unauthenticated) return make(401, err.code, 'Sign-in required', err.message);
  if (err instanceof RoleRequired) return make(403, err.code, 'Role required', err.message);
  if (err instanceof AccessNotAllowed) {
    return make(
      403,
      err.code,
      'Access not allowed',
      err.disclose ? err.reason : 'No policy allows this request.',
    );
  }
  if (err instanceof RequestNotFound || err instanceof PolicyNotFound)
    return make(404, err.code, 'Not found', err.message);
  // Approval links: the detail is shown to the approver on the page, so it says what to do next.
  if (err instanceof ApprovalTokenInvalid)
    return make(
      400,
      err.code,
      'This approval link is not valid',
      `${err.message}. Use the link from the mail as it is.`,
    );
  if (err instanceof ApprovalTokenExpired)
    return make(
      410,
      err.code,
      'This approval link has expired',
      'The time to decide with this link is over.',
    );
  if (err instanceof SelfApprovalRefused)
    return make(403, err.code, 'You cannot decide on your own request', err.message);
  if (err instanceof ApproverNotAllowed)
    return make(403, err.code, 'You cannot decide on this request', err.message);
  if (err instanceof CsrfCheckFailed)
    return make(
      403,
      err.code,
      'The decision form could not be verified',
      `${err.message}. Open the link from the mail again.`,
    );
  if (err instanceof AlreadyDecided) return make(409, err.code, 'You have already decided', err.message);
  if (err instanceof ApprovalClosed) return make(409, err.code, 'Nothing left to decide', err.message);
  if (err instanceof AccessAlreadyEnded) {
    return make(409, err.code, 'Access already ended', err.message, { requestStatus: err.requestStatus });
  }
  if (err instanceof InvalidState) return make(409, err.code, 'Conflict', err.message);
  // Someone else changed the request a moment ago: the same call is likely to succeed when made again.
  if (err instanceof ConcurrencyConflict)
    return make(409, err.code, 'Conflict', err.message, {}, { 'Retry-After': '1' });
  // A lock stops JIT from closing live access: the request stays as it is and says why; retrying helps once lifted.
  if (err instanceof CloseBlocked) return make(409, err.code, 'Access could not be closed', err.message);
  // The deployment, not the caller, lacks a permission: 422 with what to grant and where, never "not applicable".
  if (err instanceof NetworkPermissionMissing) {
    return make(422, err.code, "The deployment's identity may not reach this VM's network", err.message, {
      permission: err.permission,
      scope: err.scope,
    });
  }
  if (err instanceof GrantNotApplicable) {
    return make(422, err.code, 'Access cannot be granted on this VM', err.message);
  }
  if (err instanceof TooManyRequests) {
    return make(
      429,
      err.code,
      'Too many requests',
      err.message,
      {},
      { 'Retry-After': String(Math.max(1, Math.ceil(err.retryAfterInMs / 1000))) },
    );
  }
  if (err instanceof NotServing) {
    return make(
      503,
      err.code,
      'Not serving',
      err.message,
      {},
      { 'Retry-After': String(Math.ceil(err.retryAfterInMs / 1000)) },
    );
  }
  // A broken setting, not a busy dependency: it lasts until an operator fixes it, so the retry hint is long.
  if (err instanceof FeatureUnavailable) {
    return make(
      503,
      err.code,
      'Feature unavailable',
      `${FEATURE_NAMES[err.feature] ?? `The ${err.feature} feature`} is switched off because one of its settings is not valid; nothing was changed. An operator can see which setting at GET /api/health.`,
      { feature: err.feature },
      { 'Retry-After': '60' },
    );
  }
  if (err instanceof TransientFailure) {
    return make(
      503,
      err.code,
      'Try again shortly',
      err.message,
      {},
      { 'Retry-After': String(Math.ceil((err.retryAfterInMs ?? 2000) / 1000)) },
    );
  }
  // An error of ours with no answer of its own is internal: one type for all of them, saying nothing more.
  if (err instanceof JitError)
    return make(500, 'InternalError', 'Internal error', 'The request could not be completed.');
  if (isTransientDependencyFailure(err)) {
    return make(
      503,
      'TransientFailure',
      'Try again shortly',
      'A service this API depends on is busy or unreachable; try again shortly.',
      {},
      { 'Retry-After': '2' },
    );
  }
  return make(500, 'InternalError', 'Internal error', 'The request could not be completed.');
}

/**
 * Storage or Service Bus failing in a way a retry may fix: throttled, timed out, 5xx, or not reached at all.
 * Recognised by the SDKs' error names (STYLE.md §5) rather than by importing them into this module.
 */
function isTransientDependencyFailure(err: unknown): boolean {
  const e = err as { name?: string; statusCode?: number; retryable?: boolean };
  if (e?.name === 'RestError') {
    const status = e.statusCode ?? 0;
    return status === 0 || status === 408 || status === 429 || status >= 500;
  }
  return e?.name === 'ServiceBusError' && e.retryable === true;
}
