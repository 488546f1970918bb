import { toPolicyEntry } from './policyDocument';
import type { FieldChange, PolicyDiff } from './policyEntries';
import type { Policy } from './types';

export type { FieldChange, PolicyChange, PolicyDiff } from './policyEntries';

/**
 * Compares the stored policies with the desired ones, scope by scope, in document form: what an administrator
 * sees is what is compared, so applying the same document twice finds nothing to do.
 */
export function diffPolicies(current: Iterable<Policy>, desired: Iterable<Policy>): PolicyDiff {
  const before = new Map([...current].map((p) => [p.scope, toPolicyEntry(p)]));
  const after = new Map([...desired].map((p) => [p.scope, toPolicyEntry(p)]));
  const diff: PolicyDiff = { added: [], changed: [], removed: [], unchanged: 0 };
  for (const [scope, entry] of after) {
    const old = before.get(scope);
    if (!old) {
      diff.added.push(entry);
      continue;
    }
    const fields = fieldChanges(old, entry);
    if (fields.length) diff.changed.push({ scope, fields, before: old, after: entry });
    else diff.unchanged++;
  }
  for (const [scope, entry] of before) if (!after.has(scope)) diff.removed.push(entry);
  const byScope = (a: { scope: string }, b: { scope: string }) => a.scope.localeCompare(b.scope);
  diff.added.sort(byScope);
  diff.changed.sort(byScope);
  diff.removed.sort(byScope);
  return diff;
}

export function isEmptyDiff(diff: PolicyDiff): boolean {
  return !diff.added.length && !diff.changed.length && !diff.removed.length;
}

/** The order fields are written in a document, so a diff reads top to bottom like the file. */
const FIELD_ORDER = [
  'scope',
  'description',
  'ports',
  'allowedSourcePrefixes',
  'requesters',
  'approval',
  'mode',
  'approvers',
  'required',
  'timeout',
  'justification',
  'pattern',
  'enforce',
  'cutSessions',
];
const fieldRank = (key: string) => {
  const i = FIELD_ORDER.indexOf(key);
  return i === -1 ? FIELD_ORDER.length : i;
};

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** Leaf-level differences of two entries; lists are compared whole (their order is part of what was written). */
function fieldChanges(before: unknown, after: unknown, prefix = ''): FieldChange[] {
  if (isRecord(before) && isRecord(after)) {
    const keys = [...new Set([...Object.keys(after), ...Object.keys(before)])].sort(
      (a, b) => fieldRank(a) - fieldRank(b),
    );
    return keys.flatMap((k) => fieldChanges(before[k], after[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ field: prefix, before, after }];
}
