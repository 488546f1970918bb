/**
 * The sandbox's sign-in service: a real OpenID Connect provider (the `oidc-provider` library) standing in for
 * Microsoft Entra ID, with the demo directory of dev/auth/directory.ts. It signs people in at its own sign-in form
 * (any password), hands the App-Service-like front end (dev/auth/frontEnd.ts) an ID token through the
 * authorization code flow, signs the `jit` command in with a device code or in the browser (as MSAL does against
 * Entra), and issues access tokens shaped like Entra's v2 tokens — to people (for `jwt` mode) and, with client
 * credentials, to the demo apps (app-only tokens, as a pipeline's service principal gets).
 *
 * Entra's token claims it reproduces (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
 * `iss` `https://…/<tenant>/v2.0`, `aud` the API's client id, `ver: 2.0`, `tid`, `oid`, `scp` (delegated),
 * `roles`, `groups`, `azp`, `name`, `preferred_username`; the optional claims `upn`, `email`, `acct`, `idtyp`
 * (https://learn.microsoft.com/entra/identity-platform/optional-claims-reference); `idp` for a guest. An app-only
 * token's `sub` and `oid` are the service principal's object id.
 *
 * What MSAL (through @azure/identity, in the `jit` command) needs of an authority, served as Entra serves it:
 * - HTTPS only: MSAL refuses any other authority (`authority_uri_insecure`, UrlString.validateAsUri in
 *   AzureAD/microsoft-authentication-library-for-js lib/msal-common/src/url/UrlString.ts). The provider has a
 *   certificate of its own; this process trusts it (`trustProviderCertificate`), another process through
 *   NODE_EXTRA_CA_CERTS (the `caPem` written to a file).
 * - Its metadata at `<authority>/v2.0/.well-known/openid-configuration` for an authority `https://<host>/<tenant>`
 *   (Authority.defaultOpenIdConfigurationEndpoint, lib/msal-common/src/authority/Authority.ts), with an `issuer`
 *   of the authority's own scheme and host (Authority.validateIssuer, same file). Entra's endpoints, which this
 *   provider's mirror: `/<tenant>/oauth2/v2.0/{authorize,token,devicecode,logout}` and
 *   `/<tenant>/discovery/v2.0/keys`, the issuer `/<tenant>/v2.0`
 *   (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri).
 * - The device code endpoint is not read from the metadata: MSAL derives it from the token endpoint by replacing
 *   `/token` with `/devicecode` (Authority.deviceCodeEndpoint, same file) — Entra's path, so that is where it is.
 * - Instance discovery is asked of https://login.microsoftonline.com/common/discovery/instance whatever the
 *   authority (AAD_INSTANCE_DISCOVERY_ENDPT, lib/msal-common/src/utils/Constants.ts), which no sandbox can answer:
 *   a client points MSAL at a host of its own with @azure/identity's `disableInstanceDiscovery` (the `jit`
 *   command does so for any authority host that is not a Microsoft cloud's, cli/auth.ts).
 */
import { X509Certificate, createHash } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import * as tls from 'node:tls';
import { decodeJwt, exportJWK, generateKeyPair } from 'jose';
import type { JWK } from 'jose';
import Provider, { interactionPolicy } from 'oidc-provider';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import escapeHtml from 'escape-html';
import { API_APP, CLI_APP, DEMO_APPS, DEMO_TENANT_ID, findDemoUser } from './directory';
import { loopbackCertificate } from '../loopbackCertificate';
import { closeServer, listenOnLoopback } from './loopback';
import type { DemoUser } from './directory';

/** The scope people's tokens for the API carry (`scp`), as docs/deploy.md registers it. */
export const API_SCOPE = 'user_impersonation';

/**
 * `<API app id URI>/.default`: "all the permissions the app has been granted" on that resource
 * (https://learn.microsoft.com/entra/identity-platform/scopes-oidc#the-default-scope) — what `jit` asks for
 * (`jit config set scope api://<app id>/.default`). Granted as one of the API's scopes; its tokens carry the
 * API's statically consented scope in `scp`, as Entra's do.
 */
const DEFAULT_SCOPE = `api://${API_APP.clientId}/.default`;

