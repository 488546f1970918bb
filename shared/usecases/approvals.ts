/**
 * Manual approval (issue #3): mail each approver a signed link, let them see the request (GET changes nothing)
 * and decide (POST), and move the request on once enough distinct people approved, at the first denial, or at
 * the deadline. Every decision is one row written with a conditional insert; the approval count is derived from
 * those rows, and the request's move is an ETag-conditional write, so simultaneous last approvals grant once.
 */
import type { ApprovalDecision, ApprovalView, Decider, Decision } from '../domain/approval';
import {
  MAX_DECISION_COMMENT_LENGTH,
  approvalRecipients,
  approvalsRequired,
  approverEntries,
  countingApprovals,
  decidedByRequester,
  isStillApprover,
  resolveDecider,
  whyNeverApproved,
} from '../domain/approval';
import {
  ApprovalClosed,
  ApprovalTokenInvalid,
  ApproverNotAllowed,
  ConcurrencyConflict,
  InvalidRequest,
  TransientFailure,
} from '../domain/errors';
import { planGrantRules } from '../domain/networkPath';
import type { RulePlacement } from '../domain/networkPath';
import { notifiedRequest } from '../domain/notifications';
import type { StoredRequest } from '../domain/ports';
import type { AccessRequest, Policy, Principal } from '../domain/types';
import { freeTextProblem } from '../domain/text';
import type { Deps } from './deps';
import { transition } from './transition';
import { notifyRequester } from './notify';
import { announce } from './notifyChannels';
import { NO_SIGN_IN_FOR_APPROVERS } from './serving';
import type { NotifyPorts } from './notify';
import type { TransitionPorts } from './transition';

/** What manual approval needs. */
export type ApprovalPorts = TransitionPorts &
  NotifyPorts &
  Pick<Deps, 'approvals' | 'policies' | 'queues' | 'network' | 'scheduledMessages'>;

/**
 * The link an approver gets. `intent` only marks which button they pressed in the mail; it never decides. No
 * fragment: a jump to the form would scroll the request itself off a phone's first screen.
 */
function approvalLink(publicBaseUrl: string, token: string, intent: Decision): string {
  return `${publicBaseUrl}/api/approvals?token=${encodeURIComponent(token)}&intent=${intent}`;
}

/**
 * From `evaluateRequest` for a manual policy: `submitted` → `pending-approval` with a deadline, then the deadline
 * message, one mail per approver and one to the requester. Called again for a pending request whose approvers
 * were never mailed (a crash or a mail failure in between), it mails them then. While approval links or mail are
 * switched off it changes nothing.
 */
