/**
 * Who is calling. Three modes (JIT_AUTH_MODE):
 * - `easyauth`: App Service Authentication signed the caller in (a browser session or a bearer token it validated)
 *   and put them in `x-ms-client-principal`. Trusted only once the app has read its own authsettingsV2 through ARM
 *   and found authentication required (shared/usecases/serving.ts), because the platform strips a client-sent copy
 *   of the header only where its authentication is on.
 * - `jwt`: the app validates a bearer token itself, as App Service would: signature against the issuer's keys,
 *   issuer, audience, lifetime, and Entra's v2 claims.
 * - `dev`: the local sandbox names the caller in a header, and only callers on this machine are answered.
 *
 * Both Entra modes produce the principal from the same claims: keyed by tenant and object id, a UPN only for a
 * member account, an app-only token recognised as an app (docs/security.md).
 */
import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { Unauthenticated } from '../domain/errors';
import { isLoopbackAddress, parseClientAddress } from '../domain/network';
import { isGuid } from '../domain/policy';
import type { Principal } from '../domain/types';
import type { AuthMode, AuthenticationConfig } from '../config';

/** The headers of an incoming call, case-insensitive (as @azure/functions' Headers are). */
export interface HeaderReader {
  get(name: string): string | null;
}

/** Header the local sandbox uses to name the caller. Honoured only in `dev` mode, for callers on this machine. */
const DEV_USER_HEADER = 'x-jit-dev-user';

/** Establishes who is calling, or throws `Unauthenticated`. */
export type Authenticator = (headers: HeaderReader) => Promise<Principal>;

export interface AuthenticatorOptions {
  /**
   * `easyauth`: the platform's settings as the app verified them at start-up (the tenant its issuer names). Throws
   * when they could not be verified, so that no header is trusted before they are.
   */
  platform?: () => Promise<{ tenantId: string }>;
  onGroupOverage?: (id: string) => void;
}

/**
 * The authenticator for the configured mode. In `jwt` mode the signing keys are fetched from the issuer's JWKS
 * endpoint and cached (jose refetches on an unknown `kid`, rate-limited), so key rollover needs no restart.
 */
export function createAuthenticator(
  config: AuthenticationConfig,
  options: AuthenticatorOptions = {},
): Authenticator {
  if (config.authMode === 'dev') return async (headers) => authenticateDev(headers);
  if (config.authMode === 'easyauth') {
    const platform = options.platform;
    if (!platform) throw new Error('easyauth mode without a check of the platform settings');
    return async (headers) => {
      const { tenantId } = await platform();
      const claims = clientPrincipalClaims(headers);
      if (!claims) throw new Unauthenticated('sign in through App Service Authentication');
      return principalFromClaims(claims, tenantId, options.onGroupOverage);
    };
  }
  const jwt = config.jwt;
  if (!jwt) throw new Error('jwt mode without jwt settings');
  const keys = createRemoteJWKSet(new URL(jwt.jwksUri), {
    cacheMaxAge: 10 * 60_000,
    cooldownDuration: 30_000,
  });
  return async (headers) => {
    const auth = headers.get('authorization') ?? '';
    const m = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(auth.trim());
    if (!m?.[1]) throw new Unauthenticated('send a bearer token in the Authorization header');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(m[1], keys, {
        issuer: jwt.issuer,
        audience: jwt.audiences,
        // Only what Entra ID signs with; never `none`, never an HMAC a public key could be abused as.
        algorithms: ['RS256'],
        clockTolerance: 60,
        requiredClaims: ['exp', 'iat', 'tid', 'oid', 'sub'],
      }));
    } catch (err) {
      const reason =
        err instanceof joseErrors.JWTExpired
          ? 'the token has expired'
          : err instanceof joseErrors.JWTClaimValidationFailed
            ? `the token's ${err.claim} claim is not accepted`
            : 'the token is not valid';
      throw new Unauthenticated(reason);
    }
    // v2.0 access tokens only (https://learn.microsoft.com/entra/identity-platform/access-token-claims-reference):
    // a v1 token names its app and user with other claims, and its issuer is sts.windows.net.
    if (payload.ver !== '2.0') throw new Unauthenticated("the token's ver claim is not accepted (want 2.0)");
    return principalFromClaims(claimsOfPayload(payload), jwt.tenantId, options.onGroupOverage);
  };
}