/** Where the provider is mounted: Entra's endpoints live under `/<tenant>`. */
const MOUNT = `/${DEMO_TENANT_ID}`;

export interface OidcProviderOptions {
  /** Where the front end receives the authorization code (`<front end>/.auth/login/aad/callback`). */
  redirectUris: string[];
}

export class LocalOidcProvider {
  private server?: Server;
  private provider?: Provider;
  private base = '';
  private certificatePem?: string;

  constructor(private readonly options: OidcProviderOptions) {}

  /** `https://127.0.0.1:<port>`: what a client names as the authority host (`jit`'s `authority-host`). */
  get authorityHost(): string {
    return this.base;
  }

  /** `https://127.0.0.1:<port>/<tenant>/v2.0`, shaped like Entra's tenant-specific v2.0 issuer. */
  get issuer(): string {
    return `${this.base}${MOUNT}/v2.0`;
  }

  get jwksUri(): string {
    return `${this.base}${MOUNT}/discovery/v2.0/keys`;
  }

  /** The provider's certificate (PEM), for a process that must trust it: NODE_EXTRA_CA_CERTS, a browser. */
  get caPem(): string {
    if (!this.certificatePem) throw new Error('the provider is not started');
    return this.certificatePem;
  }

  async start(): Promise<void> {
    const certificate = await providerCertificate();
    trustProviderCertificate(certificate.cert);
    this.certificatePem = certificate.cert;
    const { server, port } = await listenOnLoopback((req, res) => this.handle(req, res), 0, certificate);
    this.server = server;
    this.base = `https://127.0.0.1:${port}`;
    const { privateKey } = await generateKeyPair('RS256', { extractable: true });
    const signing: JWK = { ...(await exportJWK(privateKey)), kid: 'sandbox-1', alg: 'RS256', use: 'sig' };
    this.provider = new Provider(this.issuer, this.configuration(signing));
    this.provider.use(entraResponseFields);
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    await closeServer(server);
  }

  /**
   * The provider lives under `/<tenant>`, as Entra's endpoints do; its metadata is also where Entra serves it,
   * under the issuer (`/<tenant>/v2.0/.well-known/openid-configuration`), which is where MSAL and openid-client
   * look for it.
   */
  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const provider = this.provider;
    if (!provider || !url.startsWith(`${MOUNT}/`)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    const inner = url.slice(MOUNT.length);
    const path = inner.startsWith('/v2.0/.well-known/') ? inner.slice('/v2.0'.length) : inner;
    // As Express mounts it: the provider reads its mount path from originalUrl (and builds its URLs from it).
    (req as IncomingMessage & { originalUrl?: string }).originalUrl = `${MOUNT}${path}`;
    req.url = path;
    if (req.method === 'POST' && path.split('?')[0] === '/oauth2/v2.0/token') {
      void withDeviceCodeGrantAlias(req).then(
        () => provider.callback()(req, res),
        () => res.writeHead(400, { 'content-type': 'text/plain' }).end('unreadable body'),
      );
      return;
    }
    void provider.callback()(req, res);
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
          // The command line's public client. `http://localhost` on a "mobile and desktop" registration takes
          // any port, as MSAL's browser sign-in listens on one it picks
          // (https://learn.microsoft.com/entra/identity-platform/reply-url#localhost-exceptions); a native
          // client in oidc-provider does the same for loopback addresses (RFC 8252 §7.3).
          client_id: CLI_APP.clientId,
          client_name: 'jit (sandbox)',
          application_type: 'native',
          grant_types: [
            'authorization_code',
            'urn:ietf:params:oauth:grant-type:device_code',
            'refresh_token',
          ],
          response_types: ['code'],
          redirect_uris: [CLI_APP.redirectUri, 'http://localhost'],
          token_endpoint_auth_method: 'none',
        },
        ...apps.map(clientOf),
      ],
      jwks: { keys: [signing] },
      cookies: { keys: ['sandbox-oidc-cookie-key'] },
      pkce: { required: () => false },
      scopes: ['openid', 'profile', 'email', 'offline_access'],
      claims: {
        openid: ['sub', 'tid', 'oid', 'ver', 'upn', 'acct', 'idp', 'groups', 'roles'],
        profile: ['name', 'preferred_username'],
        email: ['email'],
      },
      // ID tokens carry the claims themselves, as Entra's do (App Service builds the session principal from them).
      conformIdTokenClaims: false,
      interactions: { policy: promptsAsEntra() },
      routes: {
        authorization: '/oauth2/v2.0/authorize',
        token: '/oauth2/v2.0/token',
        device_authorization: '/oauth2/v2.0/devicecode',
        // Where https://microsoft.com/devicelogin leads: the page to enter the code at.
        code_verification: '/oauth2/deviceauth',
        end_session: '/oauth2/v2.0/logout',
        jwks: '/discovery/v2.0/keys',
        userinfo: '/oidc/userinfo',
      },
      features: {
        devInteractions: { enabled: true },
        clientCredentials: { enabled: true },
        deviceFlow: {
          enabled: true,
          // A short code a person reads off one screen and types on another.
          charset: 'base-20',
          mask: '*********',
          userCodeInputSource: deviceCodePage,
          userCodeConfirmSource: deviceConfirmPage,
          successSource: deviceDonePage,
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => `api://${API_APP.clientId}`,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({
            scope: `${API_SCOPE} ${DEFAULT_SCOPE}`,
            // Entra v2 access tokens name the API's client id as audience.
            audience: API_APP.clientId,
            accessTokenFormat: 'jwt',
            accessTokenTTL: 3600,
            jwt: { sign: { alg: 'RS256' } },
          }),
        },
      },
      // Sandbox people are not asked to consent: every grant a client asks for is given.
      loadExistingGrant: async (ctx: KoaContextWithOIDC) => {
        const grant = new ctx.oidc.provider.Grant({
          clientId: ctx.oidc.client!.clientId,
          accountId: ctx.oidc.session!.accountId!,
        });
        grant.addOIDCScope('openid profile email offline_access');
        grant.addResourceScope(`api://${API_APP.clientId}`, `${API_SCOPE} ${DEFAULT_SCOPE}`);
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
        // Entra's device codes last 15 minutes (`expires_in: 900`, v2-oauth2-device-code above).
        DeviceCode: 900,
        Interaction: 600,
        Session: 8 * 3600,
        Grant: 8 * 3600,
      },
    };
  }
}

