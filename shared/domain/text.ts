/**
 * Free text people write (a justification, an approver's comment, a policy's description) is shown to others: in
 * mail, on the approval page, in `jit` output and the audit trail. Unicode's bidirectional control characters
 * reorder what a reader sees without changing what is stored, so a justification can read differently from what
 * it says ("Trojan Source", CVE-2021-42574; the characters are those of Unicode's bidirectional algorithm, UAX #9:
 * https://www.unicode.org/reports/tr9/#Directional_Formatting_Characters). They are refused, not stripped: the
 * writer learns why.
 */
const BIDI_CONTROLS = /[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/;

/** Why a piece of free text is refused, or undefined when it is acceptable. */
export function freeTextProblem(text: string): string | undefined {
  const m = BIDI_CONTROLS.exec(text);
  if (!m) return undefined;
  const code = m[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
  return `must not contain Unicode bidirectional control characters (U+${code} at position ${m.index + 1}): they change how the text reads`;
}
