/**
 * App Service Authentication ("Easy Auth") in front of the sandbox's local host, configured by the same
 * authsettingsV2 properties infra/modules/function-app.bicep deploys (test/infra checks they agree) and served to
 * the app by the ARM emulator, which the app reads at start-up. What it does, and where App Service says so:
 *
 * - Strips every client-sent `X-MS-CLIENT-PRINCIPAL*` (and `X-MS-TOKEN-*`) header: "External requests aren't
 *   allowed to set these headers, so they're present only if set by App Service"
 *   (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities).
 * - Signs browsers in (server-directed flow): `GET /.auth/login/aad?post_login_redirect_uri=<path>` redirects to
 *   the provider, the provider returns to `/.auth/login/aad/callback`, which sets the session cookie
 *   `AppServiceAuthSession` and redirects to `post_login_redirect_uri` — a path of this site, or a URL of the same
 *   host (https://learn.microsoft.com/azure/app-service/configure-authentication-customize-sign-in-out,
 *   https://learn.microsoft.com/azure/app-service/overview-authentication-authorization#authentication-flow).
 *   `/.auth/logout` clears the session. The session lasts 8 hours (`login.cookieExpiration`, FixedTime 08:00:00,
 *   https://learn.microsoft.com/azure/app-service/configure-authentication-file-based).
 * - Validates bearer tokens itself (client-directed flow): issuer, signature, lifetime and `allowedAudiences`; an
 *   invalid token is a 401, on every path.
 * - A request without a session or a token: on a path in `excludedPaths` it goes through anonymously; elsewhere,
 *   with `requireAuthentication`, `unauthenticatedClientAction` decides — `Return401` (with `WWW-Authenticate`
 *   unless `disableWWWAuthenticate`), `Return403`, or `RedirectToLoginPage` (302 to `/.auth/login/aad`; the docs
 *   answer 401 to native clients instead, which this front end does not try to recognise)
 *   (https://learn.microsoft.com/azure/app-service/overview-authentication-authorization#authorization-behavior,
 *   https://learn.microsoft.com/rest/api/appservice/web-apps/get-auth-settings-v2 for the fields).
 * - Otherwise injects the caller: `X-MS-CLIENT-PRINCIPAL` (base64 JSON: `auth_typ`, `claims` of `typ`/`val`,
 *   `name_typ`, `role_typ`), `X-MS-CLIENT-PRINCIPAL-ID` (object id), `-NAME`, `-IDP` (`aad`). Claim types go
 *   through the .NET default inbound claim mapping App Service applies ("These claims go through a default
 *   claims-mapping process", same page); the mapped names as App Service sends them are in
 *   https://github.com/MaximRouiller/MaximeRouiller.Azure.AppService.EasyAuth/issues/4.
 */
import { randomBytes } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import { closeServer, listenOnLoopback } from './loopback';

/** The properties of authsettingsV2 the front end obeys (the same names as the ARM resource). */
export interface FrontEndAuthSettings {
  platform: { enabled: boolean };
  globalValidation: {
    requireAuthentication: boolean;
    unauthenticatedClientAction: 'RedirectToLoginPage' | 'AllowAnonymous' | 'Return401' | 'Return403';
    redirectToProvider?: string;
    excludedPaths: string[];
  };
  identityProviders: {
    azureActiveDirectory: {
      enabled: boolean;
      registration: { clientId: string; openIdIssuer: string };
      validation: { allowedAudiences: string[] };
      login: { disableWWWAuthenticate: boolean };
    };
  };
  login: { tokenStore: { enabled: boolean } };
}

/**
 * What infra/modules/function-app.bicep deploys, for a given client id and issuer. Browser sign-in happens only
 * where the app asks for it (the approval page); the health route answers anonymous probes; every other call
 * without a valid token or session gets a 401 from the platform.
 */
