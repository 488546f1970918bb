import { InvalidState } from './errors';
import type { RequestStatus } from './types';

/**
 * The allowed moves between request states; everything else is refused.
 * A request with a later start waits approved-but-idle: `submitted → scheduled → approved → active` when a policy
 * approves it at once, `pending-approval → scheduled` when approvers do. Anything not yet final may be revoked
 * (before it is live, that is a cancellation).
 */
const TRANSITIONS: Record<RequestStatus, readonly RequestStatus[]> = {
  submitted: ['pending-approval', 'approved', 'scheduled', 'denied', 'failed', 'revoked'],
  'pending-approval': ['approved', 'scheduled', 'denied', 'approval-expired', 'revoked'],
  scheduled: ['approved', 'revoked', 'failed'],
  approved: ['active', 'failed', 'revoked'],
  active: ['expired', 'revoked', 'failed'],
  denied: [],
  'approval-expired': [],
  failed: [],
  expired: [],
  revoked: [],
};

export function canTransition(from: RequestStatus, to: RequestStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: RequestStatus, to: RequestStatus): void {
  if (!canTransition(from, to)) throw new InvalidState(`a request that is ${from} cannot become ${to}`);
}