/**
 * What Entra adds to two answers and MSAL reads:
 * - the device authorization answer's `message`, the sentence to show the person — MSAL hands it to the
 *   client's callback as is (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code#device-authorization-response);
 * - `client_info` in a token answer when the request asks for it (`client_info=1`, which MSAL always sends):
 *   base64url of `{"uid": <object id>, "utid": <tenant id>}`, from which MSAL keys the account
 *   (`<uid>.<utid>`, generateHomeAccountId in lib/msal-common/src/cache/utils/AccountEntityUtils.ts).
 */
async function entraResponseFields(ctx: KoaContextWithOIDC, next: () => Promise<void>): Promise<void> {
  await next();
  const body = ctx.body as Record<string, unknown> | undefined;
  if (ctx.status !== 200 || !body || typeof body !== 'object') return;
  if (ctx.oidc?.route === 'device_authorization' && typeof body.user_code === 'string') {
    body.message = `To sign in, use a web browser to open the page ${String(body.verification_uri)} and enter the code ${body.user_code} to authenticate.`;
  }
  const asked = ctx.oidc?.body?.client_info;
  if (ctx.oidc?.route === 'token' && asked === '1' && typeof body.id_token === 'string') {
    const claims = decodeJwt(body.id_token);
    body.client_info = Buffer.from(JSON.stringify({ uid: claims.oid, utid: claims.tid })).toString(
      'base64url',
    );
  }
}

/**
 * MSAL polls for a device code's tokens with `grant_type=device_code` (Constants.GrantType.DEVICE_CODE_GRANT in
 * lib/msal-common/src/utils/Constants.ts), which Entra takes as well as RFC 8628's
 * `urn:ietf:params:oauth:grant-type:device_code` that oidc-provider knows. Such a body is read here and handed on
 * with the standard name, as an already parsed body (oidc-provider takes `req.body` when the stream is read).
 */