export function deployedAuthSettings(clientId: string, openIdIssuer: string): FrontEndAuthSettings {
  return {
    platform: { enabled: true },
    globalValidation: {
      requireAuthentication: true,
      unauthenticatedClientAction: 'Return401',
      redirectToProvider: 'azureactivedirectory',
      excludedPaths: ['/api/approvals', '/api/health'],
    },
    identityProviders: {
      azureActiveDirectory: {
        enabled: true,
        registration: { clientId, openIdIssuer },
        validation: { allowedAudiences: [clientId, `api://${clientId}`] },
        login: { disableWWWAuthenticate: false },
      },
    },
    login: { tokenStore: { enabled: false } },
  };
}

/** Claim types App Service renames (the .NET inbound claim map); the others keep their names. */
const MAPPED: Readonly<Record<string, string>> = {
  oid: 'http://schemas.microsoft.com/identity/claims/objectidentifier',
  tid: 'http://schemas.microsoft.com/identity/claims/tenantid',
  sub: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier',
  upn: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  email: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  scp: 'http://schemas.microsoft.com/identity/claims/scope',
  idp: 'http://schemas.microsoft.com/identity/claims/identityprovider',
};
const NAME_TYPE = 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress';
const ROLE_TYPE = 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role';

const SESSION_COOKIE = 'AppServiceAuthSession';
const LOGIN_COOKIE = 'Nonce';
const SESSION_LIFETIME_IN_MS = 8 * 3600_000;

interface PendingLogin {
  state: string;
  nonce: string;
  codeVerifier: string;
  returnTo: string;
}

export interface EasyAuthFrontEndOptions {
  settings: FrontEndAuthSettings;
  /** The provider's JWKS, for bearer tokens. */
  jwksUri: string;
  /** The registration's client secret (in Azure, `clientSecretSettingName` names where it is). */
  clientSecret: string;
}

export class EasyAuthFrontEnd {
  private server?: Server;
  private port = 0;
  private target?: URL;
  private client?: oidc.Configuration;
  private readonly sessions = new Map<string, { claims: JWTPayload; expiresAt: number }>();
  private readonly logins = new Map<string, PendingLogin>();
  private keys?: ReturnType<typeof createRemoteJWKSet>;
  private configured?: EasyAuthFrontEndOptions;

  /** The settings, once the provider they name runs (it needs this front end's address first). */
  configure(options: EasyAuthFrontEndOptions): void {
    this.configured = options;
    this.keys = createRemoteJWKSet(new URL(options.jwksUri));
    this.client = undefined;
  }

