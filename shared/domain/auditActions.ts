/**
 * The audit trail's vocabulary: every `action` an audit event may carry, with what it records. This is the one
 * list; add a new action here (and to docs/audit.md, which a test keeps in step) before writing it.
 * Names are `<subject>.<what happened>`, past tense, so a filter on a prefix (`grant.`) finds a family.
 */
export const AUDIT_ACTIONS = {
  'request.submitted':
    'a caller asked for access: vm, ports, sourcePrefix, justification, and the address they called from (clientAddress)',
  'request.pending-approval': 'the policy wants approvers: who, and how many (detail)',
  'request.approved':
    'approved, by the policy (actor system:policy) or by an approver (actor), with their comment in detail',
  'request.denied': 'denied, by the policy or by an approver (actor), with the reason in detail',
  'request.approval-expired': 'nobody decided before the approval timeout',
  'request.extended': 'the grant was extended: the new expiresAt, and by whom (actor)',
  'request.revoked': 'access was ended early, by whom (actor) and why (detail)',
  'request.scheduled': 'approved ahead of time: it waits until its start (detail)',
  'request.starting': 'a scheduled request reached its start and goes on to be applied',
  'request.cancelled': 'a request not yet live was cancelled, by whom (actor)',
  'grant.rule-applied': 'one NSG allow rule is in place: nsg, rule, priority (one event per NSG)',
  'grant.expiry-scheduled':
    'the one expiry message is scheduled: expiresAt and the Service Bus expirySequenceNumber',
  'grant.expiry-cancelled':
    'an expiry message was cancelled (a duplicate, or the grant changed): detail says why',
  'grant.activated': 'access is live until expiresAt; detail lists the rules',
  'grant.rule-removed': 'one NSG rule was deleted: nsg, rule',
  'grant.rule-neutralised':
    'a management lock refused deleting a grant rule, so the same rule was turned to Deny (it lets nothing in): nsg, rule, and the lock in detail; the delete is retried until the lock is lifted',
  'grant.close-blocked':
    'a ReadOnly lock refused both deleting and changing a grant rule: the access is still open (detail names the lock) until an operator lifts the lock',
  'grant.expired': 'access ended at its expiry, by the scheduled message or the reconciler (actor)',
  'grant.failed': 'the grant could not be applied or completed: why (detail)',
  'grant.revoked': 'live access was ended early and its rules removed, by whom (actor)',
  'reconcile.redriven': 'the reconciler handed a stalled request on again (detail: to which step)',
  'reconcile.drift-found':
    'the reconciler found an NSG that differs from what JIT recorded: nsg, rule, and what differs (detail)',
} as const;

export type AuditAction = keyof typeof AUDIT_ACTIONS;

export function isAuditAction(action: string): action is AuditAction {
  return Object.hasOwn(AUDIT_ACTIONS, action);
}
