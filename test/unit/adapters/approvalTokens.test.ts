import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { JoseApprovalTokens } from '../../../shared/adapters/approvalTokens';
import type { SigningKey } from '../../../shared/config';
import { ApprovalTokenExpired, ApprovalTokenInvalid, CsrfCheckFailed } from '../../../shared/domain/errors';

const key = (kid: string): SigningKey => ({ kid, secret: new Uint8Array(randomBytes(32)) });
const k1 = key('k1');
const k2 = key('k2');
const NOW = new Date('2030-01-01T12:00:00Z');
const inMinutes = (m: number) => new Date(NOW.getTime() + m * 60_000);
const claims = { requestId: '01JREQUEST0000000000000000', approver: 'user:bob@example.com' };

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const parts = (t: string) => t.split('.') as [string, string, string];
const json = (s: string) => JSON.parse(Buffer.from(s, 'base64url').toString()) as Record<string, unknown>;

test('a token names the request and the approver, with a kid, a nonce and an expiry, and verifies', async () => {
  const tokens = new JoseApprovalTokens({ current: k1 }, () => NOW);
  const t = await tokens.issue(claims, inMinutes(30));
  const [h, p] = parts(t);
  assert.deepEqual(json(h), { alg: 'HS256', kid: 'k1', typ: 'jit-approval+jwt' });
  const payload = json(p);
  assert.equal(payload.rid, claims.requestId);
  assert.equal(payload.sub, claims.approver);
  assert.match(String(payload.jti), /^[0-9a-f-]{36}$/);
  const v = await tokens.verify(t);
  assert.equal(v.requestId, claims.requestId);
  assert.equal(v.approver, claims.approver);
  assert.equal(v.tokenId, payload.jti);
  assert.equal(v.expiresAt.toISOString(), inMinutes(30).toISOString());
  // Two links for the same approver differ (their nonces do).
  assert.notEqual((await tokens.verify(await tokens.issue(claims, inMinutes(30)))).tokenId, v.tokenId);
});

test('an expired token is refused as expired', async () => {
  const t = await new JoseApprovalTokens({ current: k1 }, () => NOW).issue(claims, inMinutes(5));
  const later = new JoseApprovalTokens({ current: k1 }, () => inMinutes(10));
  await assert.rejects(later.verify(t), ApprovalTokenExpired);
});

test('a tampered token, alg none, another algorithm, an unknown kid and garbage are refused as invalid', async () => {
  const tokens = new JoseApprovalTokens({ current: k1 }, () => NOW);
  const t = await tokens.issue(claims, inMinutes(30));
  const [h, p, s] = parts(t);
  const other = { ...json(p), sub: 'user:mallory@example.com' };
  const cases: Array<[string, string]> = [
    ['payload changed', `${h}.${b64(other)}.${s}`],
    ['signature changed', `${h}.${p}.${s.slice(0, -2)}${s.endsWith('AA') ? 'BB' : 'AA'}`],
    ['alg none', `${b64({ alg: 'none', typ: 'jit-approval+jwt' })}.${p}.`],
    ['kid removed', `${b64({ alg: 'HS256', typ: 'jit-approval+jwt' })}.${p}.${s}`],
    [
      'unknown kid',
      await new JoseApprovalTokens({ current: key('k9') }, () => NOW).issue(claims, inMinutes(30)),
    ],
    [
      'same kid, other secret',
      await new JoseApprovalTokens({ current: key('k1') }, () => NOW).issue(claims, inMinutes(30)),
    ],
    ['empty', ''],
    ['not a JWT', 'hello'],
    ['too long', 'a'.repeat(5000)],
  ];
  const { SignJWT } = await import('jose');
  cases.push([
    'HS512 with the right key',
    await new SignJWT({ rid: claims.requestId })
      .setProtectedHeader({ alg: 'HS512', kid: 'k1', typ: 'jit-approval+jwt' })
      .setIssuer('azure-jit-access')
      .setAudience('jit-approval')
      .setSubject(claims.approver)
      .setJti('x')
      .setIssuedAt(Math.floor(NOW.getTime() / 1000))
      .setExpirationTime(inMinutes(30))
      .sign(k1.secret),
  ]);
  for (const [what, bad] of cases) await assert.rejects(tokens.verify(bad), ApprovalTokenInvalid, what);
});

test('after a rotation the previous key still verifies, the current one signs, a dropped key does not', async () => {
  const before = new JoseApprovalTokens({ current: k1 }, () => NOW);
  const inFlight = await before.issue(claims, inMinutes(30));
  const rotated = new JoseApprovalTokens({ current: k2, previous: k1 }, () => NOW);
  assert.equal((await rotated.verify(inFlight)).approver, claims.approver);
  const fresh = await rotated.issue(claims, inMinutes(30));
  assert.equal(json(parts(fresh)[0]).kid, 'k2');
  const retired = new JoseApprovalTokens({ current: key('k3'), previous: k2 }, () => NOW);
  await assert.rejects(retired.verify(inFlight), ApprovalTokenInvalid);
  assert.equal((await retired.verify(fresh)).approver, claims.approver);
});

test('a form token is bound to one approval token and cannot stand in for one (or the reverse)', async () => {
  const tokens = new JoseApprovalTokens({ current: k1 }, () => NOW);
  const approval = await tokens.issue(claims, inMinutes(30));
  const { tokenId } = await tokens.verify(approval);
  const form = await tokens.issueFormToken(tokenId);
  await tokens.verifyFormToken(form, tokenId);
  await assert.rejects(tokens.verifyFormToken(form, 'another-link'), CsrfCheckFailed);
  await assert.rejects(tokens.verifyFormToken(approval, tokenId), CsrfCheckFailed);
  await assert.rejects(tokens.verify(form), ApprovalTokenInvalid);
  await assert.rejects(tokens.verifyFormToken('', tokenId), CsrfCheckFailed);
  const muchLater = new JoseApprovalTokens({ current: k1 }, () => inMinutes(90));
  await assert.rejects(muchLater.verifyFormToken(form, tokenId), CsrfCheckFailed);
});