export async function startApproval(
  deps: ApprovalPorts,
  found: StoredRequest,
  policy: Policy,
): Promise<void> {
  const a = deps.approvals;
  const r = found.value;
  if (a.unavailableFeature) {
    // Held as it is, never denied for a broken setting: the reconciler hands a request that sits here back to
    // evaluateRequest, which asks the approvers once the feature is back (docs/operations.md).
    deps.log.warn('approval.feature-unavailable', { requestId: r.id, feature: a.unavailableFeature });
    return;
  }
  const required = approvalsRequired(policy);
  const { recipients, unreachable } = approvalRecipients(policy, r, a.groupMailboxes);
  let current = found;

  if (r.status === 'submitted') {
    const impossible =
      a.signInAvailable === false
        ? NO_SIGN_IN_FOR_APPROVERS
        : whyNeverApproved(policy, r, recipients, unreachable);
    if (impossible) {
      const denied = await transition(
        deps,
        current,
        'denied',
        { statusReason: `cannot be approved: ${impossible}`, endedAt: deps.clock.now().toISOString() },
        { actor: 'system:policy', action: 'request.denied', detail: impossible },
      );
      if (denied) await notifyRequester(deps, denied.value);
      return;
    }
    const deadline = new Date(
      deps.clock.now().getTime() + policy.approval.timeoutInSeconds * 1000,
    ).toISOString();
    const moved = await transition(
      deps,
      current,
      'pending-approval',
      { approvalDeadline: deadline },
      {
        actor: 'system:policy',
        action: 'request.pending-approval',
        detail: `awaiting ${required} approval(s) from ${approverEntries(policy)
          .map((e) => e.entry)
          .join(', ')} until ${deadline}`,
      },
    );
    if (!moved) return; // another run moved it first and carries on from there
    current = moved;
  }

  const deadline =
    current.value.approvalDeadline ??
    new Date(deps.clock.now().getTime() + policy.approval.timeoutInSeconds * 1000).toISOString();
  // The deadline message before the mails, and its sequence number recorded, so a retry after a mail failure
  // schedules nothing more. A crash between the two leaves it unrecorded: the retry schedules the same id, which
  // Service Bus drops as a duplicate, and records the live message it hands back.
  if (!current.value.approvalDeadlineSequenceNumber) {
    const sequenceNumber = await deps.scheduledMessages.schedule('approval-deadline', r.id, deadline);
    current = await recordDeadlineMessage(deps, current, deadline, sequenceNumber);
  }

  const links: Array<{ approver: string; url: string }> = [];
  for (const to of recipients) {
    const token = await a.tokens.issue({ requestId: r.id, approver: to.entry }, new Date(deadline));
    links.push({ approver: to.entry, url: approvalLink(a.publicBaseUrl, token, 'approve') });
    await a.mailer.send(
      a.compose.approverMail({
        request: current.value,
        to: to.address,
        approveUrl: approvalLink(a.publicBaseUrl, token, 'approve'),
        denyUrl: approvalLink(a.publicBaseUrl, token, 'deny'),
        required,
        approverCount: approverEntries(policy).length,
        expiresAt: deadline,
        group: to.entry.startsWith('group:') ? to.entry.slice(6) : undefined,
      }),
    );
  }
  const now = deps.clock.now().toISOString();
  const marked: AccessRequest = {
    ...current.value,
    approvalDeadline: deadline,
    approversNotifiedAt: now,
    updatedAt: now,
  };
  let stillPending = true;
  try {
    await deps.requests.update(marked, current.etag, current.pendingAudit);
  } catch (err) {
    // Someone decided already (a quick approver): the mails went out, which is all the mark would say, and the
    // requester has been told the decision, so "waiting for approval" would now be wrong.
    if (!(err instanceof ConcurrencyConflict)) throw err;
    stillPending = (await deps.requests.get(r.id))?.value.status === 'pending-approval';
  }
  const mailed = recipients.map((x) => `${x.address} (${x.entry})`).join(', ');
  await deps.audit.append({
    actor: 'system:approvals',
    action: 'approval.requested',
    requestId: r.id,
    vm: r.vmId,
    ports: r.ports,
    sourcePrefix: r.sourcePrefix,
    detail: `links mailed to ${mailed}${unreachable.length ? `; no mailbox for ${unreachable.join(', ')}` : ''}; decide by ${deadline}`,
  });
  if (unreachable.length)
    deps.log.warn('approval.unreachable-approvers', { requestId: r.id, approvers: unreachable });
  deps.log.info('approval.requested', { requestId: r.id, links: recipients.length, required });
  if (!stillPending) return;
  // Chat and webhook targets get the same links: each still works only for the approver it names.
  await announce(deps, {
    kind: 'approval.needed',
    actor: 'system:approvals',
    request: notifiedRequest(marked),
    approvals: links,
    approvalDeadline: deadline,
  });
  await notifyRequester(
    deps,
    marked,
    `Asked: ${recipients.map((x) => x.address).join(', ')}. ${required} approval${required === 1 ? ' is' : 's are'} needed; one denial ends the request.`,
  );
}

/**
 * Writes the deadline message's sequence number into the pending request. Someone else writing first (a quick
 * decision) is no failure: the request is returned as it was, and the later writes find out.
 */
async function recordDeadlineMessage(
  deps: ApprovalPorts,
  current: StoredRequest,
  deadline: string,
  sequenceNumber: string,
): Promise<StoredRequest> {
  const value: AccessRequest = {
    ...current.value,
    approvalDeadline: deadline,
    approvalDeadlineSequenceNumber: sequenceNumber,
    updatedAt: deps.clock.now().toISOString(),
  };
  try {
    const etag = await deps.requests.update(value, current.etag, current.pendingAudit);
    return { value, etag, pendingAudit: current.pendingAudit };
  } catch (err) {
    if (err instanceof ConcurrencyConflict) return current;
    throw err;
  }
}

