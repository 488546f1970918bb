import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Unauthenticated } from '../../../shared/domain/errors';
import { principalMatches } from '../../../shared/domain/policy';
import {
  authenticateDev,
  claimsOfPayload,
  clientPrincipalClaims,
  principalFromClaims,
} from '../../../shared/http/auth';
import { toProblem } from '../../../shared/http/problem';
import { AccessNotAllowed, InvalidRequest, TransientFailure } from '../../../shared/domain/errors';

const TENANT = '11111111-1111-1111-1111-111111111111';
const OTHER_TENANT = '99999999-9999-9999-9999-999999999999';
const BOB_OID = '22222222-2222-2222-2222-222222222222';
const GUEST_OID = '33333333-3333-3333-3333-333333333333';
const APP_OID = '44444444-4444-4444-4444-444444444444';
const APP_ID = '55555555-5555-5555-5555-555555555555';
const ISS = `https://login.microsoftonline.com/${TENANT}/v2.0`;

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });

/** The header App Service sends, claims renamed by its default mapping (shape from the App Service docs). */
const clientPrincipal = (claims: Array<[string, string]>) =>
  Buffer.from(
    JSON.stringify({
      auth_typ: 'aad',
      claims: claims.map(([typ, val]) => ({ typ, val })),
      name_typ: 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress',
      role_typ: 'http://schemas.microsoft.com/ws/2008/06/identity/claims/role',
    }),
  ).toString('base64');

test('dev mode names the caller from its header, only a plausible name, and only for callers on this machine', () => {
  const local = { 'x-forwarded-for': '127.0.0.1' };
  const alice = authenticateDev(headers({ ...local, 'x-jit-dev-user': 'Alice@contoso.com' }));
  assert.equal(alice.id, 'alice@contoso.com');
  assert.equal(alice.upn, 'alice@contoso.com');
  assert.throws(() => authenticateDev(headers(local)), Unauthenticated);
  assert.throws(
    () => authenticateDev(headers({ ...local, 'x-jit-dev-user': 'a b\r\nX: y' })),
    Unauthenticated,
  );
  // From another machine, directly or through a proxy on this one, the header names nobody.
  for (const xff of ['203.0.113.9', '203.0.113.9, 127.0.0.1', '', 'not-an-address', '::1, 10.0.0.4:5123'])
    assert.throws(
      () => authenticateDev(headers({ 'x-forwarded-for': xff, 'x-jit-dev-user': 'alice@contoso.com' })),
      Unauthenticated,
      xff,
    );
  assert.equal(
    authenticateDev(
      headers({ 'x-forwarded-for': '::1, [::1]:5123, ::ffff:127.0.0.1', 'x-jit-dev-user': 'a' }),
    ).id,
    'a',
  );
});

test('the platform principal: keyed by tenant and object id, mapped claim types read back, the dev header ignored', () => {
  const claims = clientPrincipalClaims(
    headers({
      'x-ms-client-principal': clientPrincipal([
        ['iss', ISS],
        ['http://schemas.microsoft.com/identity/claims/tenantid', TENANT],
        ['http://schemas.microsoft.com/identity/claims/objectidentifier', BOB_OID.toUpperCase()],
        ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier', 'pairwise-sub'],
        ['http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn', 'Bob@Contoso.com'],
        ['preferred_username', 'bob@contoso.com'],
        ['name', 'Bob Builder'],
        ['groups', 'g1'],
        ['roles', 'Jit.Admin'],
        ['http://schemas.microsoft.com/ws/2008/06/identity/claims/role', 'Jit.Auditor'],
      ]),
      'x-jit-dev-user': 'alice@contoso.com',
    }),
  )!;
  const bob = principalFromClaims(claims, TENANT);
  assert.deepEqual(bob, {
    id: `${TENANT}/${BOB_OID}`,
    kind: 'user',
    name: 'bob@contoso.com',
    tenantId: TENANT,
    objectId: BOB_OID,
    upn: 'bob@contoso.com',
    displayName: 'Bob Builder',
    groups: ['g1'],
    roles: ['Jit.Admin', 'Jit.Auditor'],
  });
  assert.ok(principalMatches(bob, ['user:bob@contoso.com']));
  assert.ok(principalMatches(bob, [`user:${BOB_OID}`]));
  assert.throws(() => principalFromClaims(claims, OTHER_TENANT), /another tenant/);
  assert.throws(
    () => clientPrincipalClaims(headers({ 'x-ms-client-principal': 'not base64 json' })),
    Unauthenticated,
  );
  assert.equal(clientPrincipalClaims(headers({ 'x-jit-dev-user': 'alice' })), undefined);
});

