/**
 * Failure modes the soak has found in shared/usecases whose fixes are being made by their owners. Each is
 * matched by its exact signature, so that the in-test soak can pass over exactly these and nothing else;
 * `npm run soak` still fails on them. Each has a deterministic reproduction in
 * test/integration/soakFindings.test.ts. Delete an entry when its fix lands: the soak is then strict about it.
 */
import type { Violation } from './invariants';

export interface KnownIssue {
  id: string;
  summary: string;
  matches(v: Violation): boolean;
}

export const KNOWN_ISSUES: KnownIssue[] = [
  {
    id: 'audit-after-write',
    summary:
      'A state change is two writes — the request row, then the audit event (transition() in ' +
      'shared/usecases/grants.ts, and submitRequest in requests.ts). A crash or a storage error between them ' +
      'leaves the change with no event, and the retry sees the new state and writes nothing. At intake the ' +
      'caller even gets a 500 while the stored request goes on to be granted.',
    // "0 × <action> (<the stored field that shows it happened>)": the change landed, its event did not.
    matches: (v) => v.invariant === 'audit-for-every-change' && v.detail.startsWith('0 × '),
  },
];

export function knownIssueOf(v: Violation): KnownIssue | undefined {
  return KNOWN_ISSUES.find((k) => k.matches(v));
}
