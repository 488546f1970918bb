/**
 * Manual approval, as rules without I/O: who is an approver, who receives a link, who may decide with a link,
 * and when enough people have approved. The use cases in shared/usecases/approvals.ts apply them.
 */
import { ApproverNotAllowed, SelfApprovalRefused } from './errors';
import type { RulePlacement } from './networkPath';
import { isGuid, principalMatchesEntry } from './policy';
import { auditActor, requesterKey } from './types';
import type { AccessRequest, Policy, Principal } from './types';

export type Decision = 'approve' | 'deny';

/** One approver's decision on one request: a row in `JitApprovals`, written once (a conditional insert). */
export interface ApprovalDecision {
  requestId: string;
  /** The person who decided: their stable key (`Principal.id`, lower-cased). */
  approver: string;
  /** Their readable name (UPN or name), for pages and records; never compared. */
  approverName?: string;
  /** The policy entry that made them an approver: `user:<upn>` or `group:<object id>`. */
  via: string;
  decision: Decision;
  comment?: string;
  decidedAt: string;
  clientAddress?: string;
  /** The id (`jti`) of the link's token: enough to tell links apart, useless to replay. Never the token. */
  tokenId: string;
}

/**
 * What the page behind an approval link shows: the use case reads it (shared/usecases/approvals.ts `viewApproval`)
 * and the view renders it (shared/views/approvalPage.ts).
 */
export interface ApprovalView {
  request: AccessRequest;
  /** Who is deciding (the approver the link names, or the signed-in member of the group it names). */
  decider: string;
  approvals: number;
  required: number;
  /** This approver's earlier decision, if any: the link has been used. */
  earlier?: ApprovalDecision;
  /** Present when a decision can be made now: the approval token and the form token bound to it. */
  form?: { token: string; formToken: string };
  /** The rules approval would write (NSG, the VM's private addresses); absent when ARM could not be asked. */
  opens?: RulePlacement[];
}

/** What an approval link's token says, once its signature, algorithm and expiry have been checked. */
export interface ApprovalClaims {
  requestId: string;
  /** The policy entry the link was sent for: `user:<upn>` or `group:<object id>`. */
  approver: string;
  /** The token's `jti`, a random nonce. */
  tokenId: string;
  expiresAt: Date;
}

/** An approver entry of a policy, normalised. */
export type ApproverEntry =
  { kind: 'user'; id: string; entry: string } | { kind: 'group'; id: string; entry: string };

/** Longest comment an approver may give; longer text is refused rather than cut. */
export const MAX_DECISION_COMMENT_LENGTH = 1000;

/**
 * Parses a policy's approver entry. `user:<upn>` and a bare UPN are users, `group:<id>` an Entra group.
 * `*` (and anything empty) is never an approver: "anyone may approve" would be no approval at all.
 */
export function parseApproverEntry(raw: string): ApproverEntry | undefined {
  const e = raw.trim().toLowerCase();
  // An app decides nothing: approving is a person's act.
  if (e.startsWith('app:')) return undefined;
  if (e.startsWith('group:')) {
    const id = e.slice(6).trim();
    return id ? { kind: 'group', id, entry: `group:${id}` } : undefined;
  }
  const id = (e.startsWith('user:') ? e.slice(5) : e).trim();
  if (!id || id === '*') return undefined;
  return { kind: 'user', id, entry: `user:${id}` };
}

/** The policy's approvers, normalised and de-duplicated; only meaningful for a manual policy. */
export function approverEntries(policy: Policy): ApproverEntry[] {
  const out = new Map<string, ApproverEntry>();
  for (const raw of policy.approval.approvers) {
    const a = parseApproverEntry(raw);
    if (a) out.set(a.entry, a);
  }
  return [...out.values()];
}

/** How many distinct people must approve: at least one, whatever the policy says. */
export function approvalsRequired(policy: Policy): number {
  return Math.max(1, Math.floor(policy.approval.required));
}

/** Whether `entry` (`user:…` / `group:…`) is still an approver of the (current) policy. */
export function isStillApprover(policy: Policy | undefined, entry: string): boolean {
  if (!policy || policy.approval.mode !== 'manual') return false;
  const wanted = parseApproverEntry(entry)?.entry;
  return wanted !== undefined && approverEntries(policy).some((a) => a.entry === wanted);
}

/** Who asked, as far as the approval rules need to know: a request, or (in tests) just its requester's key. */
export type RequesterRef = string | Pick<AccessRequest, 'requester' | 'requesterId'>;

/**
 * Every lower-cased way the requester can appear in an approver entry: their key, their readable name (a member's
 * UPN) and, for an Entra key `<tenant>/<object id>`, the object id alone.
 */
function requesterAliases(ref: RequesterRef): Set<string> {
  const r = typeof ref === 'string' ? { requester: ref } : ref;
  const key = requesterKey(r);
  const out = new Set([key, r.requester.toLowerCase()]);
  const oid = key.split('/')[1];
  if (oid && isGuid(oid)) out.add(oid);
  return out;
}

/** Where one approval link goes: the entry it is issued for and the address it is mailed to. */
export interface ApprovalRecipient {
  entry: string;
  address: string;
}

/**
 * Who gets a link. A user entry is mailed at its UPN (which must look like an address). A group entry is mailed
 * at the group's mailbox from configuration, if any: its members are not looked up (no directory call here);
 * whoever opens that link must sign in, and must be in the group when deciding. The requester never gets a link.
 */
