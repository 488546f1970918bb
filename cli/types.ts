/** The API's answers as the CLI reads them (openapi.yaml is the contract). */

export interface RuleView {
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
  createdAt: string;
  startAt?: string;
  activatedAt?: string;
  expiresAt?: string;
  endedAt?: string;
  revokedBy?: string;
  rules?: RuleView[];
}

export interface RequestPage {
  items: RequestView[];
  continuationToken?: string;
}

/** Statuses after which nothing changes again. */
export const FINAL = new Set(['denied', 'approval-expired', 'failed', 'expired', 'revoked']);
