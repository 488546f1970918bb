import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatSeconds, parseDurationToSeconds } from '../../../shared/domain/duration';

test('ISO-8601 durations become seconds', () => {
  assert.equal(parseDurationToSeconds('PT1H'), 3600);
  assert.equal(parseDurationToSeconds('PT1H30M'), 5400);
  assert.equal(parseDurationToSeconds('P1D'), 86400);
  assert.equal(parseDurationToSeconds('PT45S'), 45);
  assert.equal(parseDurationToSeconds('P1W'), 604800);
});

test('durations that are not exact or not positive are refused with a reason', () => {
  assert.throws(() => parseDurationToSeconds('1h'), /ISO-8601/);
  assert.throws(() => parseDurationToSeconds('P1M'), /years or months/);
  assert.throws(() => parseDurationToSeconds('P1Y'), /years or months/);
  assert.throws(() => parseDurationToSeconds('PT0S'), /longer than zero/);
  assert.throws(() => parseDurationToSeconds('-PT1H'), /.+/);
  assert.throws(() => parseDurationToSeconds(''), /ISO-8601/);
});

test('a fraction of a second is refused, never rounded (to zero, or to more than asked); fractions of larger units are fine', () => {
  for (const d of ['PT0.4S', 'PT0.5S', 'PT1.5S', 'PT59.999S', 'PT0.0001M'])
    assert.throws(() => parseDurationToSeconds(d), /whole number of seconds/, d);
  assert.throws(() => parseDurationToSeconds('PT0.0S'), /longer than zero/);
  assert.equal(parseDurationToSeconds('PT1.1H'), 3960);
  assert.equal(parseDurationToSeconds('PT0.5M'), 30);
});

test('seconds format back into durations', () => {
  assert.equal(formatSeconds(3600), 'PT1H');
  assert.equal(formatSeconds(5430), 'PT1H30M30S');
  assert.equal(formatSeconds(90000), 'P1DT1H');
  assert.equal(formatSeconds(0), 'PT0S');
  for (const s of [1, 59, 61, 3599, 86399, 86401, 200000])
    assert.equal(parseDurationToSeconds(formatSeconds(s)), s);
});
