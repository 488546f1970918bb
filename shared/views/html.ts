/**
 * HTML built from tagged templates: every interpolated value is escaped by `escape-markup` unless it is itself
 * HTML made here (`SafeHtml`). So a justification of `<script>` is shown as text, wherever it is put, and
 * escaping cannot be forgotten at one call site.
 */
import escapeHtml from 'escape-html';

export class SafeHtml {
  constructor(readonly html: string) {}
  toString(): string {
    return this.html;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

function render(value: HtmlValue): string {
  if (value instanceof SafeHtml) return value.html;
  if (Array.isArray(value)) return value.map(render).join('');
  if (value === undefined || value === null || value === false) return '';
  return escapeHtml(String(value));
}

/** `markup\`<p>${text}</p>\`` — values escaped (in text and in quoted attributes), nested `markup` kept as is. */
export function markup(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0] ?? '';
  values.forEach((v, i) => {
    out += render(v) + (strings[i + 1] ?? '');
  });
  return new SafeHtml(out);
}