interface DecisionContext {
  found: StoredRequest;
  policy: Policy;
  decider: Decider;
}

/**
 * What every use of a link checks after its signature: the request exists, the person deciding is the one the
 * link names (and not the requester), and the link's entry is still an approver in the policy as it is now.
 */
async function loadForDecision(
  deps: ApprovalPorts,
  claims: { requestId: string; approver: string },
  signedIn: Principal | undefined,
): Promise<DecisionContext> {
  const found = await deps.requests.get(claims.requestId);
  // A genuine token names a request that existed; its absence means the row was deleted by hand.
  if (!found) throw new ApprovalTokenInvalid('the request this link names no longer exists');
  const decider = resolveDecider(claims.approver, signedIn, found.value);
  const [policy] = await deps.policies.getForScopes([found.value.policyScope]);
  if (!policy || !isStillApprover(policy, claims.approver)) {
    throw new ApproverNotAllowed('the link was sent to an approver the policy for this VM no longer names');
  }
  return { found, policy, decider };
}

/** `GET /api/approvals?token=…`: checks the link and shows the request. Reads only: mail scanners fetch links. */
export async function viewApproval(
  deps: ApprovalPorts,
  token: string,
  signedIn: Principal | undefined,
): Promise<ApprovalView> {
  const a = deps.approvals;
  const claims = await a.tokens.verify(token);
  const { found, policy, decider } = await loadForDecision(deps, claims, signedIn);
  const r = found.value;
  const decisions = await a.decisions.list(r.id);
  const earlier = decisions.find((d) => d.approver === decider.id);
  const open = r.status === 'pending-approval' && !earlier && !deadlinePassed(deps, r);
  return {
    request: r,
    decider: decider.name,
    approvals: countingApprovals(decisions, policy, r).length,
    required: approvalsRequired(policy),
    earlier,
    form: open
      ? { token, formToken: await a.tokens.issueFormToken(claims.tokenId, signedIn?.id) }
      : undefined,
    opens: open ? await whatOpens(deps, r) : undefined,
  };
}

/**
 * What approving would open, read from ARM as applyGrant will: the NSGs in front of the VM and its private
 * addresses. Only a read, and only when a decision can be made; if ARM cannot answer, the page says it in words.
 */
async function whatOpens(deps: ApprovalPorts, r: AccessRequest): Promise<RulePlacement[] | undefined> {
  try {
    return planGrantRules(await deps.network.resolvePath(r.vmId), r.sourcePrefix);
  } catch (err) {
    deps.log.warn('approval.path-unknown', { requestId: r.id, error: String(err) });
    return undefined;
  }
}

export interface DecisionInput {
  token: string;
  /** The form token the page carried (CSRF). */
  formToken: string;
  decision: string;
  comment?: string;
  signedIn?: Principal;
  clientAddress?: string;
}

export interface DecisionOutcome {
  request: AccessRequest;
  decision: Decision;
  /** The decider's readable name. */
  decider: string;
  approvals: number;
  required: number;
}

/**
 * `POST /api/approvals`: records one approver's decision, once, and moves the request on if that settles it.
 * Refused (and nothing written) for a bad or expired link, a forged form, the requester, someone the link or the
 * policy no longer names, a request no longer pending, or a second decision by the same approver.
 */
