import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CsrfCheckFailed, Unauthenticated } from '../../../shared/domain/errors';
import {
  PAGE_SECURITY_HEADERS,
  assertSameOrigin,
  htmlResponse,
  signedInPerson,
} from '../../../shared/http/pages';

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });
const principal = Buffer.from(
  JSON.stringify({ claims: [{ typ: 'preferred_username', val: 'Bob@Example.com' }] }),
).toString('base64');

test('who is signed in on a page: nobody in dev mode without the header; always someone with easyauth', () => {
  assert.equal(signedInPerson('dev', headers({})), undefined);
  assert.equal(
    signedInPerson('dev', headers({ 'x-jit-dev-user': 'erin@example.com' }))?.id,
    'erin@example.com',
  );
  assert.equal(
    signedInPerson('easyauth', headers({ 'x-ms-client-principal': principal }))?.id,
    'bob@example.com',
  );
  assert.throws(() => signedInPerson('easyauth', headers({})), Unauthenticated);
  // The dev header means nothing once App Service Authentication is in charge.
  assert.throws(
    () => signedInPerson('easyauth', headers({ 'x-jit-dev-user': 'bob@example.com' })),
    Unauthenticated,
  );
});

test('a decision must come from our own pages', () => {
  const base = 'https://jit.example.com';
  assertSameOrigin(headers({ 'sec-fetch-site': 'same-origin', origin: 'null' }), base);
  assertSameOrigin(headers({ origin: 'https://jit.example.com' }), base);
  assertSameOrigin(headers({}), base);
  assert.throws(() => assertSameOrigin(headers({ 'sec-fetch-site': 'cross-site' }), base), CsrfCheckFailed);
  assert.throws(() => assertSameOrigin(headers({ 'sec-fetch-site': 'same-site' }), base), CsrfCheckFailed);
  assert.throws(
    () => assertSameOrigin(headers({ origin: 'https://jit.example.com.evil.example' }), base),
    CsrfCheckFailed,
  );
});

test('every page carries the security headers, whatever else the answer sets', () => {
  const r = htmlResponse(403, '<p>no</p>', {
    'Content-Security-Policy': 'default-src *',
    'Retry-After': '2',
  });
  const h = r.headers as Record<string, string>;
  for (const [k, v] of Object.entries(PAGE_SECURITY_HEADERS)) assert.equal(h[k], v, k);
  assert.equal(h['Retry-After'], '2');
  assert.equal(h['Content-Type'], 'text/html; charset=utf-8');
  assert.match(
    h['Content-Security-Policy']!,
    /^default-src 'none'; style-src 'sha256-[^']+'; form-action 'self'; frame-ancestors 'none'/,
  );
  assert.equal(h['X-Frame-Options'], 'DENY');
  assert.equal(h['Referrer-Policy'], 'no-referrer');
  assert.equal(h['Cache-Control'], 'no-store');
});
