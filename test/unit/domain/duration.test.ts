import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  formatDuration,
  formatSeconds,
  parseDuration,
  parseDurationToSeconds,
} from '../../../shared/domain/duration';

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

test('the short form and ISO-8601 both read as exactly the seconds they say', () => {
  assert.equal(parseDuration('90s'), 90);
  assert.equal(parseDuration('30m'), 1800);
  assert.equal(parseDuration('1h30m'), 5400);
  assert.equal(parseDuration('2d'), 172800);
  assert.equal(parseDuration('1d12h'), 129600);
  assert.equal(parseDuration(' PT1H30M '), 5400);
  assert.equal(parseDuration('P1D'), 86400);
});

test('anything else a person might type is refused with an example, not guessed at', () => {
  for (const text of [
    '1mo', // one minute? one month? neither: refused
    '1hour',
    '1h0',
    '1h1h',
    '30m1h', // units out of order
    '1.5h',
    'PT1.5H',
    'PT0,5H',
    '0s',
    '0h30m', // a zero part
    '01h',
    'PT0S',
    'P1M',
    '1H',
    '1 h',
    '1h 30m',
    '-1h',
    '1w',
    '',
    'h',
    '1',
  ]) {
    assert.throws(() => parseDuration(text), /e\.g\. 90s, 30m, 1h30m, 2d or ISO-8601 such as PT1H30M/, text);
  }
});

test('durations are written one way in messages: the short form', () => {
  assert.equal(formatDuration(5400), '1h30m');
  assert.equal(formatDuration(90), '1m30s');
  assert.equal(formatDuration(90000), '1d1h');
  assert.equal(formatDuration(10800), '3h');
  assert.equal(formatDuration(0), '0s');
});

const part = fc.option(fc.integer({ min: 1, max: 100_000 }), { nil: undefined });
const shortParts = fc
  .record({ d: part, h: part, m: part, s: part })
  .filter((p) => Object.values(p).some((v) => v !== undefined));
const shortText = (p: Record<string, number | undefined>) =>
  (['d', 'h', 'm', 's'] as const).map((u) => (p[u] === undefined ? '' : `${p[u]}${u}`)).join('');

test('property: every short form built from the grammar reads as its seconds, and so does its ISO twin', () => {
  fc.assert(
    fc.property(shortParts, (p) => {
      const seconds = (p.d ?? 0) * 86400 + (p.h ?? 0) * 3600 + (p.m ?? 0) * 60 + (p.s ?? 0);
      assert.equal(parseDuration(shortText(p)), seconds);
      assert.equal(parseDuration(formatSeconds(seconds)), seconds);
    }),
  );
});

test('property: what messages write, --for reads back as the same seconds', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 400 * 86400 }), (seconds) => {
      assert.equal(parseDuration(formatDuration(seconds)), seconds);
    }),
  );
});

test('property: a short form with a foreign character anywhere, or a unit given twice, is refused', () => {
  const foreign = fc.constantFrom(...'DHMSywo.,:-+_/PTx');
  fc.assert(
    fc.property(shortParts, fc.nat(), foreign, (p, at, ch) => {
      const text = shortText(p);
      const i = at % (text.length + 1);
      assert.throws(() => parseDuration(text.slice(0, i) + ch + text.slice(i)));
    }),
  );
  fc.assert(
    fc.property(shortParts, fc.nat(), (p, at) => {
      const parts = (['d', 'h', 'm', 's'] as const).filter((u) => p[u] !== undefined);
      const unit = parts[at % parts.length]!;
      assert.throws(() => parseDuration(`${shortText(p)}${p[unit]}${unit}`));
    }),
  );
});
