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
  /** Sandbox only: app roles to act with (sent as x-jit-dev-roles), e.g. `Jit.Auditor`. */
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
      { title?: string; detail?: string; errors?: Array<{ field: string; reason: string }> } | undefined,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
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

  async call<T>(
    method: string,
    path: string,
    body?: unknown,
  ): Promise<{ status: number; headers: Headers; body: T }> {
    const url = `${this.options.apiUrl.replace(/\/$/, '')}/${path.replace(/^\//, '')}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          ...(await this.headers()),
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
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
      throw new ApiError(res.status, problem, message);
    }
    return { status: res.status, headers: res.headers, body: parsed as T };
  }
}