  private get options(): EasyAuthFrontEndOptions {
    if (!this.configured) throw new Error('the front end is not configured yet');
    return this.configured;
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Listens on a port (0: a free one) before the local host starts, so links in mail can name it. */
  async listen(port = 0): Promise<void> {
    const listening = await listenOnLoopback((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`front end: ${String(err)}`);
      });
    }, port);
    this.server = listening.server;
    this.port = listening.port;
  }

  /** Where requests go once past authentication: the local host. */
  forwardTo(baseUrl: string): void {
    this.target = new URL(baseUrl);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server);
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.baseUrl);
    const settings = this.options.settings;
    const headers = withoutPlatformHeaders(req.headers);
    if (url.pathname === '/.auth/login/aad' && req.method === 'GET') return this.startLogin(url, res);
    if (url.pathname === '/.auth/login/aad/callback' && req.method === 'GET')
      return this.finishLogin(req, url, res);
    if (url.pathname === '/.auth/logout') {
      const sid = cookie(req, SESSION_COOKIE);
      if (sid) this.sessions.delete(sid);
      res
        .writeHead(302, {
          Location:
            sameSiteTarget(url.searchParams.get('post_logout_redirect_uri'), this.baseUrl) ??
            '/.auth/logout/done',
          'Set-Cookie': `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0`,
        })
        .end();
      return;
    }
    if (url.pathname.startsWith('/.auth/')) return void res.writeHead(404).end();

    let claims: JWTPayload | undefined;
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    if (bearer) {
      claims = await this.verifyBearer(bearer);
      if (!claims) return this.refuse(res, 401, url);
    } else {
      claims = this.session(req);
    }
    if (
      !claims &&
      settings.platform.enabled &&
      settings.globalValidation.requireAuthentication &&
      !this.excluded(url)
    ) {
      const action = settings.globalValidation.unauthenticatedClientAction;
      if (action === 'Return401') return this.refuse(res, 401, url);
      if (action === 'Return403') return this.refuse(res, 403, url);
      if (action === 'RedirectToLoginPage') {
        res
          .writeHead(302, {
            Location: `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(url.pathname + url.search)}`,
          })
          .end();
        return;
      }
    }
    if (claims) Object.assign(headers, principalHeaders(claims));
    await this.forward(req, res, headers);
  }

  /** `excludedPaths`: exact paths (a trailing slash or a query string does not matter). */
  private excluded(url: URL): boolean {
    const path = url.pathname.replace(/\/+$/, '').toLowerCase();
    return this.options.settings.globalValidation.excludedPaths.some(
      (p) => p.replace(/\/+$/, '').toLowerCase() === path,
    );
  }

  private refuse(res: ServerResponse, status: 401 | 403, url: URL): void {
    const aad = this.options.settings.identityProviders.azureActiveDirectory;
    const challenge =
      status === 401 && !aad.login.disableWWWAuthenticate
        ? {
            'WWW-Authenticate': `Bearer realm="${url.host}" authorization_uri="${aad.registration.openIdIssuer.replace(/\/v2\.0$/, '')}/oauth2/v2.0/authorize" resource_id="${aad.registration.clientId}"`,
          }
        : {};
    res
      .writeHead(status, { 'Content-Type': 'text/html', ...challenge })
      .end(status === 401 ? 'You do not have permission to view this directory or page.' : 'Forbidden');
  }

  private async provider(): Promise<oidc.Configuration> {
    const aad = this.options.settings.identityProviders.azureActiveDirectory;
    this.client ??= await oidc.discovery(
      new URL(aad.registration.openIdIssuer),
      aad.registration.clientId,
      undefined,
      oidc.ClientSecretPost(this.options.clientSecret),
    );
    return this.client;
  }

  private async startLogin(url: URL, res: ServerResponse): Promise<void> {
    const returnTo = sameSiteTarget(url.searchParams.get('post_login_redirect_uri'), this.baseUrl) ?? '/';
    const login: PendingLogin = {
      state: oidc.randomState(),
      nonce: oidc.randomNonce(),
      codeVerifier: oidc.randomPKCECodeVerifier(),
      returnTo,
    };
    const id = randomBytes(16).toString('base64url');
    this.logins.set(id, login);
    const config = await this.provider();
    const to = oidc.buildAuthorizationUrl(config, {
      redirect_uri: `${this.baseUrl}/.auth/login/aad/callback`,
      scope: 'openid profile email',
      response_type: 'code',
      state: login.state,
      nonce: login.nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(login.codeVerifier),
      code_challenge_method: 'S256',
    });
    res
      .writeHead(302, {
        Location: to.href,
        'Set-Cookie': `${LOGIN_COOKIE}=${id}; Path=/.auth/login/aad; HttpOnly; SameSite=Lax; Max-Age=600`,
        'Cache-Control': 'no-store',
      })
      .end();
  }

  private async finishLogin(req: IncomingMessage, url: URL, res: ServerResponse): Promise<void> {
    const id = cookie(req, LOGIN_COOKIE);
    const login = id ? this.logins.get(id) : undefined;
    if (!id || !login)
      return void res.writeHead(401, { 'Content-Type': 'text/plain' }).end('no sign-in in progress');
    this.logins.delete(id);
    const config = await this.provider();
    let tokens;
    try {
      tokens = await oidc.authorizationCodeGrant(config, new URL(url.pathname + url.search, this.baseUrl), {
        pkceCodeVerifier: login.codeVerifier,
        expectedState: login.state,
        expectedNonce: login.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      res.writeHead(401, { 'Content-Type': 'text/plain' }).end(`sign-in failed: ${String(err)}`);
      return;
    }
    const sid = randomBytes(24).toString('base64url');
    this.sessions.set(sid, { claims: tokens.claims() ?? {}, expiresAt: Date.now() + SESSION_LIFETIME_IN_MS });
    res
      .writeHead(302, {
        Location: login.returnTo,
        'Set-Cookie': [
          `${SESSION_COOKIE}=${sid}; Path=/; HttpOnly; SameSite=Lax`,
          `${LOGIN_COOKIE}=; Path=/.auth/login/aad; HttpOnly; Max-Age=0`,
        ],
        'Cache-Control': 'no-store',
      })
      .end();
  }

  private session(req: IncomingMessage): JWTPayload | undefined {
    const sid = cookie(req, SESSION_COOKIE);
    const s = sid ? this.sessions.get(sid) : undefined;
    if (!s || s.expiresAt < Date.now()) return undefined;
    return s.claims;
  }

  private async verifyBearer(token: string): Promise<JWTPayload | undefined> {
    const aad = this.options.settings.identityProviders.azureActiveDirectory;
    try {
      const { payload } = await jwtVerify(token, this.keys!, {
        issuer: aad.registration.openIdIssuer,
        audience: aad.validation.allowedAudiences,
        algorithms: ['RS256'],
      });
      return payload;
    } catch {
      return undefined;
    }
  }

  private async forward(
    req: IncomingMessage,
    res: ServerResponse,
    headers: IncomingHttpHeaders,
  ): Promise<void> {
    const target = this.target;
    if (!target)
      return void res.writeHead(503, { 'content-type': 'text/plain' }).end('the app is not running');
    await new Promise<void>((resolve) => {
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
          answer.on('end', resolve);
        },
      );
      upstream.on('error', (err) => {
        if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`front end: ${String(err)}`);
        resolve();
      });
      req.pipe(upstream);
    });
  }
}

