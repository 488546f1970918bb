/**
 * The API's answers as the CLI reads them. openapi.yaml is the contract; these are the CLI's own copies of the
 * shapes it uses, so that the CLI package carries none of the server's code.
 */

export interface RuleView {
  nsgId: string;
  ruleName: string;
  priority: number;
  state: string;
  destinationAddresses?: string[];
}

export interface ApprovalSummary {
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

/** Statuses after which nothing changes again. */
export const FINAL = new Set(['denied', 'approval-expired', 'failed', 'expired', 'revoked']);

/** Every request status, in the order a request passes them (`jit list --status`). */
export const REQUEST_STATUSES = [
  'submitted',
  'pending-approval',
  'scheduled',
  'approved',
  'active',
  'denied',
  'approval-expired',
  'failed',
  'expired',
  'revoked',
] as const;

/** A policy's port as documents and the API write it. */
export interface PolicyPortEntry {
  port: number;
  protocol: string;
  maxDuration: string;
}

export interface PolicyEntry {
  scope: string;
  description?: string;
  ports: PolicyPortEntry[];
  allowedSourcePrefixes: string[];
  requesters: string[];
  approval: { mode: 'auto' } | { mode: 'manual'; approvers: string[]; required: number; timeout: string };
  justification: { required: boolean; pattern?: string };
  enforce: boolean;
}

/** `PUT /api/policies` and `DELETE /api/policies`: what changed (or would, in a dry run). */
export interface PolicyChangeResult {
  dryRun: boolean;
  added: PolicyEntry[];
  changed: Array<{ scope: string; fields: Array<{ field: string; before?: unknown; after?: unknown }> }>;
  removed: PolicyEntry[];
  unchanged: number;
  warnings: string[];
}

/** `GET /api/policies/explain`. */
export interface AccessExplanation {
  vm: string;
  checked: Array<{
    scope: string;
    level: 'vm' | 'resourceGroup' | 'subscription';
    hasPolicy: boolean;
    decides: boolean;
  }>;
  decidedBy?: string;
  policy?: PolicyEntry;
  callerIsRequester: boolean;
  port?: { port: number; protocol: string; allowed: boolean; maxDuration?: string };
}

/** `GET /api/audit/verify`. */
export interface VerifyReport {
  fromDay: string;
  toDay: string;
  ok: boolean;
  events: number;
  days: Array<{ day: string; events: number; headSeq?: number; headHash?: string }>;
  firstBreak?: { day: string; seq?: number; kind: string; message: string };
  problems: Array<{ day: string; seq?: number; kind: string; message: string }>;
  problemCount: number;
}
