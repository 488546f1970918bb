import {
  AccessNotAllowed,
  ConcurrencyConflict,
  InvalidRequest,
  InvalidState,
  JitError,
  RequestNotFound,
  RoleRequired,
  TransientFailure,
  Unauthenticated,
} from '../domain/errors';
import type { FieldProblem } from '../domain/errors';

/** An RFC 9457 problem document, the body of every error answer. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  /** For 400: every field that failed and why. */
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
  if (err instanceof Unauthenticated) return make(401, err.code, 'Sign-in required', err.message);
  if (err instanceof AccessNotAllowed) {
    return make(
      403,
      err.code,
      'Access not allowed',
      err.disclose ? err.reason : 'No policy allows this request.',
    );
  }
  if (err instanceof RoleRequired) return make(403, err.code, 'Forbidden', err.message);
  if (err instanceof RequestNotFound) return make(404, err.code, 'Not found', err.message);
  if (err instanceof InvalidState || err instanceof ConcurrencyConflict)
    return make(409, err.code, 'Conflict', err.message);
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
