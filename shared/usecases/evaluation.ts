/**
 * Deciding a submitted request by its policy: approve it, schedule its start, or ask the approvers.
 */
import { startsLater } from '../domain/lifecycle';
import type { StoredRequest } from '../domain/ports';
import { startApproval } from './approvals';
import { cancelSuperseded } from './scheduledMessages';
import { transition } from './transition';
import type { ApprovalPorts } from './approvals';
import type { CancelPorts } from './scheduledMessages';

/** What deciding a request by its policy needs. */
export type EvaluationPorts = ApprovalPorts & CancelPorts;

/**
 * `evaluateRequest` (queue jit-requests): decide by policy. Auto-approval moves the request on to `jit-grants`;
 * manual approval mails the approvers (shared/usecases/approvals.ts). A message for a request that already moved
 * on is a no-op, except that an `approved` request is handed on again and a pending one whose approvers were
 * never mailed is mailed (the previous run may have crashed between the write and the next step).
 */
export async function evaluateRequest(deps: EvaluationPorts, requestId: string): Promise<void> {
  const found = await deps.requests.get(requestId);
  if (!found) return void deps.log.warn('evaluate.unknown-request', { requestId });
  const r = found.value;
  if (r.status === 'approved') return deps.queues.enqueueGrant(r.id);
  const unmailed = r.status === 'pending-approval' && !r.approversNotifiedAt;
  if (r.status !== 'submitted' && !unmailed) return;

  const [policy] = await deps.policies.getForScopes([r.policyScope]);
  if (!policy) {
    await transition(
      deps,
      found,
      'denied',
      {
        statusReason: 'the policy was removed before the request was decided',
        endedAt: deps.clock.now().toISOString(),
      },
      {
        actor: 'system:policy',
        action: 'request.denied',
        detail: 'policy removed',
      },
    );
    return;
  }
  if (policy.approval.mode === 'auto' && startsLater(r, deps.clock.now())) {
    await scheduleStart(deps, found, {
      actor: 'system:policy',
      detail: `auto-approved by policy ${policy.scope}`,
    });
    return;
  }
  if (policy.approval.mode === 'auto') {
    const moved = await transition(
      deps,
      found,
      'approved',
      { approvedAt: deps.clock.now().toISOString() },
      {
        actor: 'system:policy',
        action: 'request.approved',
        detail: `auto-approved by policy ${policy.scope}`,
      },
    );
    if (moved) await deps.queues.enqueueGrant(r.id);
    return;
  }
  await startApproval(deps, found, policy);
}

/**
 * Approval of a request that asks to start later: schedule its start message, then move it to `scheduled` with
 * the message's sequence number (so a revoke can cancel it). The approval flow calls this too when approvers
 * decide before the start. Returns whether this call moved the request.
 */
async function scheduleStart(
  deps: EvaluationPorts,
  found: StoredRequest,
  audit: { actor: string; detail: string },
): Promise<boolean> {
  const r = found.value;
  const startAt = r.startAt as string;
  // The message first: a crash after it leaves a message the retry finds again (the same id, which Service Bus
  // drops as a duplicate, handing back the live one), never a request nothing will start.
  const sequenceNumber = await deps.scheduledMessages.schedule('start', r.id, startAt);
  const moved = await transition(
    deps,
    found,
    'scheduled',
    { approvedAt: deps.clock.now().toISOString(), startSequenceNumber: sequenceNumber },
    { actor: audit.actor, action: 'request.scheduled', detail: `${audit.detail}; starts at ${startAt}` },
  );
  // Lost the race: the message may be the very one the winner recorded (the same id), so it goes only if the
  // request ended or recorded another.
  if (!moved) await cancelSuperseded(deps, 'start', r.id, [{ sequenceNumber, dueAt: startAt }]);
  return moved !== undefined;
}
