/**
 * What must hold once the system has settled, however it was treated on the way: checked over what storage and
 * ARM actually hold (not over what the client was told), so a request created behind a failed answer counts too.
 * Pure: the soak reads the snapshot, this judges it.
 */
import { isJitRuleName } from '../../shared/domain/ruleNames';
import { FINAL_STATUSES } from '../../shared/domain/types';
import type { RequestStatus } from '../../shared/domain/types';

interface RequestRow {
  id: string;
  status: RequestStatus;
  statusReason?: string;
  approvedAt?: string;
  activatedAt?: string;
  expiresAt?: string;
}

interface GrantRow {
  requestId: string;
  nsgId: string;
  state: string;
}

interface AuditRow {
  /** Sorts by time. */
  rowKey: string;
  requestId?: string;
  action: string;
}

interface NsgRules {
  nsgId: string;
  ruleNames: string[];
}

export interface Snapshot {
  requests: RequestRow[];
  grants: GrantRow[];
  audit: AuditRow[];
  nsgs: NsgRules[];
  /** Ids the API answered 202 for. */
  accepted: string[];
}

export interface Violation {
  invariant:
    | 'accepted-request-exists'
    | 'request-final'
    | 'no-rule-of-ended-grant'
    | 'no-rule-without-live-grant'
    | 'audit-for-every-change'
    | 'applied-at-most-once'
    | 'grant-records-match';
  requestId?: string;
  detail: string;
  /** The request's status and reason as stored, where it exists (to tell failure modes apart). */
  requestStatus?: string;
  statusReason?: string;
}

/**
 * The audit action that records each final state the auto-approval flow can reach. (States of the approval and
 * revocation flows join this list as those flows land.)
 */
const ACTION_OF: Partial<Record<RequestStatus, string>> = {
  denied: 'request.denied',
  failed: 'grant.failed',
  expired: 'grant.expired',
};

/** Request id of a JIT rule name (`jit-<lower-cased ULID>`). */
export const requestIdOfRule = (name: string) => name.slice(4).toUpperCase();

export function checkInvariants(s: Snapshot): Violation[] {
  const out: Violation[] = [];
  const byId = new Map(s.requests.map((r) => [r.id, r]));

  for (const id of s.accepted) {
    if (!byId.has(id))
      out.push({
        invariant: 'accepted-request-exists',
        requestId: id,
        detail: 'answered 202 but no row exists',
      });
  }

  for (const r of s.requests) {
    if (!FINAL_STATUSES.has(r.status))
      out.push({ invariant: 'request-final', requestId: r.id, detail: `still ${r.status}` });
  }

  const rulesPerRequest = new Map<string, string[]>();
  for (const nsg of s.nsgs) {
    const seen = new Map<string, number>();
    for (const name of nsg.ruleNames.filter(isJitRuleName)) {
      const id = requestIdOfRule(name);
      seen.set(id, (seen.get(id) ?? 0) + 1);
      rulesPerRequest.set(id, [...(rulesPerRequest.get(id) ?? []), nsg.nsgId]);
      const r = byId.get(id);
      if (!r) {
        out.push({
          invariant: 'no-rule-without-live-grant',
          requestId: id,
          detail: `${name} in ${nsg.nsgId} has no request`,
        });
      } else if (FINAL_STATUSES.has(r.status)) {
        out.push({
          invariant: 'no-rule-of-ended-grant',
          requestId: id,
          detail: `${name} still in ${nsg.nsgId}; the request is ${r.status}`,
        });
      } else if (r.status !== 'active' && r.status !== 'approved') {
        out.push({
          invariant: 'no-rule-without-live-grant',
          requestId: id,
          detail: `${name} in ${nsg.nsgId} while the request is ${r.status}`,
        });
      } else if (
        !s.grants.some((g) => g.requestId === id && g.nsgId.toLowerCase() === nsg.nsgId.toLowerCase())
      ) {
        out.push({
          invariant: 'no-rule-without-live-grant',
          requestId: id,
          detail: `${name} in ${nsg.nsgId} has no grant row recording it`,
        });
      }
    }
    for (const [id, n] of seen)
      if (n > 1)
        out.push({
          invariant: 'applied-at-most-once',
          requestId: id,
          detail: `${n} rules in ${nsg.nsgId}`,
        });
  }

  const actions = new Map<string, string[]>();
  for (const a of [...s.audit].sort((x, y) => x.rowKey.localeCompare(y.rowKey))) {
    if (!a.requestId) continue;
    actions.set(a.requestId, [...(actions.get(a.requestId) ?? []), a.action]);
  }
  for (const r of s.requests) {
    const got = actions.get(r.id) ?? [];
    const count = (action: string) => got.filter((a) => a === action).length;
    const expect = (action: string, why: string) => {
      const n = count(action);
      if (n !== 1)
        out.push({
          invariant:
            n > 1 && action === 'grant.activated' ? 'applied-at-most-once' : 'audit-for-every-change',
          requestId: r.id,
          detail: `${n} × ${action} (${why}); trail: ${got.join(', ') || '(none)'}`,
        });
    };
    expect('request.submitted', 'every request was submitted');
    if (r.approvedAt) expect('request.approved', 'approvedAt is set');
    if (r.activatedAt) expect('grant.activated', 'activatedAt is set');
    const final = ACTION_OF[r.status];
    if (final) expect(final, `the request is ${r.status}`);
    // And no event for a change that did not happen.
    const claims: Array<[string, boolean]> = [
      ['request.approved', !!r.approvedAt],
      ['grant.activated', !!r.activatedAt],
      ...Object.entries(ACTION_OF).map(([status, action]): [string, boolean] => [
        action,
        r.status === status,
      ]),
    ];
    for (const [action, happened] of claims)
      if (!happened && count(action) > 0)
        out.push({
          invariant: 'audit-for-every-change',
          requestId: r.id,
          detail: `${action} recorded but the request does not show it (status ${r.status}); trail: ${got.join(', ')}`,
        });
  }

  for (const g of s.grants) {
    const r = byId.get(g.requestId);
    if (r && FINAL_STATUSES.has(r.status) && g.state !== 'removed')
      out.push({
        invariant: 'grant-records-match',
        requestId: g.requestId,
        detail: `grant row for ${g.nsgId} says ${g.state}; the request is ${r.status}`,
      });
  }
  // Each violation carries its request's stored status and reason, for whoever reads it.
  return out.map((v) => {
    const r = v.requestId ? byId.get(v.requestId) : undefined;
    return r
      ? { ...v, requestStatus: r.status, ...(r.statusReason ? { statusReason: r.statusReason } : {}) }
      : v;
  });
}
