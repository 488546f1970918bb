import { InvalidState } from './errors';
import type { RequestStatus } from './types';

/** The allowed moves between request states; everything else is refused. */
const TRANSITIONS: Record<RequestStatus, readonly RequestStatus[]> = {
  submitted: ['pending-approval', 'approved', 'scheduled', 'denied', 'failed'],
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
