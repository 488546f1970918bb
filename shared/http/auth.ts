import { createRemoteJWKSet, errors as joseErrors, jwtVerify } from 'jose';
import type { JWTPayload } from 'jose';
import { Unauthenticated } from '../domain/errors';
import type { Principal } from '../domain/types';
import type { AuthMode, AuthenticationConfig } from '../config';

/** The headers of an incoming call, case-insensitive (as @azure/functions' Headers are). */
export interface HeaderReader {
  get(name: string): string | null;
}

/** Header the local sandbox uses to name the caller. Honoured only in `dev` mode, which Azure refuses to start. */
export const DEV_USER_HEADER = 'x-jit-dev-user';

interface ClientPrincipal {
  auth_typ?: string;
  name_typ?: string;
  role_typ?: string;
  claims?: Array<{ typ: string; val: string }>;
}

const NAME_CLAIMS = [
  'preferred_username',
  'upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn',
  'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
  'email',
];
const OID_CLAIMS = ['oid', 'http://schemas.microsoft.com/identity/claims/objectidentifier'];

/** Establishes who is calling, or throws `Unauthenticated`. */
export type Authenticator = (headers: HeaderReader) => Promise<Principal>;

/**
 * The authenticator for the configured mode. In `jwt` mode the signing keys are fetched from the issuer's JWKS
 * endpoint and cached (jose refetches on an unknown `kid`, rate-limited), so key rollover needs no restart.
 */
export function createAuthenticator(
  config: AuthenticationConfig,
  onGroupOverage?: (id: string) => void,
): Authenticator {
  if (config.authMode !== 'jwt') return async (headers) => authenticate(config.authMode, headers);
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
        requiredClaims: ['exp', 'iat'],
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
    return principalFromClaims(payload, onGroupOverage);
  };
}

/**
 * A principal from token claims. Groups: Entra ID puts at most 200 group ids in a token; beyond that it sends an
 * overage marker instead. Then the caller's groups are unknown here, `group:` entries do not match them, and a
 * log line says so — configure the app registration to emit only groups assigned to the application.
 */
export function principalFromClaims(claims: JWTPayload, onGroupOverage?: (id: string) => void): Principal {
  const str = (k: string) => (typeof claims[k] === 'string' ? claims[k] : undefined);
  const list = (k: string) =>
    Array.isArray(claims[k])
      ? (claims[k] as unknown[]).filter((v): v is string => typeof v === 'string')
      : [];
  const id = str('preferred_username') ?? str('upn') ?? str('email') ?? str('oid') ?? str('sub');
  if (!id) throw new Unauthenticated('the token names no user');
  const claimNames = claims._claim_names as Record<string, unknown> | undefined;
  if (claimNames?.groups !== undefined || claims.hasgroups === true) onGroupOverage?.(id);
  return { id: id.toLowerCase(), displayName: str('name'), groups: list('groups'), roles: list('roles') };
}

/** The header-based modes (no I/O). */
export function authenticate(mode: AuthMode, headers: HeaderReader): Principal {
  if (mode === 'dev') {
    const user = headers.get(DEV_USER_HEADER)?.trim();
    if (!user)
      throw new Unauthenticated(`send the ${DEV_USER_HEADER} header naming the user (local sandbox)`);
    if (!/^[\w.@+-]{1,128}$/.test(user))
      throw new Unauthenticated(`${DEV_USER_HEADER} must be a user name or e-mail address`);
    const roles =
      headers
        .get('x-jit-dev-roles')
        ?.split(',')
        .map((r) => r.trim())
        .filter(Boolean) ?? [];
    const groups =
      headers
        .get('x-jit-dev-groups')
        ?.split(',')
        .map((g) => g.trim())
        .filter(Boolean) ?? [];
    return { id: user.toLowerCase(), groups, roles };
  }
  if (mode === 'jwt') throw new Error('jwt mode authenticates through createAuthenticator');
  // App Service Authentication strips any client-sent x-ms-client-principal and sets its own, so inside
  // Azure with authentication enabled (config refuses easyauth otherwise), this header is the platform's word.
  const raw = headers.get('x-ms-client-principal');
  if (!raw) throw new Unauthenticated('sign in through App Service Authentication');
  let cp: ClientPrincipal;
  try {
    cp = JSON.parse(Buffer.from(raw, 'base64').toString('utf8')) as ClientPrincipal;
  } catch {
    throw new Unauthenticated('the client principal header is malformed');
  }
  const claims = cp.claims ?? [];
  const first = (types: string[]) => claims.find((c) => types.includes(c.typ))?.val;
  const id = first(NAME_CLAIMS) ?? first(OID_CLAIMS);
  if (!id) throw new Unauthenticated('the client principal names no user');
  const roleType = cp.role_typ ?? 'roles';
  return {
    id: id.toLowerCase(),
    displayName: first(['name']),
    groups: claims.filter((c) => c.typ === 'groups').map((c) => c.val),
    roles: claims.filter((c) => c.typ === roleType || c.typ === 'roles').map((c) => c.val),
  };
}
