/**
 * Signing in to the sandbox without a browser, for tests and scripts: the same HTTP exchanges a browser makes
 * (redirects, the provider's sign-in form, cookies), followed by hand. A browser test does the same with Chromium.
 */
import * as oidc from 'openid-client';
import { API_APP } from './directory';
import type { DemoApp } from './directory';
import { API_SCOPE } from './provider';

/** The cookies of one pretend browser (loopback hosts only: no domain or port rules needed). */
class CookieJar {
  private readonly cookies = new Map<string, string>();

  read(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a)) || value === '';
      if (expired) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  get(name: string): string | undefined {
    return this.cookies.get(name);
  }
}

/** Who signs in, and how a walk through the provider's pages ends. */
interface Walk {
  login: string;
  /** The browser has arrived (checked before each request). */
  done?: (url: URL) => boolean;
  /** The device code to enter, where the walk starts at the code page. */
  userCode?: string;
  /** A page that ends the walk (the device code flow's last page). */
  landed?: (page: string) => boolean;
}

/** The hidden fields of a form, as a browser submits them. */
function hiddenFields(form: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const [, name, value] of form.matchAll(
    /<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g,
  ))
    fields[name!] = value!.replace(/&amp;/g, '&');
  return fields;
}

/**
 * Follows redirects by hand from `start`, filling in the provider's forms as a person would — the sign-in form as
 * `login`; the device code flow's code and confirmation — until `done(url)` says the browser has arrived or a page
 * `landed` on ends it. Returns the final URL and the jar.
 */
async function browse(
  start: string,
  walk: Walk,
  jar = new CookieJar(),
): Promise<{ url: URL; jar: CookieJar }> {
  const { login } = walk;
  let url = new URL(start);
  let method = 'GET';
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 20; hop++) {
    if (walk.done?.(url)) return { url, jar };
    const res = await fetch(url, {
      method,
      redirect: 'manual',
      headers: {
        cookie: jar.header(),
        ...(body ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body,
    });
    jar.read(res);
    method = 'GET';
    body = undefined;
    const location = res.headers.get('location');
    if (location) {
      url = new URL(location, url);
      await res.arrayBuffer();
      continue;
    }
    const page = await res.text();
    const form = /<form[^>]*action="([^"]+)"[\s\S]*?<\/form>/.exec(page);
    const action = form?.[1];
    if (res.status === 200 && form && action) {
      const fields = hiddenFields(form[0]);
      if (page.includes('name="login"'))
        body = new URLSearchParams({ prompt: 'login', login, password: 'any' });
      else if (form[0].includes('op.deviceInputForm') && walk.userCode)
        body = new URLSearchParams({ ...fields, user_code: walk.userCode });
      else if (form[0].includes('op.deviceConfirmForm')) body = new URLSearchParams(fields);
      if (body) {
        url = new URL(action.replace(/&amp;/g, '&'), url);
        method = 'POST';
        continue;
      }
    }
    if (res.status === 200 && walk.landed?.(page)) return { url, jar };
    throw new Error(`sign-in as ${login} stopped at ${url.href} (${res.status}): ${page.slice(0, 300)}`);
  }
  throw new Error(`sign-in as ${login} redirected too often`);
}

/**
 * Signs `login` in at the App-Service-like front end, as a browser would, and returns the session cookie to send
 * (`Cookie: AppServiceAuthSession=…`).
 */
export async function frontEndSession(frontEndBaseUrl: string, login: string): Promise<string> {
  const { jar } = await browse(
    `${frontEndBaseUrl}/.auth/login/aad?post_login_redirect_uri=%2F.auth%2Fsigned-in`,
    { login, done: (u) => u.pathname === '/.auth/signed-in' },
  );
  const session = jar.get('AppServiceAuthSession');
  if (!session) throw new Error(`no session cookie after signing in as ${login}`);
  return `AppServiceAuthSession=${session}`;
}

/**
 * An access token for the API for `login`, through the authorization code flow of the sandbox's command-line
 * client (a public client, as the Azure CLI is for Entra): what `jwt` mode's callers send.
 */
export async function userAccessToken(
  issuer: string,
  clientId: string,
  redirectUri: string,
  login: string,
): Promise<string> {
  const config = await oidc.discovery(new URL(issuer), clientId, undefined, oidc.None());
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const start = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: `openid ${API_SCOPE}`,
    resource: `api://${API_APP.clientId}`,
    state,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const { url } = await browse(start.href, { login, done: (u) => u.href.startsWith(redirectUri) });
  const tokens = await oidc.authorizationCodeGrant(
    config,
    url,
    { pkceCodeVerifier: verifier, expectedState: state },
    { resource: `api://${API_APP.clientId}` },
  );
  return tokens.access_token;
}

/** An app-only token for the API: the client credentials grant, as a pipeline's service principal gets one. */
export async function appAccessToken(issuer: string, app: DemoApp): Promise<string> {
  const config = await oidc.discovery(
    new URL(issuer),
    app.clientId,
    undefined,
    oidc.ClientSecretPost(app.clientSecret),
  );
  const tokens = await oidc.clientCredentialsGrant(config, { resource: `api://${API_APP.clientId}` });
  return tokens.access_token;
}

/**
 * The person's side of a device code sign-in, as they would do it in a browser on another device: open the page the
 * device named, enter the code, confirm, sign in as `login`, and see the page saying they are signed in.
 */
export async function completeDeviceCode(
  verificationUri: string,
  userCode: string,
  login: string,
): Promise<void> {
  await browse(verificationUri, { login, userCode, landed: (page) => page.includes('You are signed in') });
}
