/**
 * CSV as RFC 4180 writes it: fields separated by commas, records ended by CRLF, and a field quoted — its quotes
 * doubled — when it holds a comma, a quote, CR or LF. Justifications and error details are free text, so every
 * one of those turns up. Values are written exactly as stored: nothing is trimmed, escaped or prefixed.
 */
export type CsvValue = string | number | boolean | null | undefined | readonly (string | number)[];

const NEEDS_QUOTES = /[",\r\n]/;

export function csvField(value: CsvValue): string {
  if (value === null || value === undefined) return '';
  const text = Array.isArray(value) ? value.join(',') : String(value);
  return NEEDS_QUOTES.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One record, without its line ending. */
export function csvRecord(values: readonly CsvValue[]): string {
  return values.map(csvField).join(',');
}
