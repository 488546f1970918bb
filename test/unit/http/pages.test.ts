import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApproverNotAllowed, CsrfCheckFailed, Unauthenticated } from '../../../shared/domain/errors';
import {
  PAGE_SECURITY_HEADERS,
  assertSameOrigin,
  htmlResponse,
  signedInPerson,
} from '../../../shared/http/pages';

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });
/** None of these cases gets as far as authenticating anyone. */
const nobody = () => Promise.reject(new Error('not called'));

test('who is signed in on a page: nobody in dev mode without the header, from this machine only; jwt has no pages', async () => {
  assert.equal(
    await signedInPerson({ authMode: 'dev' }, headers({ 'x-forwarded-for': '127.0.0.1' }), nobody),
    undefined,
  );
  await assert.rejects(
    signedInPerson({ authMode: 'dev' }, headers({ 'x-forwarded-for': '203.0.113.9' }), nobody),
    Unauthenticated,
  );
  await assert.rejects(signedInPerson({ authMode: 'jwt' }, headers({}), nobody), ApproverNotAllowed);
});

test('a decision must come from our own pages: same origin, and never the opaque Origin: null', () => {
  const base = 'https://jit.example.com';
  assertSameOrigin(headers({ 'sec-fetch-site': 'same-origin', origin: 'https://jit.example.com' }), base);
  assertSameOrigin(headers({ origin: 'https://jit.example.com' }), base);
  assertSameOrigin(headers({}), base);
  assert.throws(() => assertSameOrigin(headers({ 'sec-fetch-site': 'cross-site' }), base), CsrfCheckFailed);
  assert.throws(() => assertSameOrigin(headers({ 'sec-fetch-site': 'same-site' }), base), CsrfCheckFailed);
  assert.throws(
    () => assertSameOrigin(headers({ origin: 'https://jit.example.com.evil.example' }), base),
    CsrfCheckFailed,
  );
  // A sandboxed frame or a data: page posts with Origin: null, whatever Sec-Fetch-Site says.
  assert.throws(() => assertSameOrigin(headers({ origin: 'null' }), base), CsrfCheckFailed);
  assert.throws(
    () => assertSameOrigin(headers({ 'sec-fetch-site': 'same-origin', origin: 'null' }), base),
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
  assert.equal(h['Referrer-Policy'], 'strict-origin');
  assert.equal(h['Cache-Control'], 'no-store');
});
