/**
 * The PlatformAuthReader port: this app's own `Microsoft.Web/sites/config/authsettingsV2`, read through ARM with
 * the app's managed identity. One GET (REST operation `WebApps_GetAuthSettingsV2WithoutSecrets`, path
 * `/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Web/sites/{name}/config/authsettingsV2`
 * in specification/web/resource-manager/Microsoft.Web/stable/2024-04-01/WebApps.json), sent through the Azure SDK's
 * own HTTP pipeline (bearer token, retries) rather than the 27 MB generated App Service client. The RBAC action it
 * needs is `Microsoft.Web/sites/config/Read` on the app (infra/modules/role-assignments.bicep,
 * AUTH_SETTINGS_ARM_ACTIONS below, checked by test/infra).
 */
import type { TokenCredential } from '@azure/core-auth';
import {
  bearerTokenAuthenticationPolicy,
  createDefaultHttpClient,
  createPipelineFromOptions,
  createPipelineRequest,
} from '@azure/core-rest-pipeline';
import type { HttpClient, Pipeline } from '@azure/core-rest-pipeline';
import { TransientFailure } from '../domain/errors';
import type { PlatformAuthSettings } from '../domain/platformAuth';
import type { PlatformAuthReader } from '../domain/ports';

/** The API version the Bicep deploys the settings with. */
const AUTH_SETTINGS_API_VERSION = '2024-04-01';

/** What the one ARM call of this adapter needs, for the role test. */
export const AUTH_SETTINGS_ARM_ACTIONS = ['Microsoft.Web/sites/config/Read'] as const;

export interface ArmAuthSettingsOptions {
  endpoint: string;
  /** ARM id of the function app. */
  appResourceId: string;
  /** Extra CA certificate (PEM) to trust, for an endpoint behind a private CA (the sandbox's ARM emulator). */
  caPem?: string;
}

export class ArmAuthSettingsReader implements PlatformAuthReader {
  private readonly pipeline: Pipeline;
  private readonly client: HttpClient = createDefaultHttpClient();

  constructor(
    credential: TokenCredential,
    private readonly options: ArmAuthSettingsOptions,
  ) {
    this.pipeline = createPipelineFromOptions({
      retryOptions: { maxRetries: 2, retryDelayInMs: 500 },
      ...(options.caPem ? { tlsOptions: { ca: options.caPem } } : {}),
    });
    this.pipeline.addPolicy(
      bearerTokenAuthenticationPolicy({ credential, scopes: `${options.endpoint}/.default` }),
    );
  }

  async getAuthSettings(): Promise<PlatformAuthSettings> {
    const url = `${this.options.endpoint}${this.options.appResourceId}/config/authsettingsV2?api-version=${AUTH_SETTINGS_API_VERSION}`;
    let res;
    try {
      res = await this.pipeline.sendRequest(this.client, createPipelineRequest({ url, method: 'GET' }));
    } catch (err) {
      throw new TransientFailure(
        `reading ${this.options.appResourceId}/config/authsettingsV2: ${String(err)}`,
      );
    }
    if (res.status !== 200) {
      let code = '';
      try {
        code = (JSON.parse(res.bodyAsText ?? '') as { error?: { code?: string } }).error?.code ?? '';
      } catch {
        // not JSON: the status says enough
      }
      throw new TransientFailure(
        `ARM answered ${res.status} ${code} reading ${this.options.appResourceId}/config/authsettingsV2 (the app identity needs Microsoft.Web/sites/config/Read on the app)`,
      );
    }
    const body = JSON.parse(res.bodyAsText ?? '{}') as { properties?: PlatformAuthSettings };
    return body.properties ?? {};
  }
}
