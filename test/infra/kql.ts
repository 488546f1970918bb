/**
 * The KQL in infra/ against the signals the code emits (shared/domain/signals.ts): every event or metric a query
 * names (`name == '…'`, `name in (…)`) must be one the code emits, in the table the query reads (customEvents for
 * events, customMetrics for metrics), and every `customDimensions.<field>` it reads must be an attribute of one of
 * the signals it names. A rename in the code, or a typo in a query, then fails a test instead of an alert that
 * never fires.
 */
import { descendants, stringValue } from './bicepModel';
import type { BicepFile } from './bicepModel';

export interface KqlQuery {
  file: string;
  line: number;
  text: string;
}

/** Every string literal in the Bicep files that reads customEvents or customMetrics. */
export function kqlQueriesOf(files: readonly BicepFile[]): KqlQuery[] {
  const out: KqlQuery[] = [];
  for (const file of files)
    for (const node of descendants(file.tree.rootNode)) {
      if (node.type !== 'string') continue;
      const text = stringValue(node);
      if (text && /\bcustom(Events|Metrics)\b/.test(text))
        out.push({ file: file.file, line: node.startPosition.row + 1, text });
    }
  return out;
}

type Catalogue = Readonly<Record<string, { attributes: readonly string[] }>>;

const quoted = (list: string) => [...list.matchAll(/'([^']+)'|"([^"]+)"/g)].map((m) => m[1] ?? m[2] ?? '');

/** The problems of one query against the code's events and metrics. */
export function checkKqlQuery(q: KqlQuery, events: Catalogue, metrics: Catalogue): string[] {
  const where = `${q.file}:${q.line}`;
  const names = [
    ...[...q.text.matchAll(/\bname\s*(?:==|=~)\s*('[^']+'|"[^"]+")/g)].flatMap((m) => quoted(m[1] ?? '')),
    ...[...q.text.matchAll(/\bname\s+in\s*\(([^)]*)\)/g)].flatMap((m) => quoted(m[1] ?? '')),
  ];
  const problems: string[] = [];
  if (!names.length) return [`${where}: the query names no event or metric (name == '…')`];
  const readsEvents = /\bcustomEvents\b/.test(q.text);
  const readsMetrics = /\bcustomMetrics\b/.test(q.text);
  const attributes = new Set<string>();
  for (const name of names) {
    const event = events[name];
    const metric = metrics[name];
    if (event && readsEvents) event.attributes.forEach((a) => attributes.add(a));
    else if (metric && readsMetrics) metric.attributes.forEach((a) => attributes.add(a));
    else if (event || metric)
      problems.push(
        `${where}: ${name} is ${event ? 'an event (customEvents)' : 'a metric (customMetrics)'}, which this query does not read`,
      );
    else
      problems.push(
        `${where}: ${name} is neither an event nor a metric the code emits (shared/domain/signals.ts)`,
      );
  }
  const fields = [
    ...[...q.text.matchAll(/\bcustomDimensions\.([A-Za-z_][A-Za-z0-9_]*)/g)].map((m) => m[1] ?? ''),
    ...[...q.text.matchAll(/\bcustomDimensions\[\s*['"]([^'"]+)['"]\s*\]/g)].map((m) => m[1] ?? ''),
  ];
  for (const field of new Set(fields))
    if (!attributes.has(field))
      problems.push(`${where}: customDimensions.${field} is not an attribute of ${names.join(', ')}`);
  return problems;
}