/** Claim values by claim type, as both a token and the platform's principal header can be read into. */
export type Claims = ReadonlyMap<string, readonly string[]>;

/**
 * App Service hands the claims on after "a default claims-mapping process"
 * (https://learn.microsoft.com/azure/app-service/configure-authentication-user-identities#decode-the-client-principal-header):
 * the .NET inbound claim map, which renames some short JWT claims to these URIs while others (`name`,
 * `preferred_username`, `roles`, `groups`) keep their names — a decoded header with both kinds is in
 * https://github.com/MaximRouiller/MaximeRouiller.Azure.AppService.EasyAuth/issues/4. Read back to the short names.
 */
const MAPPED_CLAIM_TYPES: Readonly<Record<string, string>> = {
  'http://schemas.microsoft.com/identity/claims/objectidentifier': 'oid',
  'http://schemas.microsoft.com/identity/claims/tenantid': 'tid',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier': 'sub',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn': 'upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress': 'email',
  'http://schemas.microsoft.com/identity/claims/scope': 'scp',
  'http://schemas.microsoft.com/identity/claims/identityprovider': 'idp',
  'http://schemas.microsoft.com/ws/2008/06/identity/claims/role': 'roles',
};

interface ClientPrincipal {
  auth_typ?: unknown;
  name_typ?: unknown;
  role_typ?: unknown;
  claims?: unknown;
}

/** The claims in `x-ms-client-principal`, short-named; undefined when the header is absent. */
export function clientPrincipalClaims(headers: HeaderReader): Claims | undefined {
  const raw = headers.get('x-ms-client-principal');
  if (!raw) return undefined;
  let cp: ClientPrincipal;
  try {
    cp = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as ClientPrincipal;
  } catch {
    throw new Unauthenticated('the client principal header is malformed');
  }
  if (!Array.isArray(cp?.claims)) throw new Unauthenticated('the client principal header holds no claims');
  const roleType = typeof cp.role_typ === 'string' ? cp.role_typ : undefined;
  const out = new Map<string, string[]>();
  for (const c of cp.claims as Array<{ typ?: unknown; val?: unknown }>) {
    if (typeof c?.typ !== 'string' || typeof c.val !== 'string') continue;
    const typ = c.typ === roleType ? 'roles' : (MAPPED_CLAIM_TYPES[c.typ] ?? c.typ);
    out.set(typ, [...(out.get(typ) ?? []), c.val]);
  }
  return out;
}

/** A verified token's payload as claims: arrays stay lists, numbers and booleans become their text. */
export function claimsOfPayload(payload: JWTPayload): Claims {
  const out = new Map<string, string[]>();
  for (const [k, v] of Object.entries(payload)) {
    const values = Array.isArray(v) ? v : [v];
    out.set(
      k,
      values
        .filter((x) => x !== null && x !== undefined)
        .map((x) => (typeof x === 'object' ? JSON.stringify(x) : String(x as string | number | boolean))),
    );
  }
  return out;
}

/**
 * The principal the claims describe, or `Unauthenticated`.
 * - Keyed by `tid` and `oid`; a token of another tenant than the app's is refused.
 * - An app-only token (`idtyp: app`; without that optional claim, no `scp` and `oid` equal to `sub`, as Entra
 *   issues them to a service principal) is an app, named by its client id (`azp`, or v1 `appid`).
 * - `upn` is kept only for a member account: not when `acct` says guest (1), not when `idp` names another issuer
 *   than the token's (a guest signed in at their home tenant), not for a `#EXT#` UPN.
 *   https://learn.microsoft.com/entra/identity-platform/optional-claims-reference (acct),
 *   https://learn.microsoft.com/entra/identity-platform/id-token-claims-reference (idp).
 * - Groups: Entra ID puts at most 200 group ids in a token; beyond that it sends an overage marker instead. Then
 *   the caller's groups are unknown here, `group:` entries do not match them, and a log line says so.
 */