/** The request's headers without anything only the platform may set. */
function withoutPlatformHeaders(h: IncomingHttpHeaders): IncomingHttpHeaders {
  const out: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(h)) {
    if (/^x-ms-client-principal/i.test(k) || /^x-ms-token-/i.test(k)) continue;
    out[k] = v;
  }
  return out;
}

/** The headers App Service adds for a signed-in caller. */
function principalHeaders(claims: JWTPayload): Record<string, string> {
  const list: Array<{ typ: string; val: string }> = [];
  for (const [k, v] of Object.entries(claims)) {
    for (const one of Array.isArray(v) ? v : [v]) {
      if (one === undefined || one === null) continue;
      list.push({
        typ: MAPPED[k] ?? k,
        val: typeof one === 'object' ? JSON.stringify(one) : String(one as string),
      });
    }
  }
  const principal = { auth_typ: 'aad', claims: list, name_typ: NAME_TYPE, role_typ: ROLE_TYPE };
  const name = claims.preferred_username ?? claims.upn ?? claims.email;
  return {
    'x-ms-client-principal': Buffer.from(JSON.stringify(principal)).toString('base64'),
    'x-ms-client-principal-id': typeof claims.oid === 'string' ? claims.oid : (claims.sub ?? ''),
    'x-ms-client-principal-name': typeof name === 'string' ? name : '',
    'x-ms-client-principal-idp': 'aad',
  };
}

/** A `post_login_redirect_uri` App Service follows: a path of this site, or an absolute URL of its own host. */
function sameSiteTarget(value: string | null, base: string): string | undefined {
  if (!value) return undefined;
  let target: URL;
  try {
    target = new URL(value, base);
  } catch {
    return undefined;
  }
  return target.origin === new URL(base).origin ? `${target.pathname}${target.search}` : undefined;
}

function cookie(req: IncomingMessage, name: string): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}
