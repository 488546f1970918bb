import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Unauthenticated } from '../../../shared/domain/errors';
import { authenticate } from '../../../shared/http/auth';
import { toProblem } from '../../../shared/http/problem';
import { AccessNotAllowed, InvalidRequest, TransientFailure } from '../../../shared/domain/errors';

const headers = (h: Record<string, string>) => ({ get: (n: string) => h[n.toLowerCase()] ?? null });
const principal = (claims: Array<{ typ: string; val: string }>) =>
  Buffer.from(JSON.stringify({ auth_typ: 'aad', claims })).toString('base64');

test('dev mode names the caller from its header, and only a plausible name', () => {
  assert.equal(
    authenticate('dev', headers({ 'x-jit-dev-user': 'Alice@contoso.com' })).id,
    'alice@contoso.com',
  );
  assert.throws(() => authenticate('dev', headers({})), Unauthenticated);
  assert.throws(() => authenticate('dev', headers({ 'x-jit-dev-user': 'a b\r\nX: y' })), Unauthenticated);
});

test('easyauth mode reads the platform principal and ignores the dev header', () => {
  const p = authenticate(
    'easyauth',
    headers({
      'x-ms-client-principal': principal([
        { typ: 'preferred_username', val: 'Bob@Contoso.com' },
        { typ: 'groups', val: 'g1' },
        { typ: 'roles', val: 'Jit.Admin' },
      ]),
    }),
  );
  assert.deepEqual(p, {
    id: 'bob@contoso.com',
    displayName: undefined,
    groups: ['g1'],
    roles: ['Jit.Admin'],
  });
  assert.throws(() => authenticate('easyauth', headers({ 'x-jit-dev-user': 'alice' })), Unauthenticated);
  assert.throws(
    () => authenticate('easyauth', headers({ 'x-ms-client-principal': 'not base64 json' })),
    Unauthenticated,
  );
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
