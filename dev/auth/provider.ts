/**
 * The sandbox's sign-in service: a real OpenID Connect provider (the `oidc-provider` library) standing in for
 * Microsoft Entra ID, with the demo directory of dev/auth/directory.ts. It signs people in at its own sign-in form
 * (any password), hands the App-Service-like front end (dev/auth/frontEnd.ts) an ID token through the
 * authorization code flow, and issues access tokens shaped like Entra's v2 tokens — to people (for `jwt` mode) and,
 * with client credentials, to the demo apps (app-only tokens, as a pipeline's service principal gets).
 *
 * Entra's token claims it reproduces (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
 * `iss` `https://…/<tenant>/v2.0`, `aud` the API's client id, `ver: 2.0`, `tid`, `oid`, `scp` (delegated),
 * `roles`, `groups`, `azp`, `name`, `preferred_username`; the optional claims `upn`, `email`, `acct`, `idtyp`
 * (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference); `idp` for a guest. An app-only
 * token's `sub` and `oid` are the service principal's object id.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import Provider from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import { API_APP, CLI_APP, DEMO_APPS, DEMO_TENANT_ID, findDemoUser } from './directory';
import { closeServer, listenOnLoopback } from './loopback';
import type { DemoUser } from './directory';

/** The scope people's tokens for the API carry (`scp`), as docs/deploy.md registers it. */
export const API_SCOPE = 'user_impersonation';

export interface OidcProviderOptions {
  /** Where the front end receives the authorization code (`<front end>/.auth/login/aad/callback`). */
  redirectUris: string[];
}

export class LocalOidcProvider {
  private server?: Server;
  private provider?: Provider;
  private base = '';

  constructor(private readonly options: OidcProviderOptions) {}

  /** `http://127.0.0.1:<port>/<tenant>/v2.0`, shaped like Entra's tenant-specific v2.0 issuer. */
  get issuer(): string {
    return `${this.base}/${DEMO_TENANT_ID}/v2.0`;
  }

  get jwksUri(): string {
    return `${this.issuer}/jwks`;
  }

  async start(): Promise<void> {
    const { server, port } = await listenOnLoopback((req, res) => this.handle(req, res));
    this.server = server;
    this.base = `http://127.0.0.1:${port}`;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signing: JWK = { ...(await exportJWK(privateKey)), kid: 'sandbox-1', alg: 'RS256', use: 'sig' };
    this.provider = new Provider(this.issuer, this.configuration(signing));
    // Plain http on loopback: the provider must not insist on https for its own URLs.
    this.provider.proxy = false;
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server);
  }

  /** The provider lives under the issuer's path, as Entra's endpoints live under `/<tenant>/v2.0`. */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    const mount = `/${DEMO_TENANT_ID}/v2.0`;
    const url = req.url ?? '/';
    if (!this.provider || !url.startsWith(mount)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    // As Express mounts it: the provider reads its mount path from originalUrl.
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = url;
    req.url = url.slice(mount.length) || '/';
    void this.provider.callback()(req, res);
  }

  private configuration(signing: JWK): Configuration {
    const clientOf = (a: { clientId: string; clientSecret: string }) => ({
      client_id: a.clientId,
      client_secret: a.clientSecret,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_post' as const,
    });
    const apps = Object.values(DEMO_APPS);
    return {
      clients: [
        {
          // App Service Authentication's own registration: the front end signs people in with it.
          client_id: API_APP.clientId,
          client_secret: API_APP.clientSecret,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          redirect_uris: this.options.redirectUris,
          token_endpoint_auth_method: 'client_secret_post',
        },
        {
          client_id: CLI_APP.clientId,
          grant_types: ['authorization_code'],
          response_types: ['code'],
          redirect_uris: [CLI_APP.redirectUri],
          token_endpoint_auth_method: 'none',
        },
        ...apps.map(clientOf),
      ],
      jwks: { keys: [signing] },
      cookies: { keys: ['sandbox-oidc-cookie-key'] },
      pkce: { required: () => false },
      scopes: ['openid', 'profile', 'email'],
      claims: {
        openid: ['sub', 'tid', 'oid', 'ver', 'upn', 'acct', 'idp', 'groups', 'roles'],
        profile: ['name', 'preferred_username'],
        email: ['email'],
      },
      // ID tokens carry the claims themselves, as Entra's do (App Service builds the session principal from them).
      conformIdTokenClaims: false,
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => `api://${API_APP.clientId}`,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: API_SCOPE,
            // Entra v2 access tokens name the API's client id as audience.
            audience: API_APP.clientId,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      // Sandbox people are not asked to consent: every grant the front end asks for is given.
      loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
        const grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client!.clientId,
          accountId: ctx.oidc.session!.accountId!,
        });
        grant.addOIDCScope('openid profile email');
        grant.addResourceScope(`api://${API_APP.clientId}`, API_SCOPE);
        await grant.save();
        return grant;
      },
      findAccount: (_ctx, id) => {
        const user = findDemoUser(id);
        if (!user) return undefined;
        return { accountId: user.login, claims: () => ({ sub: user.login, ...userClaims(user) }) };
      },
      formats: {
        customizers: {
          // Access tokens as Entra shapes them: an app-only token is the service principal's; a person's carries
          // their claims and the delegated scope in `scp`.
          jwt: (_ctx, token, jwt) => {
            const p = jwt.payload;
            const app = apps.find((a) => a.clientId === token.clientId);
            const extra: Record<string, unknown> = { tid: DEMO_TENANT_ID, ver: '2.0', azp: token.clientId };
            if (token.kind === 'ClientCredentials' && app) {
              Object.assign(extra, {
                sub: app.servicePrincipalId,
                oid: app.servicePrincipalId,
                idtyp: 'app',
                roles: app.roles,
              });
            } else {
              const user = 'accountId' in token ? findDemoUser(String(token.accountId)) : undefined;
              if (user) Object.assign(extra, userClaims(user), { scp: API_SCOPE, idtyp: 'user' });
            }
            Object.assign(p, extra);
            delete p.scope;
            delete p.client_id;
          },
        },
      },
      ttl: {
        AccessToken: 3600,
        IdToken: 3600,
        ClientCredentials: 3600,
        Interaction: 600,
        Session: 8 * 3600,
        Grant: 8 * 3600,
      },
    };
  }
}

function userClaims(user: DemoUser): Record<string, unknown> {
  return {
    tid: DEMO_TENANT_ID,
    oid: user.oid,
    ver: '2.0',
    name: user.name,
    preferred_username: user.preferredUsername,
    upn: user.upn,
    ...(user.email ? { email: user.email } : {}),
    groups: user.groups,
    roles: user.roles,
    acct: user.acct,
    ...(user.idp ? { idp: user.idp } : {}),
  };
}
