/**
 * How `jit` fails: one line saying what is wrong and, where it helps, one line saying what to do — never pages of
 * help. With `--output json` the same failure is one problem document (RFC 9457) on stderr, so a script reads the
 * API's own problem, or one of the CLI's, the same way. Each failure carries its exit code (cli/exitCodes.ts).
 */
import { EXIT, exitCodeForProblem } from './exitCodes';

/** Where the CLI's own problem types are explained. */
export const CLI_DOCS = 'https://github.com/azure-jit-access/azure-jit-access/blob/main/docs/cli.md';

/** An RFC 9457 problem document: the API's, or one the CLI makes for a failure of its own. */
export interface ProblemDocument {
  type: string;
  title: string;
  status?: number;
  detail: string;
  errors?: Array<{ field: string; reason: string; line?: number; column?: number; rule?: string }>;
  requestStatus?: string;
  /** What to do about it, where the CLI knows. */
  hint?: string;
  [extension: string]: unknown;
}

/** A failure `jit` reports and exits on. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly hint: string | undefined,
    private readonly document: ProblemDocument,
  ) {
    super(message);
    this.name = 'CliError';
  }

  /** The problem document `-o json` prints on stderr. */
  problem(): ProblemDocument {
    return this.hint ? { ...this.document, hint: this.hint } : this.document;
  }
}

/** Something the person typed or configured cannot work; nothing was sent. */
export class UsageError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint, {
      type: `${CLI_DOCS}#usage-errors`,
      title: 'Usage error',
      detail: message,
    });
    this.name = 'UsageError';
  }
}

/** The API could not be reached, or what answered was not the API. */
export class UnreachableError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.error, hint, {
      type: `${CLI_DOCS}#api-unreachable`,
      title: 'The API could not be reached',
      detail: message,
    });
    this.name = 'UnreachableError';
  }
}

/** No identity to call the API with, or signing in failed. */
export class SignInError extends CliError {
  constructor(message: string, hint?: string) {
    super(message, EXIT.usage, hint, {
      type: `${CLI_DOCS}#sign-in`,
      title: 'Sign-in needed',
      detail: message,
    });
    this.name = 'SignInError';
  }
}

/**
 * The API's fields as the CLI's options: a 400 says `--reason: is required`, not `justification: …`, because
 * that is what the person typed. Fields without an option keep their name.
 */
const FIELD_OPTIONS: Record<string, string> = {
  vm: '<vm>',
  ports: '--port',
  duration: '--for',
  sourcePrefix: '--from',
  justification: '--reason',
  startAt: '--start',
  protocol: '--protocol',
  requestId: '--request-id',
  pageSize: '--page-size',
  continuationToken: '--continuation-token',
  from: '--from',
  to: '--to',
  actor: '--actor',
  status: '--status',
  limit: '--limit',
  requester: '--requester',
  port: '--port',
};

function optionForField(field: string): string {
  const base = /^[A-Za-z]+/.exec(field)?.[0] ?? field;
  return FIELD_OPTIONS[base] ?? field;
}

/** An error answer of the API, as the person reads it and as the exit code tells it. */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly apiProblem: ProblemDocument,
    hint?: string,
    /** The answer's Retry-After, where it had one. */
    readonly retryAfterInMs?: number,
  ) {
    super(
      ApiError.describe(status, apiProblem),
      exitCodeForProblem(status, apiProblem.type),
      hint,
      apiProblem,
    );
    this.name = 'ApiError';
  }

  /**
   * A 400 is its fields, each once, named as options (`--from: has host bits set`); anything else is the status,
   * the title and the detail on one line.
   */
  private static describe(status: number, p: ProblemDocument): string {
    if (status === 400 && p.errors?.length) {
      return p.errors.map((e) => `${optionForField(e.field)}: ${e.reason}`).join('\n');
    }
    return `${status} ${p.title}${p.detail ? `: ${p.detail}` : ''}`;
  }
}
