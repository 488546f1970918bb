import { z } from 'zod';
import { parseDurationToSeconds } from './duration';
import { InvalidRequest } from './errors';
import { checked, toFieldProblems } from './requestInput';
import { parseVmId } from './resourceId';
import { REQUEST_STATUSES } from './requestStatuses';
import type { RequestStatus } from './types';

export { REQUEST_STATUSES };

/** Most requests one page of `GET /api/requests` holds. */
const MAX_PAGE_SIZE = 100;
const DEFAULT_PAGE_SIZE = 25;

/** The body of `POST /api/requests/{id}/extend`. */
const extendBodySchema = z.strictObject({ duration: checked(parseDurationToSeconds) });

/** Parses an extension: how many seconds to add to the current expiry. */
export function parseExtendBody(body: unknown): number {
  const r = extendBodySchema.safeParse(body);
  if (!r.success) throw new InvalidRequest(toFieldProblems(r.error));
  return parseDurationToSeconds(r.data.duration);
}

const pageSize = `must be a whole number from 1 to ${MAX_PAGE_SIZE}`;

/** The query of `GET /api/requests`. Unknown parameters are refused, as unknown body fields are. */
const listQuerySchema = z.strictObject({
  status: z.enum(REQUEST_STATUSES, { message: `must be one of ${REQUEST_STATUSES.join(', ')}` }).optional(),
  vm: checked(parseVmId).optional(),
  requester: z.string().trim().min(1, 'must not be empty').max(256, 'is too long').optional(),
  limit: z.coerce
    .number({ message: pageSize })
    .int(pageSize)
    .min(1, pageSize)
    .max(MAX_PAGE_SIZE, pageSize)
    .optional(),
  continuationToken: z.string().min(1, 'must not be empty').max(512, 'is too long').optional(),
});

export interface ListQuery {
  status?: RequestStatus;
  vmId?: string;
  requester?: string;
  limit: number;
  continuationToken?: string;
}

/** Parses the query string of a list call (already split into name → value). */
export function parseListQuery(query: Record<string, string>): ListQuery {
  const r = listQuerySchema.safeParse(query);
  if (!r.success) throw new InvalidRequest(toFieldProblems(r.error));
  const q = r.data;
  return {
    status: q.status,
    vmId: q.vm?.trim(),
    requester: q.requester?.toLowerCase(),
    limit: q.limit ?? DEFAULT_PAGE_SIZE,
    continuationToken: q.continuationToken,
  };
}
