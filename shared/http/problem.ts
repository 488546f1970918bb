import {
  AccessNotAllowed,
  ConcurrencyConflict,
  GrantNotApplicable,
  InvalidRequest,
  InvalidState,
  JitError,
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
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** For 400: every field that failed and why (for a policy document, also its line, column and rule). */
  errors?: FieldProblem[];
}

export interface ProblemResponse {
  status: number;
  headers: Record<string, string>;
  jsonBody: Problem;
}

const TYPE_BASE = 'https://github.com/azure-jit-access/azure-jit-access/blob/main/docs/api.md#';

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
  if (err instanceof GrantNotApplicable) {
    return make(422, err.code, 'Access cannot be granted on this VM', err.message);
  }
  if (err instanceof InvalidState || err instanceof ConcurrencyConflict)
    return make(409, err.code, 'Conflict', err.message);
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
  if (err instanceof JitError)
    return make(500, err.code, 'Internal error', 'The request could not be completed.');
  return make(500, 'InternalError', 'Internal error', 'The request could not be completed.');
}
