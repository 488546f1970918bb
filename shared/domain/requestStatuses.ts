/** The request statuses as a list, in the order a request passes them: for filters, and for `jit list --status`. */
import type { RequestStatus } from './types';

/** Every request status (the compiler checks the list is complete). */
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
] as const satisfies readonly RequestStatus[];
type Complete = RequestStatus extends (typeof REQUEST_STATUSES)[number] ? true : never;
const complete: Complete = true;
void complete;
