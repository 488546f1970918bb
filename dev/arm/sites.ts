/**
 * Function apps (`Microsoft.Web/sites`) as far as this system reads them: the App Service Authentication settings
 * of its own app, `GET …/providers/Microsoft.Web/sites/{name}/config/authsettingsV2`
 * (operation WebApps_GetAuthSettingsV2WithoutSecrets, specification/web/resource-manager/Microsoft.Web/stable/
 * 2024-04-01/WebApps.json in Azure/azure-rest-api-specs). The answer is the `SiteAuthSettingsV2` resource
 * (`id`, `name: authsettingsV2`, `type: Microsoft.Web/sites/config`, `properties`). A site that does not exist is
 * ARM's 404 `ResourceNotFound`; a site whose authentication was never configured still answers, with
 * `platform.enabled: false` (the resource always exists under a site).
 */
import { ArmError } from './errors';
import type { ArmResponse } from './routes';

/** The `properties` of authsettingsV2, as written (the emulator keeps whatever a test or the sandbox sets). */
export type AuthSettingsV2Properties = Record<string, unknown>;

export class AppServiceSites {
  private readonly sites = new Map<string, { id: string; auth: AuthSettingsV2Properties }>();

  /** Creates (or replaces) a site with these authentication settings. `id` is the site's ARM id. */
  setAuthSettings(id: string, auth: AuthSettingsV2Properties): void {
    this.sites.set(id.toLowerCase(), { id, auth: structuredClone(auth) });
  }

  getAuthSettingsV2(subscriptionId: string, resourceGroup: string, name: string): ArmResponse {
    const key = `/subscriptions/${subscriptionId}/resourceGroups/${resourceGroup}/providers/Microsoft.Web/sites/${name}`;
    const site = this.sites.get(key.toLowerCase());
    if (!site) {
      throw new ArmError(
        404,
        'ResourceNotFound',
        `The Resource 'Microsoft.Web/sites/${name}' under resource group '${resourceGroup}' was not found.`,
        { fromResourceProvider: false },
      );
    }
    return {
      status: 200,
      body: {
        id: `${site.id}/config/authsettingsV2`,
        name: 'authsettingsV2',
        type: 'Microsoft.Web/sites/config',
        properties: { platform: { enabled: false }, ...structuredClone(site.auth) },
      },
    };
  }
}
