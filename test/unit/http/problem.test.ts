import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AccessAlreadyEnded,
  ConcurrencyConflict,
  FeatureUnavailable,
  InvalidState,
} from '../../../shared/domain/errors';
import { toProblem } from '../../../shared/http/problem';

test('ended access is a 409 that names the status; a lost race is a 409 worth retrying', () => {
  const ended = toProblem(new AccessAlreadyEnded('01J', 'expired', 'request 01J is expired'));
  assert.equal(ended.status, 409);
  assert.equal(ended.jsonBody.requestStatus, 'expired');
  assert.match(ended.jsonBody.type, /#accessalreadyended$/);
  assert.equal(ended.headers['Retry-After'], undefined, 'retrying cannot help');
  assert.equal(toProblem(new ConcurrencyConflict('changed')).headers['Retry-After'], '1');
  assert.equal(toProblem(new InvalidState('not active')).status, 409);
});

test('storage and Service Bus failing transiently is a 503 with Retry-After, leaking nothing', () => {
  const rest = (statusCode?: number) =>
    Object.assign(new Error('AccountName=devstoreaccount1 timed out'), { name: 'RestError', statusCode });
  for (const e of [
    rest(503),
    rest(500),
    rest(429),
    rest(undefined),
    Object.assign(new Error('busy'), { name: 'ServiceBusError', retryable: true }),
  ]) {
    const p = toProblem(e);
    assert.equal(p.status, 503, e.message);
    assert.equal(p.headers['Retry-After'], '2');
    assert.doesNotMatch(JSON.stringify(p.jsonBody), /AccountName/);
  }
  assert.equal(toProblem(rest(403)).status, 500, 'a refusal is not transient');
  assert.equal(
    toProblem(Object.assign(new Error('no such entity'), { name: 'ServiceBusError', retryable: false }))
      .status,
    500,
  );
});

test('a switched-off feature is a 503 that names it, with a long Retry-After', () => {
  const off = toProblem(new FeatureUnavailable('approval'));
  assert.equal(off.status, 503);
  assert.equal(off.jsonBody.feature, 'approval');
  assert.match(off.jsonBody.type, /#featureunavailable$/);
  assert.match(off.jsonBody.detail, /Manual approval .* switched off.*GET \/api\/health/);
  assert.equal(off.headers['Retry-After'], '60');
});
