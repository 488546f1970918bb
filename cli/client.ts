/**
 * The HTTP client behind the `jit` command. It talks to the API the way any script would: JSON in, JSON or
 * problem+json out. In the sandbox it names the user with the dev header; against a deployment it sends a bearer
 * token for the API's scope from the credential `jit login` chose (cli/auth.ts).
 */
import type { TokenCredential } from '@azure/identity';
import { ApiError, SignInError, UnreachableError } from './errors';
import type { ProblemDocument } from './errors';

export interface ClientOptions {
  /** Base URL of the API, ending in /api. */
  apiUrl: string;
  /** Sandbox only: the user to act as (sent as x-jit-dev-user). */
  devUser?: string;
  /** Sandbox only: the app roles to act with, comma-separated (sent as x-jit-dev-roles). */
  devRoles?: string;
  /** Azure: the API's scope, e.g. `api://<app id>/.default`. */
  scope?: string;
  /** Azure: where tokens come from; made (and @azure/identity loaded) only when a call needs one. */
  credential?: () => Promise<TokenCredential>;
  /** What to do when the credential gives no token: sign in again the way the profile does. */
  signInHint?: string;
  /** Sent as User-Agent, so the API's logs tell the CLI's versions apart. */
  userAgent?: string;
}

export interface CallOptions {
  /** Send `body` verbatim with this content type instead of as JSON. */
  contentType?: string;
  /** Ask for this representation; a non-JSON answer comes back as text. */
  accept?: string;
}

/** A loopback API is the sandbox: its hints name `npm start` and `--user`. */
export function isLoopback(apiUrl: string): boolean {
  try {
    const host = new URL(apiUrl).hostname;
    return host === 'localhost' || host === '[::1]' || host.startsWith('127.');
  } catch {
    return false;
  }
}

export class ApiClient {
  private credential?: TokenCredential;

  constructor(private readonly options: ClientOptions) {}

  get apiUrl(): string {
    return this.options.apiUrl;
  }

  /** The headers that say who calls: the dev user in the sandbox, a bearer token elsewhere. */
  async identityHeaders(): Promise<Record<string, string>> {
    if (this.options.devUser) {
      return {
        'x-jit-dev-user': this.options.devUser,
        ...(this.options.devRoles ? { 'x-jit-dev-roles': this.options.devRoles } : {}),
      };
    }
    if (!this.options.scope) {
      if (isLoopback(this.options.apiUrl)) {
        throw new SignInError(
          'no user to act as in the sandbox',
          'name one: --user alice@example.com, JIT_DEV_USER, or jit config set user alice@example.com',
        );
      }
      throw new SignInError(
        `no scope to sign in to ${this.options.apiUrl} for`,
        "set the API's scope, then sign in: jit config set scope api://<app id>/.default && jit login",
      );
    }
    this.credential ??= await this.options.credential?.();
    if (!this.credential) throw new SignInError('no credential to sign in with', 'run jit login');
    let token;
    try {
      token = await this.credential.getToken(this.options.scope);
    } catch (err) {
      throw new SignInError(
        `could not get a token for ${this.options.scope}: ${firstLine((err as Error).message)}`,
        this.options.signInHint ?? 'sign in: jit login (or az login, for the Azure CLI)',
      );
    }
    if (!token) throw new SignInError(`could not get a token for ${this.options.scope}`, 'run jit login');
    return { authorization: `Bearer ${token.token}` };
  }

  /**
   * Calls the API. The body is sent as JSON, unless `options.contentType` is given: then it is sent as is (a
   * policy file keeps its own text, so the API's line numbers are the file's). A GET answered 503 or 429 is tried
   * again after the answer's Retry-After (a few times, never for long): reads are safe to repeat.
   */
  async call<T>(
    method: string,
    path: string,
    body?: unknown,
    options: CallOptions = {},
  ): Promise<{ status: number; headers: Headers; body: T }> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.callOnce<T>(method, path, body, options);
      } catch (err) {
        const retryable = err instanceof ApiError && (err.status === 503 || err.status === 429);
        if (!retryable || method !== 'GET' || attempt >= 4) throw err;
        await new Promise((r) => setTimeout(r, Math.min(err.retryAfterInMs ?? 2000, 10_000)));
      }
    }
  }

  private async callOnce<T>(
    method: string,
    path: string,
    body: unknown,
    options: CallOptions,
  ): Promise<{ status: number; headers: Headers; body: T }> {
    const base = this.options.apiUrl.replace(/\/$/, '');
    const url = `${base}/${path.replace(/^\//, '')}`;
    const headers: Record<string, string> = {
      ...(await this.identityHeaders()),
      ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
      ...(options.accept ? { accept: options.accept } : {}),
      ...(this.options.userAgent ? { 'user-agent': this.options.userAgent } : {}),
    };
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body:
          body === undefined
            ? undefined
            : options.contentType && typeof body === 'string'
              ? body
              : JSON.stringify(body),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (err as Error).message;
      throw new UnreachableError(
        `could not reach ${base} (${why})`,
        isLoopback(base)
          ? 'is the sandbox running? Start it with npm start; or point jit elsewhere with --api, JIT_API_URL or jit config set api <url>'
          : 'check the URL (--api, JIT_API_URL or jit config set api <url>) and your network',
      );
    }
    const text = await res.text();
    const type = res.headers.get('content-type') ?? '';
    let parsed: unknown;
    if (/json/i.test(type)) {
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = undefined;
      }
    } else {
      parsed = text;
    }
    if (!res.ok) {
      // Every error the API makes is problem+json; anything else answered from a URL that is not the API.
      if (!/problem\+json/i.test(type) || typeof parsed !== 'object' || parsed === null) {
        throw new UnreachableError(
          `${base} answered ${res.status} ${res.statusText} for ${method} /${path.split('?')[0]}: that is not the jit API`,
          /\/api$/.test(base)
            ? 'check the URL: --api, JIT_API_URL or jit config set api <url>'
            : `the API's URL ends in /api: try --api ${base}/api`,
        );
      }
      const problem = parsed as ProblemDocument;
      const retryAfter = Number(res.headers.get('retry-after'));
      throw new ApiError(
        res.status,
        problem,
        this.hintFor(res.status, problem),
        res.headers.has('retry-after') && Number.isFinite(retryAfter) && retryAfter >= 0
          ? retryAfter * 1000
          : undefined,
      );
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }

  private hintFor(status: number, problem: ProblemDocument): string | undefined {
    if (status === 401) {
      return this.options.devUser
        ? 'the API does not take the sandbox header: is it a deployment? Set --scope and run jit login'
        : 'sign in again: jit login';
    }
    if (status === 403 && problem.type.endsWith('#rolerequired') && this.options.devUser) {
      return 'in the sandbox, act with a role: --roles Jit.Admin (or Jit.Auditor)';
    }
    return undefined;
  }
}

function firstLine(text: string): string {
  return text.split('\n')[0]?.trim() ?? text;
}