test('a guest whose email (and preferred_username) is a member’s UPN is not that member', () => {
  const guest = principalFromClaims(
    claimsOfPayload({
      iss: ISS,
      tid: TENANT,
      oid: GUEST_OID,
      sub: 'pairwise',
      scp: 'user_impersonation',
      idp: `https://sts.windows.net/${OTHER_TENANT}/`,
      acct: 1,
      email: 'bob@contoso.com',
      preferred_username: 'bob@contoso.com',
      upn: 'bob_contoso.com#EXT#@fabrikam.onmicrosoft.com',
    }),
    TENANT,
  );
  assert.equal(guest.upn, undefined);
  assert.equal(guest.kind, 'user');
  assert.equal(principalMatches(guest, ['user:bob@contoso.com']), false);
  assert.equal(principalMatches(guest, ['user:BOB@contoso.com', 'bob@contoso.com']), false);
  assert.equal(principalMatches(guest, [`user:${GUEST_OID}`]), true);
  assert.equal(principalMatches(guest, ['*']), true);
  // Any one sign of a guest is enough.
  for (const extra of [{ acct: 1 }, { idp: 'https://sts.windows.net/x/' }, { upn: 'a_b.com#EXT#@t.com' }]) {
    const p = principalFromClaims(
      claimsOfPayload({
        iss: ISS,
        tid: TENANT,
        oid: GUEST_OID,
        sub: 's',
        scp: 'x',
        upn: 'bob@contoso.com',
        ...extra,
      }),
      TENANT,
    );
    assert.equal(p.upn, undefined, JSON.stringify(extra));
  }
});

test('an app-only token is an app: it matches its own app: entry and nothing a person would', () => {
  const byIdtyp = principalFromClaims(
    claimsOfPayload({
      iss: ISS,
      tid: TENANT,
      oid: APP_OID,
      sub: APP_OID,
      azp: APP_ID,
      idtyp: 'app',
      roles: [],
    }),
    TENANT,
  );
  // Without the optional idtyp claim: no scp, and the subject is the service principal itself.
  const byShape = principalFromClaims(
    claimsOfPayload({ iss: ISS, tid: TENANT, oid: APP_OID, sub: APP_OID, appid: APP_ID }),
    TENANT,
  );
  for (const app of [byIdtyp, byShape]) {
    assert.equal(app.kind, 'app');
    assert.equal(app.appId, APP_ID);
    assert.equal(app.name, `app:${APP_ID}`);
    assert.equal(principalMatches(app, ['*']), false);
    assert.equal(principalMatches(app, [`user:${APP_OID}`, 'group:g1']), false);
    assert.equal(principalMatches(app, [`app:${APP_ID.toUpperCase()}`]), true);
    assert.equal(principalMatches(app, ['app:66666666-6666-6666-6666-666666666666']), false);
  }
  assert.throws(
    () => principalFromClaims(claimsOfPayload({ iss: ISS, tid: TENANT, oid: APP_OID, sub: APP_OID }), TENANT),
    /client id/,
  );
});

test('a token without tenant and object id names nobody', () => {
  for (const c of [
    { preferred_username: 'alice@contoso.com' },
    { tid: TENANT, preferred_username: 'alice@contoso.com' },
    { oid: BOB_OID, upn: 'bob@contoso.com' },
    { tid: 'contoso', oid: 'bob' },
  ])
    assert.throws(() => principalFromClaims(claimsOfPayload(c), TENANT), Unauthenticated, JSON.stringify(c));
});

test('errors map to problem+json with the right status', () => {
  const bad = toProblem(new InvalidRequest([{ field: 'ports[0]', reason: 'must be from 1 to 65535' }]));
  assert.equal(bad.status, 400);
  assert.equal(bad.headers['Content-Type'], 'application/problem+json');
  assert.deepEqual(bad.jsonBody.errors, [{ field: 'ports[0]', reason: 'must be from 1 to 65535' }]);
  assert.equal(
    toProblem(new AccessNotAllowed('secret detail', false)).jsonBody.detail,
    'No policy allows this request.',
  );
  assert.equal(
    toProblem(new AccessNotAllowed('port 23/Tcp is not allowed', true)).jsonBody.detail,
    'port 23/Tcp is not allowed',
  );
  assert.equal(toProblem(new TransientFailure('busy', 3000)).headers['Retry-After'], '3');
  const crash = toProblem(new Error('connection string AccountKey=abc leaked'));
  assert.equal(crash.status, 500);
  assert.doesNotMatch(JSON.stringify(crash.jsonBody), /AccountKey/);
});
