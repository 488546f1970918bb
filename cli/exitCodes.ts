/** Exit codes of `jit`, stable for scripts. */
export const EXIT = {
  ok: 0,
  /** Anything unexpected: the API unreachable, a 5xx. */
  error: 1,
  /** Bad arguments, or the API refused the input (400). */
  usage: 2,
  /** Not allowed (401/403), not found (404), or access that cannot be granted on the VM (422: e.g. no such VM). */
  forbidden: 3,
  /** The request was denied, or approval expired. */
  denied: 4,
  /** The grant failed (see statusReason). */
  failed: 5,
  /** Access already ended (expired or revoked) when it was expected to be live. */
  ended: 6,
  /** --wait gave up before the request reached a final or live state. */
  timeout: 7,
  /** `jit audit verify` found the audit chain broken: rows were edited or deleted. */
  auditBroken: 8,
  /** --wait was interrupted (Ctrl-C); the request goes on: `jit revoke <id>` cancels it. */
  interrupted: 130,
} as const;

function exitCodeForStatus(httpStatus: number): number {
  if (httpStatus === 400) return EXIT.usage;
  if ([401, 403, 404, 422].includes(httpStatus)) return EXIT.forbidden;
  return EXIT.error;
}

/** The exit code for an API refusal: access that already ended is told apart from other conflicts. */
export function exitCodeForProblem(httpStatus: number, problemType: string | undefined): number {
  if (problemType?.endsWith('#accessalreadyended')) return EXIT.ended;
  return exitCodeForStatus(httpStatus);
}

/** The exit code for where a request stands after waiting for it to go live. */
export function exitCodeForOutcome(status: string): number {
  switch (status) {
    case 'active':
      return EXIT.ok;
    case 'denied':
    case 'approval-expired':
      return EXIT.denied;
    case 'failed':
      return EXIT.failed;
    case 'expired':
    case 'revoked':
      return EXIT.ended;
    default:
      return EXIT.timeout;
  }
}
