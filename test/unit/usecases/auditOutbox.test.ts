/**
 * The audit outbox: a state change and its event are never kept apart. The request store and the trail here are
 * the in-memory ones of test/support/memory.ts (ETags, `pendingAudit` kept only when given, the chained trail); the sandbox
 * tests in test/integration/soakFindings.test.ts take the real table away mid-flight.
 */
import type { AuditAction } from '../../../shared/domain/auditActions';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConcurrencyConflict } from '../../../shared/domain/errors';
import type { PendingAudit, StoredRequest } from '../../../shared/domain/ports';
import type { AccessRequest, AuditEvent } from '../../../shared/domain/types';
import { AuditedRequests, PENDING_AUDIT_GRACE_MS, writeAudited } from '../../../shared/usecases/auditOutbox';
import { anAccessRequest } from '../../support/builders';
import { MemoryAudit, MemoryClock, MemoryRequests } from '../../support/memory';

function setup() {
  const clock = new MemoryClock('2026-11-25T10:00:00Z');
  const inner = new MemoryRequests();
  const audit = new MemoryAudit(clock);
  const requests = new AuditedRequests(inner, audit, clock);
  const deps = { requests, audit, clock };
  /** One state change of R1 (its creation when `current` is undefined), with its event. */
  const change = (current: StoredRequest | undefined, status: AccessRequest['status'], action: AuditAction) =>
    writeAudited(deps, current, { ...REQUEST, status }, event(action));
  const submit = () => change(undefined, 'submitted', 'request.submitted');
  /** A change whose append fails: it stands, and its event waits in the row. */
  const failedChange = async (
    current: StoredRequest,
    status: AccessRequest['status'],
    action: AuditAction,
  ) => {
    audit.failAppends = 1;
    await assert.rejects(change(current, status, action), /the audit table did not answer/);
  };
  return {
    inner,
    audit,
    requests,
    clock,
    change,
    submit,
    failedChange,
    advance: (ms: number) => clock.advance(ms / 1000),
  };
}

const REQUEST: AccessRequest = anAccessRequest({
  id: 'R1',
  createdAt: '2026-11-25T10:00:00.000Z',
  updatedAt: '2026-11-25T10:00:00.000Z',
});
const event = (action: AuditAction): AuditEvent => ({ actor: 'system:test', action, requestId: 'R1' });

test('a change is written with its event, the event appended with its id, and the row cleared', async () => {
  const { inner, audit, submit } = setup();
  const created = await submit();
  assert.equal(created.pendingAudit, undefined);
  assert.equal(inner.rows.get('R1')?.pendingAudit, undefined, 'the row no longer holds the event');
  assert.deepEqual(
    audit.events().map((e) => e.action),
    ['request.submitted'],
  );
  assert.match(audit.events()[0]?.eventId ?? '', /^[0-9A-Z]{26}$/);
});

test('an append that fails leaves the event in the row; a read past the grace appends it once and clears it', async () => {
  const { inner, audit, requests, submit, failedChange, advance } = setup();
  const created = await submit();
  await failedChange(created, 'denied', 'request.denied');
  // The change stands, with its event waiting, and the final request stays on the reconciler's list.
  assert.equal(inner.rows.get('R1')?.value.status, 'denied');
  assert.equal(inner.rows.get('R1')?.pendingAudit?.event.action, 'request.denied');
  assert.ok(inner.open.has('R1'));

  // Within the grace a reader leaves it to its writer.
  assert.ok((await requests.get('R1'))?.pendingAudit);
  assert.deepEqual(
    audit.events().map((e) => e.action),
    ['request.submitted'],
  );

  advance(PENDING_AUDIT_GRACE_MS + 1);
  const healed = await requests.get('R1');
  assert.equal(healed?.pendingAudit, undefined);
  assert.equal(healed?.value.status, 'denied');
  assert.deepEqual(
    audit.events().map((e) => e.action),
    ['request.submitted', 'request.denied'],
  );
  assert.ok(!inner.open.has('R1'), 'cleared, the final request leaves the list');
  await requests.get('R1');
  assert.equal(audit.events().length, 2, 'appended once');
});

test('an event already in the trail (a crash after the append, before the clear) is not appended again', async () => {
  const { inner, audit, requests, clock, submit, advance } = setup();
  const created = await submit();
  // Simulate the crash: the row still holds an event the trail already has.
  const row = inner.rows.get('R1')!;
  const pending: PendingAudit = {
    eventId: audit.events()[0]!.eventId!,
    recordedAt: clock.now().toISOString(),
    event: event('request.submitted'),
  };
  inner.rows.set('R1', { ...row, etag: created.etag, pendingAudit: pending });
  advance(PENDING_AUDIT_GRACE_MS + 1);
  assert.equal((await requests.get('R1'))?.pendingAudit, undefined);
  assert.equal(audit.events().length, 1);
});

test('the next change appends a waiting event first, whatever its age, so the trail keeps their order', async () => {
  const { audit, requests, submit, change, failedChange } = setup();
  const created = await submit();
  await failedChange(created, 'approved', 'request.approved');
  const waiting = await requests.get('R1');
  assert.ok(waiting?.pendingAudit, 'fresh: a reader left it');
  await change(waiting, 'failed', 'grant.failed');
  assert.deepEqual(
    audit.events().map((e) => e.action),
    ['request.submitted', 'request.approved', 'grant.failed'],
  );
});

test('a change based on a stale read writes nothing, even when it found an event waiting', async () => {
  const { inner, audit, requests, submit, change, failedChange } = setup();
  const created = await submit();
  await failedChange(created, 'approved', 'request.approved');
  const stale = (await requests.get('R1'))!;
  // Someone else moves it on meanwhile (and takes the waiting event with them).
  await change(stale, 'active', 'grant.activated');
  await assert.rejects(change(stale, 'failed', 'grant.failed'), ConcurrencyConflict);
  assert.equal(inner.rows.get('R1')?.value.status, 'active');
  assert.deepEqual(
    audit.events().map((e) => e.action),
    ['request.submitted', 'request.approved', 'grant.activated'],
  );
});
