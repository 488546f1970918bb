/**
 * Whether App Service Authentication, as the app's own `Microsoft.Web/sites/config/authsettingsV2` says, enforces
 * what `easyauth` mode relies on. Read at start-up (shared/usecases/serving.ts) because `WEBSITE_AUTH_ENABLED` only
 * says that authentication is configured: the principal header is the platform's word only where the platform
 * strips a client-sent copy and requires a sign-in.
 */

/** The parts of authsettingsV2 the check reads (`properties` of the resource, REST API 2024-04-01). */
export interface PlatformAuthSettings {
  platform?: { enabled?: boolean };
  globalValidation?: {
    requireAuthentication?: boolean;
    unauthenticatedClientAction?: string;
    excludedPaths?: string[];
  };
  identityProviders?: {
    azureActiveDirectory?: {
      enabled?: boolean;
      registration?: { openIdIssuer?: string; clientId?: string };
    };
  };
}

/**
 * Paths the platform may leave open to anonymous callers because the app guards them itself: the approval page
 * sends an anonymous browser to sign in and refuses an anonymous decision (shared/http/pages.ts); the health route
 * tells an anonymous probe only its status and version (functions/health.ts). Every other route must have the
 * platform's sign-in in front of it.
 */
const APP_GUARDED_PATHS: readonly string[] = ['/api/approvals', '/api/health'];

/** What the check learned: the tenant the platform accepts tokens from. */
export interface PlatformAuthVerdict {
  tenantId: string;
}

/** The tenant in a tenant-specific v2.0 issuer (`…/<tenant id>/v2.0`); undefined for `common`, `organizations`… */
export function tenantOfIssuer(issuer: string | undefined): string | undefined {
  return /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v2\.0\/?$/i
    .exec(issuer ?? '')?.[1]
    ?.toLowerCase();
}

/**
 * Checks the settings; returns the verdict, or the list of reasons the app must not trust the principal header.
 * Requires: the platform on (so it strips client-sent `x-ms-client-principal*` headers), authentication required
 * with a refusing action (not `AllowAnonymous`), no excluded path but those the app guards itself, and Entra ID
 * as the provider with a tenant-specific issuer (tokens of other tenants fail there).
 */
export function checkPlatformAuth(
  settings: PlatformAuthSettings,
): PlatformAuthVerdict | { problems: string[] } {
  const problems: string[] = [];
  const v = settings.globalValidation ?? {};
  if (settings.platform?.enabled !== true)
    problems.push('App Service Authentication is off (platform.enabled is not true)');
  if (v.requireAuthentication !== true)
    problems.push('it does not require authentication (globalValidation.requireAuthentication is not true)');
  if (!v.unauthenticatedClientAction || v.unauthenticatedClientAction === 'AllowAnonymous')
    problems.push(
      `unauthenticated callers are let through (unauthenticatedClientAction ${v.unauthenticatedClientAction ?? 'unset'})`,
    );
  const guarded = new Set(APP_GUARDED_PATHS.map((p) => p.toLowerCase()));
  const open = (v.excludedPaths ?? []).filter((p) => !guarded.has(p.replace(/\/+$/, '').toLowerCase()));
  if (open.length)
    problems.push(`paths are excluded from sign-in that the app does not guard: ${open.join(', ')}`);
  const aad = settings.identityProviders?.azureActiveDirectory;
  if (aad?.enabled !== true) problems.push('the Microsoft Entra ID provider is not enabled');
  const tenantId = tenantOfIssuer(aad?.registration?.openIdIssuer);
  if (!tenantId)
    problems.push(
      `the Entra ID issuer is not tenant-specific (${aad?.registration?.openIdIssuer ?? 'unset'}); want https://login.microsoftonline.com/<tenant id>/v2.0`,
    );
  return problems.length || !tenantId ? { problems } : { tenantId };
}
