/**
 * The sandbox's sign-in, per `JIT_SANDBOX_AUTH`:
 * - `dev` (default): no provider; the caller names themselves in a header (loopback only).
 * - `easyauth`: the local OpenID Connect provider, and the App-Service-like front end in front of the local host,
 *   configured as infra/ deploys App Service Authentication; the ARM emulator serves the same settings as the
 *   app's authsettingsV2, which the app reads at start-up.
 * - `jwt`: the local provider issues access tokens; the app validates them itself.
 */
import { API_APP, CLI_APP } from './directory';
import type { DemoApp } from './directory';
import { EasyAuthFrontEnd, deployedAuthSettings } from './frontEnd';
import type { FrontEndAuthSettings } from './frontEnd';
import { LocalOidcProvider } from './provider';
import { appAccessToken, frontEndSession, userAccessToken } from './signIn';

export type SandboxAuthMode = 'dev' | 'easyauth' | 'jwt';

export const SANDBOX_AUTH_MODES: readonly SandboxAuthMode[] = ['dev', 'easyauth', 'jwt'];

/** The function app's ARM id in the sandbox (its authsettingsV2 lives in the ARM emulator). */
export const SANDBOX_SITE_ID =
  '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/jit-rg/providers/Microsoft.Web/sites/func-jit-sandbox';

export class SandboxIdentity {
  /** `easyauth`: where people reach the app; the local host sits behind it. */
  readonly frontEnd?: EasyAuthFrontEnd;
  readonly provider?: LocalOidcProvider;
  /** `easyauth`: the authsettingsV2 properties the front end obeys and the ARM emulator serves. */
  settings?: FrontEndAuthSettings;

  constructor(readonly mode: SandboxAuthMode) {
    if (mode === 'easyauth') this.frontEnd = new EasyAuthFrontEnd();
  }

  /**
   * Starts what the mode needs and returns its app settings. In `easyauth` mode the front end listens on
   * `publicPort` (0: a free one) and is the app's public address.
   */
  async start(publicPort: number): Promise<Record<string, string>> {
    if (this.mode === 'dev') return { JIT_AUTH_MODE: 'dev' };
    if (this.frontEnd) await this.frontEnd.listen(publicPort);
    const redirectUris = this.frontEnd ? [`${this.frontEnd.baseUrl}/.auth/login/aad/callback`] : [];
    const provider = new LocalOidcProvider({ redirectUris });
    (this as { provider?: LocalOidcProvider }).provider = provider;
    await provider.start();
    if (this.mode === 'jwt') {
      return {
        JIT_AUTH_MODE: 'jwt',
        JIT_JWT_ISSUER: provider.issuer,
        JIT_JWT_AUDIENCE: API_APP.clientId,
        JIT_JWT_JWKS_URI: provider.jwksUri,
      };
    }
    this.settings = deployedAuthSettings(API_APP.clientId, provider.issuer);
    this.frontEnd!.configure({
      settings: this.settings,
      jwksUri: provider.jwksUri,
      clientSecret: API_APP.clientSecret,
    });
    return {
      JIT_AUTH_MODE: 'easyauth',
      JIT_APP_RESOURCE_ID: SANDBOX_SITE_ID,
      JIT_PUBLIC_BASE_URL: this.frontEnd!.baseUrl,
    };
  }

  async stop(): Promise<void> {
    await Promise.allSettled([this.frontEnd?.stop(), this.provider?.stop()]);
  }

  /** `easyauth`: signs `login` in as a browser would; the `Cookie` header value to send. */
  session(login: string): Promise<string> {
    if (!this.frontEnd) throw new Error('only easyauth mode has sessions');
    return frontEndSession(this.frontEnd.baseUrl, login);
  }

  /** An access token for the API for `login` (through the sandbox's command-line client). */
  userToken(login: string): Promise<string> {
    if (!this.provider) throw new Error('dev mode has no provider');
    return userAccessToken(this.provider.issuer, CLI_APP.clientId, CLI_APP.redirectUri, login);
  }

  /** An app-only token for the API for one of the demo apps. */
  appToken(app: DemoApp): Promise<string> {
    if (!this.provider) throw new Error('dev mode has no provider');
    return appAccessToken(this.provider.issuer, app);
  }
}
