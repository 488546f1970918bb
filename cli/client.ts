/**
 * The HTTP client behind the `jit` command. It talks to the API the way any script would: JSON in, JSON or
 * problem+json out. In the sandbox it names the user with the dev header; against a deployment it signs in with
 * @azure/identity (Azure CLI first, then device code) for the API's app ID URI.
 */
import { AzureCliCredential, ChainedTokenCredential, DeviceCodeCredential } from '@azure/identity';
import type { TokenCredential } from '@azure/core-auth';

export interface ClientOptions {
  /** Base URL of the API, ending in /api. */
  apiUrl: string;
  /** Sandbox only: the user to act as (sent as x-jit-dev-user). */
  devUser?: string;
  /** Sandbox only: the app roles to act with, comma-separated (sent as x-jit-dev-roles). */
  devRoles?: string;
  /** Azure: the API's scope, e.g. `api://<app id>/.default`. */
  scope?: string;
  credential?: TokenCredential;
}

/** A problem+json answer, or a transport failure, as one error the CLI can print and map to an exit code. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly problem:
      | {
          type?: string;
          title?: string;
          detail?: string;
          errors?: Array<{ field: string; reason: string }>;
          requestStatus?: string;
        }
      | undefined,
    message: string,
    /** The answer's Retry-After, where it had one. */
    readonly retryAfterInMs?: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface CallOptions {
  /** Send `body` verbatim with this content type instead of as JSON. */
  contentType?: string;
}

export class ApiClient {
  private readonly credential?: TokenCredential;

  constructor(private readonly options: ClientOptions) {
    if (!options.devUser) {
      this.credential =
        options.credential ??
        new ChainedTokenCredential(
          new AzureCliCredential(),
          new DeviceCodeCredential({ userPromptCallback: (i) => console.error(i.message) }),
        );
    }
  }

  private async headers(): Promise<Record<string, string>> {
    if (this.options.devUser) {
      return {
        'x-jit-dev-user': this.options.devUser,
        ...(this.options.devRoles ? { 'x-jit-dev-roles': this.options.devRoles } : {}),
      };
    }
    if (!this.options.scope)
      throw new ApiError(
        0,
        undefined,
        'set --scope (or JIT_API_SCOPE) to the API app ID URI, e.g. api://<app id>/.default',
      );
    const token = await this.credential!.getToken(this.options.scope);
    if (!token) throw new ApiError(0, undefined, 'could not get a token for the API');
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
    const url = `${this.options.apiUrl.replace(/\/$/, '')}/${path.replace(/^\//, '')}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(await this.headers()),
          ...(body === undefined ? {} : { 'content-type': options.contentType ?? 'application/json' }),
        },
        body:
          body === undefined
            ? undefined
            : options.contentType && typeof body === 'string'
              ? body
              : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, undefined, `could not reach ${url}: ${(err as Error).message}`);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    if (!res.ok) {
      const problem = parsed as ApiError['problem'];
      const fields = problem?.errors?.map((e) => `  ${e.field}: ${e.reason}`).join('\n');
      const message = [
        `${res.status} ${problem?.title ?? res.statusText}${problem?.detail ? `: ${problem.detail}` : ''}`,
        fields,
      ]
        .filter(Boolean)
        .join('\n');
      const retryAfter = Number(res.headers.get('retry-after'));
      throw new ApiError(
        res.status,
        problem,
        message,
        Number.isFinite(retryAfter) && retryAfter >= 0 ? retryAfter * 1000 : undefined,
      );
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}
