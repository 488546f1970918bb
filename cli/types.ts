/** The API's answers as the CLI reads them (openapi.yaml is the contract). */

export interface RuleView {
  nsgId: string;
  ruleName: string;
  priority: number;
  state: string;
  destinationAddresses?: string[];
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