export async function decideApproval(deps: ApprovalPorts, input: DecisionInput): Promise<DecisionOutcome> {
  const a = deps.approvals;
  const claims = await a.tokens.verify(input.token);
  await a.tokens.verifyFormToken(input.formToken, claims.tokenId, input.signedIn?.id);
  if (input.decision !== 'approve' && input.decision !== 'deny') {
    throw new InvalidRequest([{ field: 'decision', reason: 'must be approve or deny' }]);
  }
  const decision: Decision = input.decision;
  const comment = input.comment?.trim() || undefined;
  if (comment && comment.length > MAX_DECISION_COMMENT_LENGTH) {
    throw new InvalidRequest([
      { field: 'comment', reason: `must be at most ${MAX_DECISION_COMMENT_LENGTH} characters` },
    ]);
  }
  const textProblem = comment ? freeTextProblem(comment) : undefined;
  if (textProblem) throw new InvalidRequest([{ field: 'comment', reason: textProblem }]);
  if (decision === 'deny' && !comment) {
    throw new InvalidRequest([
      { field: 'comment', reason: 'is required to deny: the requester is told the reason' },
    ]);
  }

  const { found, decider } = await loadForDecision(deps, claims, input.signedIn);
  const r = found.value;
  if (r.status !== 'pending-approval') throw new ApprovalClosed(r.status);
  if (deadlinePassed(deps, r)) {
    throw new ApprovalClosed(
      'approval-expired',
      `the time to decide on this request ran out at ${r.approvalDeadline ?? 'its deadline'}`,
    );
  }
  const decidedAt = deps.clock.now().toISOString();
  await a.decisions.record({
    requestId: r.id,
    approver: decider.id,
    approverName: decider.name,
    via: claims.approver,
    decision,
    comment,
    decidedAt,
    clientAddress: input.clientAddress,
    tokenId: claims.tokenId,
  });
  await deps.audit.append({
    ...decider.audit,
    action: decision === 'approve' ? 'approval.approved' : 'approval.denied',
    requestId: r.id,
    vm: r.vmId,
    ports: r.ports,
    sourcePrefix: r.sourcePrefix,
    detail: `${comment ? `comment: ${comment}; ` : ''}as ${claims.approver}`,
    clientAddress: input.clientAddress,
  });
  deps.log.info(decision === 'approve' ? 'approval.approved' : 'approval.denied', {
    requestId: r.id,
    approver: decider.id,
  });
  const settled = await settleApproval(deps, r.id, { ...decider.audit, clientAddress: input.clientAddress });
  return { ...settled, decision, decider: decider.name };
}

/**
 * Looks at the decision rows and moves a pending request if they settle it: a denial from a current approver
 * ends it; enough distinct current approvers approve it (and hand it to `jit-grants`). The move is conditional:
 * when two last approvals race, one write wins, the other re-reads and finds the request approved.
 */
async function settleApproval(
  deps: ApprovalPorts,
  requestId: string,
  by: { actor: string; actorId?: string; clientAddress?: string },
): Promise<{ request: AccessRequest; approvals: number; required: number }> {
  const a = deps.approvals;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const found = await deps.requests.get(requestId);
    if (!found) throw new ApprovalTokenInvalid('the request no longer exists');
    const r = found.value;
    const [policy] = await deps.policies.getForScopes([r.policyScope]);
    const decisions = await a.decisions.list(requestId);
    const approving = countingApprovals(decisions, policy, r);
    const required = policy ? approvalsRequired(policy) : Number.POSITIVE_INFINITY;
    const result = (request: AccessRequest) => ({ request, approvals: approving.length, required });
    if (r.status !== 'pending-approval') return result(r);

    const denial = decisions.find(
      (d) => d.decision === 'deny' && !decidedByRequester(d, r) && isStillApprover(policy, d.via),
    );
    let moved: StoredRequest | undefined;
    if (denial) {
      const reason = `denied by ${denial.approverName ?? denial.approver}${denial.comment ? `: ${denial.comment}` : ''}`;
      moved = await transition(
        deps,
        found,
        'denied',
        { statusReason: reason, endedAt: deps.clock.now().toISOString() },
        {
          actor: by.actor,
          ...(by.actorId ? { actorId: by.actorId } : {}),
          action: 'request.denied',
          detail: reason,
          clientAddress: by.clientAddress,
        },
      );
    } else if (approving.length >= required) {
      const names = approving.map((d) => d.approverName ?? d.approver).join(', ');
      moved = await transition(
        deps,
        found,
        'approved',
        { approvedAt: deps.clock.now().toISOString(), statusReason: `approved by ${names}` },
        {
          actor: by.actor,
          ...(by.actorId ? { actorId: by.actorId } : {}),
          action: 'request.approved',
          detail: `approved by ${names} (${approving.length} of ${required} required)`,
          clientAddress: by.clientAddress,
        },
      );
      if (moved) {
        try {
          await deps.queues.enqueueGrant(requestId);
        } catch (err) {
          // The approval stands and the request is listed as open: the reconciler hands it on.
          deps.log.error('approval.enqueue-failed', { requestId, error: String(err) });
        }
      }
    } else {
      return result(r);
    }
    if (moved) {
      await notifyRequester(deps, moved.value, approvalComments(approving));
      await tellOtherApprovers(deps, policy, moved.value, decisions);
      return result(moved.value);
    }
    // Lost a race (another decision, or the deadline): read again and see where it stands.
  }
  throw new TransientFailure(
    'the request kept changing while the decision was applied; reload and try again',
  );
}

