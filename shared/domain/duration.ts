import { parse, serialize } from 'tinyduration';
import type { Duration } from 'tinyduration';

/**
 * ISO-8601 durations as the API speaks them (`PT1H`, `PT30M`, `P1D`).
 * Years and months are refused: their length depends on the calendar, and access must be bounded exactly.
 */
export function parseDurationToSeconds(text: string): number {
  let d: Duration;
  try {
    d = parse(text);
  } catch {
    throw new RangeError('must be an ISO-8601 duration such as PT1H or PT30M');
  }
  if (d.negative) throw new RangeError('must not be negative');
  if (d.years || d.months) throw new RangeError('must not use years or months (use days, hours or minutes)');
  const seconds =
    (d.weeks ?? 0) * 604800 +
    (d.days ?? 0) * 86400 +
    (d.hours ?? 0) * 3600 +
    (d.minutes ?? 0) * 60 +
    (d.seconds ?? 0);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new RangeError('must be longer than zero');
  // Rounding would turn PT0.4S into nothing at all and PT1.5S into something nobody asked for. (The tolerance
  // only absorbs binary fractions: PT1.1H is 3960 s, though 1.1 × 3600 is not exactly that in floating point.)
  const whole = Math.round(seconds);
  if (Math.abs(seconds - whole) > 1e-6) throw new RangeError('must be a whole number of seconds');
  return whole;
}

/** Formats a number of seconds back into an ISO-8601 duration, for messages and records. */
export function formatSeconds(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s === 0) return 'PT0S';
  const parts: Duration = {};
  if (s >= 86400) parts.days = Math.floor(s / 86400);
  if (s % 86400 >= 3600) parts.hours = Math.floor((s % 86400) / 3600);
  if (s % 3600 >= 60) parts.minutes = Math.floor((s % 3600) / 60);
  if (s % 60) parts.seconds = s % 60;
  return serialize(parts);
}
