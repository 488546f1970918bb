import { Unauthenticated } from '../domain/errors';
import type { Principal } from '../domain/types';
import type { AuthMode } from '../config';

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
  // App Service Authentication strips any client-sent x-ms-client-principal and sets its own, so inside
  // Azure with authentication required, this header is the platform's word.
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