export function principalFromClaims(
  claims: Claims,
  tenantId: string,
  onGroupOverage?: (id: string) => void,
): Principal {
  const one = (k: string) => claims.get(k)?.[0]?.trim() || undefined;
  const list = (k: string) => [...(claims.get(k) ?? [])];
  const tid = one('tid')?.toLowerCase();
  const oid = one('oid')?.toLowerCase();
  if (!tid || !oid || !isGuid(tid) || !isGuid(oid))
    throw new Unauthenticated('the token names no tenant and object id (tid, oid)');
  if (tid !== tenantId.toLowerCase())
    throw new Unauthenticated('the token was issued for another tenant than this app');
  const id = `${tid}/${oid}`;
  const idtyp = one('idtyp');
  const isApp = idtyp ? idtyp === 'app' : !claims.has('scp') && one('sub')?.toLowerCase() === oid;
  if (claims.has('hasgroups') || one('_claim_names')?.includes('groups')) onGroupOverage?.(id);
  const roles = list('roles');
  if (isApp) {
    const appId = (one('azp') ?? one('appid'))?.toLowerCase();
    if (!appId) throw new Unauthenticated('the app-only token names no client id (azp)');
    return { id, kind: 'app', name: `app:${appId}`, tenantId: tid, objectId: oid, appId, groups: [], roles };
  }
  const upn = one('upn');
  const guest =
    one('acct') === '1' ||
    (one('idp') !== undefined && one('idp') !== one('iss')) ||
    (upn?.toLowerCase().includes('#ext#') ?? false);
  const memberUpn = upn && !guest ? upn.toLowerCase() : undefined;
  const displayName = one('name');
  return {
    id,
    kind: 'user',
    name: memberUpn ?? one('preferred_username')?.toLowerCase() ?? displayName ?? oid,
    tenantId: tid,
    objectId: oid,
    ...(memberUpn ? { upn: memberUpn } : {}),
    ...(displayName ? { displayName } : {}),
    groups: list('groups'),
    roles,
  };
}

/**
 * `dev` mode: the caller is who the header says, so it must be someone at this very machine. Every address in the
 * forwarding chain must be a loopback address: the local host appends the socket's, so a caller elsewhere, or a
 * proxy on this machine passing on a caller from elsewhere, is refused.
 */
export function assertLoopbackCaller(headers: HeaderReader): void {
  const chain = (headers.get('x-forwarded-for') ?? '').split(',').map(parseClientAddress);
  if (!chain.every((a) => a !== undefined && isLoopbackAddress(a)))
    throw new Unauthenticated('dev mode answers callers on this machine only');
}

/** `dev` mode: the header names the caller (local sandbox). */
export function authenticateDev(headers: HeaderReader): Principal {
  assertLoopbackCaller(headers);
  const user = headers.get(DEV_USER_HEADER)?.trim();
  if (!user) throw new Unauthenticated(`send the ${DEV_USER_HEADER} header naming the user (local sandbox)`);
  if (!/^[\w.@+-]{1,128}$/.test(user))
    throw new Unauthenticated(`${DEV_USER_HEADER} must be a user name or e-mail address`);
  const split = (name: string) =>
    headers
      .get(name)
      ?.split(',')
      .map((r) => r.trim())
      .filter(Boolean) ?? [];
  const name = user.toLowerCase();
  // The sandbox's people are members of its pretend tenant: the name is their UPN.
  return {
    id: name,
    kind: 'user',
    name,
    upn: name,
    groups: split('x-jit-dev-groups'),
    roles: split('x-jit-dev-roles'),
  };
}

/** Whether a header-based mode finds a signed-in person in these headers (pages; no I/O in `dev`). */
export function hasSignedInHeaders(mode: AuthMode, headers: HeaderReader): boolean {
  if (mode === 'dev') return Boolean(headers.get(DEV_USER_HEADER));
  if (mode === 'easyauth') return Boolean(headers.get('x-ms-client-principal'));
  return Boolean(headers.get('authorization'));
}

/** The body of a `/.auth/login/aad` link that returns the browser to `returnTo` (a path on this site). */
export function signInPath(returnTo: string): string {
  return `/.auth/login/aad?post_login_redirect_uri=${encodeURIComponent(returnTo)}`;
}
