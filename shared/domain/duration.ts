import { parse, serialize } from 'tinyduration';
import type { Duration } from 'tinyduration';

/**
 * ISO-8601 durations as the API speaks them (`PT1H`, `PT30M`, `P1D`).
 * Years and months are refused: their length depends on the calendar, and access must be bounded exactly. Zero is
 * refused unless `zero` allows it (a setting that PT0S switches off).
 */
export function parseDurationToSeconds(text: string, options: { zero?: boolean } = {}): number {
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
  if (!Number.isFinite(seconds) || seconds < 0 || (seconds === 0 && !options.zero))
    throw new RangeError('must be longer than zero');
  // Rounding would turn PT0.4S into nothing at all and PT1.5S into something nobody asked for. (The tolerance
  // only absorbs binary fractions: PT1.1H is 3960 s, though 1.1 × 3600 is not exactly that in floating point.)
  const whole = Math.round(seconds);
  if (Math.abs(seconds - whole) > 1e-6) throw new RangeError('must be a whole number of seconds');
  return whole;
}

/** Formats a number of seconds back into an ISO-8601 duration, for documents and the API. */
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

/** What a person may type for a duration, as every refusal says it. */
const DURATION_EXAMPLES = '90s, 30m, 1h30m, 2d or ISO-8601 such as PT1H30M';

/**
 * The short form people type: days, hours, minutes, seconds, each at most once, in that order, each a whole
 * number without leading zeros, nothing else (`1h30m`, `2d`, `90s`). Deliberately strict: `1mo`, `1hour`,
 * `1h0`, `1h1h` and `1.5h` are refused rather than guessed at, because a duration someone typed must mean
 * exactly what they meant.
 */
const SHORT = /^(?:([1-9]\d*)d)?(?:([1-9]\d*)h)?(?:([1-9]\d*)m)?(?:([1-9]\d*)s)?$/;
const SHORT_UNITS = [86400, 3600, 60, 1] as const;

/**
 * A duration as a person writes it — the short form or ISO-8601 (`PT1H30M`, `P1D`) — in seconds. ISO goes
 * through tinyduration; fractions are refused in both forms (`PT1.5H` is refused: write `1h30m`). Throws a
 * RangeError whose message names the accepted forms.
 */
export function parseDuration(text: string): number {
  const t = text.trim();
  if (t.startsWith('P')) {
    if (/[.,]/.test(t)) throw new RangeError(`must be whole units, e.g. ${DURATION_EXAMPLES}`);
    try {
      return parseDurationToSeconds(t);
    } catch (e) {
      throw new RangeError(`${(e as Error).message}; write e.g. ${DURATION_EXAMPLES}`, { cause: e });
    }
  }
  const m = SHORT.exec(t);
  if (!m || t === '') throw new RangeError(`is not a duration: write e.g. ${DURATION_EXAMPLES}`);
  let seconds = 0;
  SHORT_UNITS.forEach((size, i) => (seconds += Number(m[i + 1] ?? 0) * size));
  if (!Number.isSafeInteger(seconds)) throw new RangeError(`is too long: write e.g. ${DURATION_EXAMPLES}`);
  return seconds;
}

/**
 * Seconds in the short form (`5400` → `1h30m`, `90000` → `1d1h`, `0` → `0s`): the one way every message — the
 * CLI, the API's problem details, mail and the approval page — writes a duration, and a form `--for` takes back.
 */
export function formatDuration(seconds: number): string {
  let rest = Math.max(0, Math.round(seconds));
  if (rest === 0) return '0s';
  let text = '';
  SHORT_UNITS.forEach((size, i) => {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n) text += `${n}${'dhms'[i]}`;
  });
  return text;
}
