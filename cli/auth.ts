/**
 * Signing in against a deployment, through @azure/identity: the Azure CLI's sign-in (`az login`) by default, or a
 * device code or the browser (`jit login --use-device-code | --browser`). The latter two keep their tokens in a
 * file only the user can read, `token-cache.<name>.json` beside the configuration, as the Azure CLI itself does on
 * Linux: there is no OS key store to rely on everywhere, and @azure/identity's own persistence plugin needs native
 * code.
 *
 * Loaded only by commands that call a deployment: @azure/identity takes a second to load, `jit --version` should not.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import {
  AzureAuthorityHosts,
  AzureCliCredential,
  DeviceCodeCredential,
  InteractiveBrowserCredential,
  deserializeAuthenticationRecord,
  serializeAuthenticationRecord,
  useIdentityPlugin,
} from '@azure/identity';
import type { AuthenticationRecord } from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { tokenCachePath } from './settings';
import type { AuthMethod } from './settings';

/** msal-node's cache plugin context, as far as this file uses it. */
interface CacheContext {
  cacheHasChanged: boolean;
  tokenCache: { serialize(): string; deserialize(cache: string): void };
}

/** The context @azure/identity hands a plugin ("plugin authors cast it", plugins/provider.d.ts). */
interface PluginContext {
  cachePluginControl: {
    setPersistence(
      factory: (options?: { name?: string }) => Promise<{
        beforeCacheAccess(context: CacheContext): Promise<void>;
        afterCacheAccess(context: CacheContext): Promise<void>;
      }>,
    ): void;
  };
}

let cacheDir: string | undefined;
let pluginInstalled = false;

/** Persists the MSAL cache of device code and browser sign-ins in `dir`, mode 0600. */
function useFileTokenCache(dir: string): void {
  cacheDir = dir;
  if (pluginInstalled) return;
  pluginInstalled = true;
  useIdentityPlugin((context) => {
    (context as PluginContext).cachePluginControl.setPersistence(async (options) => {
      // One file per cache name @azure/identity asks for. (4.13 asks for its CAE and non-CAE caches under the one
      // name `tokenCachePersistenceOptions.name` gives, so both live in one file; jit never asks for CAE tokens.)
      const file = () => tokenCachePath(cacheDir!, options?.name ?? 'jit');
      return {
        async beforeCacheAccess(context) {
          try {
            context.tokenCache.deserialize(readFileSync(file(), 'utf8'));
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
          }
        },
        async afterCacheAccess(context) {
          if (!context.cacheHasChanged) return;
          mkdirSync(cacheDir!, { recursive: true, mode: 0o700 });
          const temp = `${file()}.${process.pid}.tmp`;
          writeFileSync(temp, context.tokenCache.serialize(), { mode: 0o600 });
          renameSync(temp, file());
        },
      };
    });
  });
}

export interface CredentialOptions {
  method: AuthMethod;
  tenant?: string;
  clientId?: string;
  /** Where device code and browser sign-ins go (`authority-host`); @azure/identity's default is Entra ID's. */
  authorityHost?: string;
  /** The serialized AuthenticationRecord `jit login` saved in the profile. */
  account?: string;
  /** Folder of the token cache (the configuration folder). */
  cacheDir: string;
  /** Where device code instructions go (stderr). */
  prompt: (message: string) => void;
  /** `jit login` may ask the person; every other command must not start a sign-in on its own. */
  interactive: boolean;
}

/** The credential a profile signs in with. */
export function credentialFor(options: CredentialOptions): TokenCredential & {
  authenticate?: (scopes: string | string[]) => Promise<unknown>;
} {
  if (options.method === 'azure-cli') {
    return new AzureCliCredential(options.tenant ? { tenantId: options.tenant } : {});
  }
  useFileTokenCache(options.cacheDir);
  const common = {
    ...(options.tenant ? { tenantId: options.tenant } : {}),
    ...(options.clientId ? { clientId: options.clientId } : {}),
    ...(options.authorityHost ? authorityOptions(options.authorityHost) : {}),
    ...(options.account ? { authenticationRecord: deserializeAuthenticationRecord(options.account) } : {}),
    disableAutomaticAuthentication: !options.interactive,
    tokenCachePersistenceOptions: { enabled: true, name: 'jit' },
  };
  return options.method === 'device-code'
    ? new DeviceCodeCredential({ ...common, userPromptCallback: (info) => options.prompt(info.message) })
    : new InteractiveBrowserCredential(common);
}

/** The Microsoft clouds' sign-in hosts, which MSAL's instance discovery (at login.microsoftonline.com) knows. */
const MICROSOFT_CLOUDS = new Set<string>(Object.values(AzureAuthorityHosts));

/**
 * An authority host other than Entra ID's public cloud. MSAL validates an authority by asking
 * login.microsoftonline.com about it ("instance discovery"), which knows only Microsoft's clouds: for any other host
 * (Azure Stack, a private cloud, the sandbox's provider) it is turned off, and the host the person configured is
 * trusted as named (@azure/identity's `disableInstanceDiscovery`).
 */
function authorityOptions(host: string): { authorityHost: string; disableInstanceDiscovery?: true } {
  const origin = new URL(host).origin;
  return MICROSOFT_CLOUDS.has(origin)
    ? { authorityHost: origin }
    : { authorityHost: origin, disableInstanceDiscovery: true };
}

/**
 * Signs in interactively (device code or browser) and returns the account to remember, or undefined for the Azure
 * CLI, which remembers its own.
 */
export async function authenticate(
  credential: ReturnType<typeof credentialFor>,
  scope: string,
): Promise<string | undefined> {
  if (!credential.authenticate) return undefined;
  return serializeAuthenticationRecord((await credential.authenticate(scope)) as AuthenticationRecord);
}

/** Who a token says its bearer is: what `jit whoami` shows. Read, not verified: the API verifies it. */
export interface TokenIdentity {
  name?: string;
  user?: string;
  objectId?: string;
  tenant?: string;
  roles: string[];
  expiresAt?: string;
}

export function identityOf(accessToken: string): TokenIdentity {
  let claims: Record<string, unknown> = {};
  try {
    claims = decodeJwt(accessToken);
  } catch {
    // Not a JWT: nothing to show but that the token was issued.
  }
  const text = (k: string) => (typeof claims[k] === 'string' ? claims[k] : undefined);
  return {
    name: text('name'),
    user: text('upn') ?? text('preferred_username') ?? text('unique_name') ?? text('appid'),
    objectId: text('oid'),
    tenant: text('tid'),
    roles: Array.isArray(claims.roles) ? claims.roles.filter((r): r is string => typeof r === 'string') : [],
    expiresAt: typeof claims.exp === 'number' ? new Date(claims.exp * 1000).toISOString() : undefined,
  };
}