export function approvalRecipients(
  policy: Policy,
  requester: RequesterRef,
  groupMailboxes: Readonly<Record<string, string>>,
): { recipients: ApprovalRecipient[]; unreachable: string[] } {
  const recipients: ApprovalRecipient[] = [];
  const unreachable: string[] = [];
  const self = requesterAliases(requester);
  for (const a of approverEntries(policy)) {
    if (a.kind === 'user') {
      if (self.has(a.id)) continue;
      if (looksLikeMailAddress(a.id)) recipients.push({ entry: a.entry, address: a.id });
      else unreachable.push(a.entry);
    } else {
      const mailbox = groupMailboxes[a.id];
      if (mailbox) recipients.push({ entry: a.entry, address: mailbox });
      else unreachable.push(a.entry);
    }
  }
  return { recipients, unreachable };
}

/** Whether the decision was made by the requester themselves (such a decision never counts). */
export function decidedByRequester(d: Pick<ApprovalDecision, 'approver'>, requester: RequesterRef): boolean {
  return requesterAliases(requester).has(d.approver);
}

/**
 * Whether the policy can ever gather enough approvals for this requester. Users other than the requester count
 * once each; a group may hold any number of people, so a policy with a group is given the benefit of the doubt.
 */
export function canEverBeApproved(policy: Policy, requester: RequesterRef): boolean {
  const self = requesterAliases(requester);
  const others = approverEntries(policy).filter((a) => !(a.kind === 'user' && self.has(a.id)));
  if (others.some((a) => a.kind === 'group')) return true;
  return others.length >= approvalsRequired(policy);
}

/** Why a request under this policy could never be approved (so it is denied at once), or undefined. */
export function whyNeverApproved(
  policy: Policy,
  requester: RequesterRef,
  recipients: readonly ApprovalRecipient[],
  unreachable: readonly string[],
): string | undefined {
  if (!(policy.approval.timeoutInSeconds > 0))
    return 'the policy gives approvers no time to decide (approval.timeoutInSeconds)';
  if (!canEverBeApproved(policy, requester))
    return `the policy needs ${approvalsRequired(policy)} approval(s) but names fewer approvers other than the requester`;
  if (recipients.length === 0)
    return `no approver can be reached by mail (${unreachable.join(', ') || 'the policy names none'})`;
  // Only a link can decide: the reachable users count once each, a reachable group's mailbox for any number.
  const groups = new Set(
    approverEntries(policy)
      .filter((a) => a.kind === 'group')
      .map((a) => a.entry),
  );
  const required = approvalsRequired(policy);
  if (!recipients.some((r) => groups.has(r.entry)) && recipients.length < required)
    return (
      `the policy needs ${required} approval(s) but only ${recipients.length} approver(s) can be reached by mail` +
      (unreachable.length ? ` (no mailbox for ${unreachable.join(', ')})` : '')
    );
  return undefined;
}

/** Who decides: their stable key, their readable name, and how the audit trail names them. */
export interface Decider {
  id: string;
  name: string;
  audit: { actor: string; actorId?: string };
}

/**
 * Who is deciding with a link issued for `entry`. Where someone is signed in, it is them, and the entry must name
 * them as a policy entry would (`user:<object id>`, the UPN of a member account, or a group they are in). Without
 * sign-in (the sandbox's `dev` mode with no user header) the link itself stands for the user it names; a group
 * link always needs a signed-in person. The requester never decides on their own request.
 */
export function resolveDecider(
  entry: string,
  signedIn: Principal | undefined,
  requester: RequesterRef,
): Decider {
  const a = parseApproverEntry(entry);
  if (!a) throw new ApproverNotAllowed('the link does not name an approver');
  let person: Decider;
  if (signedIn) {
    if (!principalMatchesEntry(signedIn, a.entry)) {
      throw new ApproverNotAllowed(
        a.kind === 'user'
          ? `this link was sent to ${a.id}, but you are signed in as ${signedIn.name}`
          : `you are not a member of the approver group ${a.id}`,
      );
    }
    person = { id: signedIn.id.toLowerCase(), name: signedIn.name, audit: auditActor(signedIn) };
  } else {
    if (a.kind === 'group') throw new ApproverNotAllowed('a link sent to a group needs you to sign in');
    person = { id: a.id, name: a.id, audit: { actor: a.id } };
  }
  const self = requesterAliases(requester);
  if (self.has(person.id) || (signedIn?.objectId && self.has(signedIn.objectId.toLowerCase()))) {
    throw new SelfApprovalRefused('you asked for this access yourself: someone else has to decide');
  }
  return person;
}

/**
 * The approvals that count now: distinct people other than the requester who approved through an entry that is
 * still in the policy. Derived from the decision rows each time, never kept as a counter.
 */
export function countingApprovals(
  decisions: readonly ApprovalDecision[],
  policy: Policy | undefined,
  requester: RequesterRef,
): ApprovalDecision[] {
  const seen = new Set<string>();
  const self = requesterAliases(requester);
  const out: ApprovalDecision[] = [];
  for (const d of decisions) {
    if (d.decision !== 'approve' || seen.has(d.approver)) continue;
    if (self.has(d.approver) || !isStillApprover(policy, d.via)) continue;
    seen.add(d.approver);
    out.push(d);
  }
  return out;
}

export function looksLikeMailAddress(s: string): boolean {
  return /^[^\s@<>(),;:"[\]\\]+@[^\s@<>(),;:"[\]\\]+\.[^\s@<>(),;:"[\]\\]+$/.test(s) && s.length <= 254;
}
