/** ARM's token buckets as the emulator keeps them (dev/arm/throttling.ts), on a clock the test moves. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArmError } from '../../../dev/arm/errors';
import { ARM_THROTTLE_LIMITS, ArmThrottle } from '../../../dev/arm/throttling';

const sub = '00000000-0000-0000-0000-000000000001';

function refused(fn: () => unknown): ArmError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ArmError) return err;
    throw err;
  }
  assert.fail('expected a 429');
}

test("a caller's 250 reads go at once, then 25 a second come back; a refusal says when", () => {
  let now = 0;
  const throttle = new ArmThrottle(ARM_THROTTLE_LIMITS, () => now);
  for (let i = 0; i < 250; i++) throttle.take(sub, 'app', 'read');
  const error = refused(() => throttle.take(sub, 'app', 'read'));
  assert.equal(error.statusCode, 429);
  assert.equal(error.code, 'SubscriptionRequestsThrottled');
  assert.equal(error.headers['Retry-After'], '1');

  now += 400; // 10 tokens back
  const headers = throttle.take(sub, 'app', 'read');
  assert.equal(headers['x-ms-ratelimit-remaining-subscription-reads'], '9');
  for (let i = 0; i < 9; i++) throttle.take(sub, 'app', 'read');
  refused(() => throttle.take(sub, 'app', 'read'));

  // Writes and deletes have buckets of their own.
  assert.equal(throttle.take(sub, 'app', 'write')['x-ms-ratelimit-remaining-subscription-writes'], '199');
  assert.equal(throttle.take(sub, 'app', 'delete')['x-ms-ratelimit-remaining-subscription-deletes'], '199');
});

test('a long wait is said in whole seconds, and a refused request takes no token', () => {
  let now = 0;
  const throttle = new ArmThrottle(
    { ...ARM_THROTTLE_LIMITS, write: { size: 1, refillPerSecond: 0.25 } },
    () => now,
  );
  throttle.take(sub, 'app', 'write');
  assert.equal(refused(() => throttle.take(sub, 'app', 'write')).headers['Retry-After'], '4');
  now += 3000;
  assert.equal(refused(() => throttle.take(sub, 'app', 'write')).headers['Retry-After'], '1');
  now += 1000;
  assert.equal(throttle.take(sub, 'app', 'write')['x-ms-ratelimit-remaining-subscription-writes'], '0');
});

test('every caller has its own bucket, and all of them share a global one (15 times as large in ARM)', () => {
  const throttle = new ArmThrottle(
    { ...ARM_THROTTLE_LIMITS, read: { size: 2, refillPerSecond: 1 }, globalFactor: 2 },
    () => 0,
  );
  throttle.take(sub, 'a', 'read');
  throttle.take(sub, 'a', 'read');
  refused(() => throttle.take(sub, 'a', 'read'));
  throttle.take(sub, 'b', 'read');
  const last = throttle.take(sub, 'b', 'read');
  assert.equal(last['x-ms-ratelimit-remaining-subscription-global-reads'], '0');
  assert.match(refused(() => throttle.take(sub, 'c', 'read')).message, /actor 'c'/);
  // Another subscription is counted apart.
  throttle.take('00000000-0000-0000-0000-000000000002', 'c', 'read');
});
