/**
 * The API's answers as the CLI reads them. openapi.yaml is the contract; the request shapes are the CLI's own
 * (it reads fewer fields than the server stores), the policy shapes are the domain's types-only module.
 */
import type { PolicyDiff } from '../shared/domain/policyEntries';

interface RuleView {
  nsgId: string;
  ruleName: string;
  priority: number;
  state: string;
  destinationAddresses?: string[];
  /** False when a deny rule of higher priority in the same NSG lets none of the grant's traffic reach this rule. */
  effective?: boolean;
  shadowedBy?: string;
  /** Why it could not be closed (a ReadOnly lock): while set, it still lets traffic in. */
  closeBlocked?: string;
}

interface ApprovalSummary {
  approvers: string[];
  required: number;
  approvals: number;
  deadline?: string;
  decisions: Array<{ approver: string; decision: 'approve' | 'deny'; comment?: string; decidedAt: string }>;
}

export interface RequestView {
  id: string;
  requester: string;
  status: string;
  statusReason?: string;
  vmId: string;
  ports: number[];
  protocol: string;
  sourcePrefix: string;
  durationInSeconds: number;
  policyScope?: string;
  approvalMode?: 'auto' | 'manual';
  createdAt: string;
  startAt?: string;
  activatedAt?: string;
  expiresAt?: string;
  endedAt?: string;
  revokedBy?: string;
  approvalDeadline?: string;
  rules?: RuleView[];
  approval?: ApprovalSummary;
}

export interface RequestPage {
  items: RequestView[];
  continuationToken?: string;
}

export { REQUEST_STATUSES } from '../shared/domain/requestStatuses';
export type { AccessExplanation, PolicyEntry, PolicyPortEntry } from '../shared/domain/policyEntries';
export type { VerifyReport } from '../shared/domain/auditQuery';

/** Statuses after which nothing changes again. */
export const FINAL = new Set(['denied', 'approval-expired', 'failed', 'expired', 'revoked']);

/** `PUT /api/policies` and `DELETE /api/policies`: what changed (or would, in a dry run). */
export interface PolicyChangeResult extends PolicyDiff {
  dryRun: boolean;
  warnings: string[];
}
