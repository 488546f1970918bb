/**
 * A state change and its audit event, written so that one is never kept without the other.
 *
 * The write that makes the change also stores its event in the request row (`pendingAudit`), in the same
 * conditional write; the event is then appended to the trail, and the row cleared. A crash, or an append that
 * fails, between the two leaves the event in the row, and it is appended by whoever next moves the request on
 * (a retried message finds it as it reads), or by the reconciler: a request with a pending event stays on the
 * open index even when it is final, so the reconciler comes back for it.
 *
 * A reader leaves an event younger than PENDING_AUDIT_GRACE_MS to the writer that is appending it; a writer about
 * to move the request on appends a pending event at once (its write would replace it). Before appending, the
 * trail is asked for the event's `eventId` (in the request's index partition, then in its day, restoring the
 * index copies an interrupted append left out), so a second append takes two flushes racing. Copies share their
 * `eventId` (docs/audit.md).
 */
import { ulid } from 'ulid';
import { ConcurrencyConflict } from '../domain/errors';
import type {
  AuditLog,
  Clock,
  PendingAudit,
  RequestListOptions,
  RequestPage,
  RequestRepository,
  StoredRequest,
} from '../domain/ports';
import type { AccessRequest, AuditEvent } from '../domain/types';

export const PENDING_AUDIT_GRACE_MS = 10_000;

type OutboxDeps = { requests: RequestRepository; audit: AuditLog; clock: Clock };

/**
 * Writes a change with its event — a new request when `current` is undefined, else a conditional replace of
 * `current` — then appends the event and clears it from the row. An event `current` still holds is appended
 * first. Throws what the write throws (`ConcurrencyConflict`: nothing changed) and what the append throws (the
 * change stands and its event waits in the row).
 */
export async function writeAudited(
  deps: OutboxDeps,
  current: StoredRequest | undefined,
  next: AccessRequest,
  event: AuditEvent,
): Promise<StoredRequest> {
  let etag = current?.etag;
  if (current?.pendingAudit) {
    // Someone else wrote the request meanwhile (taking the event over): this write would lose anyway.
    const cleared = await appendPending(deps, current);
    if (!cleared) throw new ConcurrencyConflict(`request ${next.id} changed concurrently`);
    etag = cleared.etag;
  }
  const pending: PendingAudit = { eventId: ulid(), recordedAt: deps.clock.now().toISOString(), event };
  const written =
    etag === undefined
      ? await deps.requests.create(next, pending)
      : await deps.requests.update(next, etag, pending);
  await deps.audit.append({ ...event, eventId: pending.eventId });
  // If the row changed meanwhile, its new writer has taken the event over (and appends it again only if the
  // trail lacks it): the caller's next conditional write will find out.
  return (await clear(deps, { value: next, etag: written })) ?? { value: next, etag: written };
}

/**
 * Appends the event a request row still holds (unless the trail has it) and clears it. Returns the request as
 * it now is; when someone else wrote it meanwhile, as they left it.
 */
async function flushPendingAudit(deps: OutboxDeps, found: StoredRequest): Promise<StoredRequest | undefined> {
  if (!found.pendingAudit) return found;
  return (await appendPending(deps, found)) ?? deps.requests.get(found.value.id);
}

/** Appends a row's waiting event unless the trail has it, then clears it (see `clear`). */
async function appendPending(deps: OutboxDeps, found: StoredRequest): Promise<StoredRequest | undefined> {
  const pending = found.pendingAudit;
  if (pending && !(await deps.audit.hasEvent(found.value.id, pending.eventId, pending.recordedAt)))
    await deps.audit.append({ ...pending.event, eventId: pending.eventId });
  return clear(deps, found);
}

/** Removes the event from the row: the row as cleared, or undefined when it changed since `found` was read. */
async function clear(deps: OutboxDeps, found: StoredRequest): Promise<StoredRequest | undefined> {
  try {
    return { value: found.value, etag: await deps.requests.update(found.value, found.etag) };
  } catch (err) {
    if (err instanceof ConcurrencyConflict) return undefined;
    throw err;
  }
}

/**
 * The request repository as use cases see it: reading a request appends an event its row has held for longer
 * than the grace (its writer crashed or its append failed), so every retry, the reconciler and the API heal it.
 */
export class AuditedRequests implements RequestRepository {
  constructor(
    private readonly inner: RequestRepository & { forgetOpen(id: string): Promise<void> },
    private readonly audit: AuditLog,
    private readonly clock: Clock,
  ) {}

  create(request: AccessRequest, pendingAudit?: PendingAudit): Promise<string> {
    return this.inner.create(request, pendingAudit);
  }

  async get(id: string): Promise<StoredRequest | undefined> {
    const found = await this.inner.get(id);
    const pending = found?.pendingAudit;
    if (!found || !pending) return found;
    if (this.clock.now().getTime() - Date.parse(pending.recordedAt) < PENDING_AUDIT_GRACE_MS) return found;
    return flushPendingAudit({ requests: this.inner, audit: this.audit, clock: this.clock }, found);
  }

  update(request: AccessRequest, etag: string, pendingAudit?: PendingAudit): Promise<string> {
    return this.inner.update(request, etag, pendingAudit);
  }

  listOpen(): AsyncIterable<string> {
    return this.inner.listOpen();
  }

  listByRequester(requester: string, options: RequestListOptions): Promise<RequestPage> {
    return this.inner.listByRequester(requester, options);
  }

  forgetOpen(id: string): Promise<void> {
    return this.inner.forgetOpen(id);
  }
}