async function withDeviceCodeGrantAlias(req: IncomingMessage): Promise<void> {
  if (!/^application\/x-www-form-urlencoded\b/i.test(req.headers['content-type'] ?? '')) return;
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  if (form.get('grant_type') === 'device_code')
    form.set('grant_type', 'urn:ietf:params:oauth:grant-type:device_code');
  (req as IncomingMessage & { body?: string }).body = form.toString();
}

/** The pages of the device code flow, plain like the sign-in form: enter the code, confirm, done. */
function page(title: string, content: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title></head><body><main><h1>${escapeHtml(title)}</h1>${content}</main></body></html>`;
}

function deviceCodePage(ctx: KoaContextWithOIDC, form: string, _out?: unknown, err?: unknown): void {
  ctx.type = 'html';
  ctx.body = page(
    'Enter code',
    `${err ? '<p>That code is not valid, or it expired. Try again.</p>' : '<p>Enter the code shown on your device to sign in.</p>'}${form}<button type="submit" form="op.deviceInputForm">Next</button>`,
  );
}

function deviceConfirmPage(
  ctx: KoaContextWithOIDC,
  form: string,
  client: { clientName?: string; clientId: string },
  _info: unknown,
  userCode: string,
): void {
  ctx.type = 'html';
  ctx.body = page(
    `Are you trying to sign in to ${client.clientName ?? client.clientId}?`,
    `<p>Only continue if the code on your device is <code>${escapeHtml(userCode)}</code>.</p>${form}<button type="submit" form="op.deviceConfirmForm">Continue</button><button type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Cancel</button>`,
  );
}

function deviceDonePage(ctx: KoaContextWithOIDC): void {
  const name = ctx.oidc.client?.clientName ?? ctx.oidc.client?.clientId ?? 'the application';
  ctx.type = 'html';
  ctx.body = page(
    'You are signed in',
    `<p>You have signed in to ${escapeHtml(name)} on your device. You may now close this window.</p>`,
  );
}

/**
 * oidc-provider's prompts, as Entra answers the same requests:
 * - Native clients (the command line) are not asked to consent at every sign-in: Entra asks once per app and person,
 *   or an administrator consents for the tenant
 *   (https://learn.microsoft.com/entra/identity-platform/application-consent-experience), and sandbox people have.
 * - `prompt=select_account`, which MSAL's browser sign-in sends through @azure/identity, is a value Entra takes: the
 *   person picks the account to sign in with even when a session exists
 *   (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-auth-code-flow#request-an-authorization-code).
 *   Here the sign-in form is where they pick it.
 */
function promptsAsEntra(): interactionPolicy.DefaultPolicy {
  const { Check, Prompt, base } = interactionPolicy;
  const policy = base();
  policy.get('consent')!.checks.remove('native_client_prompt');
  policy
    .get('login')!
    .checks.add(
      new Check(
        'select_account_prompt',
        'the client asked for an account to be chosen',
        'account_selection_required',
        (ctx) =>
          ctx.oidc.prompts.has('select_account') && !ctx.oidc.result?.login
            ? Check.REQUEST_PROMPT
            : Check.NO_NEED_TO_PROMPT,
      ),
    );
  // Named, so that a request may ask for it; answered by the sign-in form above, never an interaction of its own.
  const selectAccount = new Prompt({ name: 'select_account', requestable: true });
  selectAccount.checks.clear();
  policy.add(selectAccount);
  return policy;
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

/** The provider's key and self-signed certificate (the same one all through a process). */
export const providerCertificate = () => loopbackCertificate('sandbox identity provider');

/**
 * This process trusts the provider's certificate for every TLS client in it (the front end, the app validating
 * tokens in `jwt` mode, tests), as a machine trusts a certificate its owner installed: Entra's is trusted by every
 * machine, and nothing in the app should need to know it talks to a sandbox.
 */
function trustProviderCertificate(pem: string): void {
  if (typeof tls.setDefaultCACertificates !== 'function')
    throw new Error(
      'the sandbox identity provider needs Node.js 22.19 or later (tls.setDefaultCACertificates)',
    );
  tls.setDefaultCACertificates([...tls.getCACertificates('default'), pem]);
}

/** Chromium's `--ignore-certificate-errors-spki-list` entry for a certificate: base64 SHA-256 of its public key. */
export function spkiHash(pem: string): string {
  const spki = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(spki).digest('base64');
}