/**
 * The approval deadline (Service Bus message, or the reconciler): a request still pending becomes
 * `approval-expired`. Decisions already recorded are applied first, so an approval that landed just before the
 * deadline is not lost to a crash between its row and the request's move.
 */
export async function expireApproval(
  deps: ApprovalPorts,
  message: { requestId: string; deadline: string },
  actor = 'system:approval-deadline',
): Promise<void> {
  const found = await deps.requests.get(message.requestId);
  if (!found)
    return void deps.log.warn('approval.deadline-unknown-request', { requestId: message.requestId });
  const deadline = found.value.approvalDeadline ?? message.deadline;
  if (found.value.status !== 'pending-approval') {
    return void deps.log.info('approval.deadline-stale', {
      requestId: found.value.id,
      status: found.value.status,
    });
  }
  if (deps.clock.now().getTime() < Date.parse(deadline)) {
    // Early (clock skew between sender and here): the reconciler closes it once the deadline has passed.
    return void deps.log.warn('approval.deadline-early', { requestId: found.value.id, deadline });
  }
  const settled = await settleApproval(deps, found.value.id, { actor });
  if (settled.request.status !== 'pending-approval') return;
  for (let attempt = 1; attempt <= 5; attempt++) {
    const current = await deps.requests.get(found.value.id);
    if (!current || current.value.status !== 'pending-approval') return;
    const moved = await transition(
      deps,
      current,
      'approval-expired',
      {
        statusReason: `no decision by ${deadline} (${settled.approvals} of ${settled.required} approvals)`,
        endedAt: deps.clock.now().toISOString(),
      },
      {
        actor,
        action: 'request.approval-expired',
        detail: `${settled.approvals} of ${settled.required} approvals by ${deadline}`,
      },
    );
    if (moved) {
      await notifyRequester(deps, moved.value);
      const [policy] = await deps.policies.getForScopes([moved.value.policyScope]);
      await tellOtherApprovers(
        deps,
        policy,
        moved.value,
        await deps.approvals.decisions.list(moved.value.id),
      );
      return;
    }
  }
  throw new TransientFailure('the request kept changing while its approval deadline was applied');
}

/** The approvers' notes on an approval, for the requester's mail: a denial's reason is its status reason. */
function approvalComments(approving: ApprovalDecision[]): string | undefined {
  const notes = approving.filter((d) => d.comment).map((d) => `${d.approver}: "${d.comment}"`);
  return notes.length
    ? `Comment${notes.length === 1 ? '' : 's'} from the approver${notes.length === 1 ? '' : 's'}: ${notes.join('; ')}`
    : undefined;
}

/**
 * Once a request is settled, the approvers whose links were not used hear so, and need not open them. Best
 * effort, like every mail: the decision stands whether or not the mail server answers.
 */
async function tellOtherApprovers(
  deps: ApprovalPorts,
  policy: Policy | undefined,
  request: AccessRequest,
  decisions: readonly ApprovalDecision[],
): Promise<void> {
  const a = deps.approvals;
  if (!policy) return;
  const used = new Set(decisions.map((d) => d.via));
  const { recipients } = approvalRecipients(policy, request.requester, a.groupMailboxes);
  for (const to of recipients.filter((x) => !used.has(x.entry))) {
    try {
      await a.mailer.send(a.compose.settledMail(request, to.address));
    } catch (err) {
      deps.log.warn('approval.settled-mail-failed', {
        requestId: request.id,
        to: to.address,
        error: String(err),
      });
    }
  }
}

function deadlinePassed(deps: ApprovalPorts, r: AccessRequest): boolean {
  return r.approvalDeadline !== undefined && deps.clock.now().getTime() >= Date.parse(r.approvalDeadline);
}
