/**
 * The audit trail's vocabulary: every `action` an audit event may carry, with what it records. This is the one
 * list: `AuditEvent.action` is typed by it, so the compiler refuses an action not listed here, and a test keeps
 * docs/audit.md's table equal to it.
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
    'a management lock or Azure RBAC refused deleting a grant rule, so the same rule was turned to Deny (it lets nothing in): nsg, rule, and what refused in detail; the delete is retried until it is allowed',
  'grant.close-blocked':
    'a ReadOnly lock refused both deleting and changing a grant rule: the access is still open (detail names the lock) until an operator lifts the lock',
  'grant.expired': 'access ended at its expiry, by the scheduled message or the reconciler (actor)',
  'grant.failed': 'the grant could not be applied or completed: why (detail)',
  'grant.extended': 'live access was extended: the new expiresAt, by how much and by whom (actor)',
  'grant.revoked': 'live access was ended early and its rules removed, by whom (actor)',
  'reconcile.redriven': 'the reconciler handed a stalled request on again (detail: to which step)',
  'reconcile.orphan-removed': 'the reconciler deleted a jit- rule no live grant accounts for: nsg, rule',
  'drift.detected':
    "the reconciler found someone else's allow rule opening a protected port to a broad source: nsg, rule, detail",
  'approval.requested': 'approval links were mailed: to whom, and the deadline (detail)',
  'approval.approved': "an approver approved, with their comment and the link's approver entry (detail)",
  'approval.denied': "an approver denied, with their reason and the link's approver entry (detail)",
  'policy.added': 'a policy was added: its scope and the whole policy (detail, JSON)',
  'policy.changed': 'a policy was changed: its scope, the fields changed, before and after (detail, JSON)',
  'policy.removed': 'a policy was removed: its scope and the policy it was (detail, JSON)',
  'baseline.applied':
    'a baseline deny rule of an enforcing policy was written: the rule and its NSG (detail)',
  'baseline.removed': 'a baseline deny rule was deleted (its policy stopped enforcing or covering the VM)',
  'baseline.restored': 'the reconciler put back a baseline deny rule that had gone missing or changed',
} as const;

export type AuditAction = keyof typeof AUDIT_ACTIONS;

export function isAuditAction(action: string): action is AuditAction {
  return Object.hasOwn(AUDIT_ACTIONS, action);
}
