/**
 * Reading and checking the audit trail against the in-memory one, whose rows are chained by the domain's own code:
 * who may read it, what a query returns, what a verification finds in a trail tampered with, what the daily
 * anchoring writes and refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isAuditAction } from '../../../shared/domain/auditActions';
import { RoleRequired } from '../../../shared/domain/errors';
import type { AuditEvent } from '../../../shared/domain/types';
import { anchorAuditDays, listAudit, verifyAudit } from '../../../shared/usecases/audit';
import {
  aPolicy,
  aPrincipal,
  aRequestBody,
  anAdmin,
  anAuditor,
  resourceGroupOf,
} from '../../support/builders';
import { memoryWorld } from '../../support/world';

const alice = aPrincipal('alice@example.com');

/** A world whose trail holds one request's way to live access, on 2026-03-14. */
async function withTrail() {
  const w = memoryWorld({ start: '2026-03-14T09:00:00.000Z' });
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  return { w, vm, id: r.id };
}

const anchorDeps = (w: ReturnType<typeof memoryWorld>) => ({
  trail: w.audit,
  anchors: w.anchors,
  clock: w.clock,
  signals: w.signals,
  log: w.log,
});

test('only auditors and admins read the trail; a query by request returns its events newest first', async () => {
  const { w, id } = await withTrail();
  await assert.rejects(listAudit(w.audit, alice, [['requestId', id]]), RoleRequired);
  const page = await listAudit(w.audit, anAuditor(), [['requestId', id]]);
  assert.deepEqual(
    page.items.map((e) => e.action),
    [
      'grant.activated',
      'grant.expiry-scheduled',
      'grant.rule-applied',
      'request.approved',
      'request.submitted',
    ],
  );
  assert.deepEqual(
    page.items.map((e) => e.seq),
    [5, 4, 3, 2, 1],
  );
  const firstTwo = await listAudit(w.audit, anAdmin(), [
    ['requestId', id],
    ['pageSize', '2'],
  ]);
  assert.equal(firstTwo.items.length, 2);
  const rest = await listAudit(w.audit, anAdmin(), [
    ['requestId', id],
    ['pageSize', '2'],
    ['continuationToken', firstTwo.continuationToken!],
  ]);
  assert.deepEqual(
    rest.items.map((e) => e.action),
    ['grant.rule-applied', 'request.approved'],
  );
});

test('a verification of an untouched trail is sound; an edited or deleted row is named', async () => {
  const { w } = await withTrail();
  const range: Array<[string, string]> = [
    ['from', '2026-03-14'],
    ['to', '2026-03-15'],
  ];
  const sound = await verifyAudit(w.audit, w.clock, anAuditor(), range);
  assert.deepEqual([sound.ok, sound.events, sound.problems], [true, 5, []]);
  await assert.rejects(verifyAudit(w.audit, w.clock, alice, range), RoleRequired);

  const rows = w.audit.days.get('2026-03-14')!;
  const approved = rows.find((r) => r.action === 'request.approved')!;
  approved.detail = 'approved by nobody';
  const edited = await verifyAudit(w.audit, w.clock, anAuditor(), range);
  assert.equal(edited.ok, false);
  assert.deepEqual(
    edited.problems.map((p) => [p.seq, p.kind]),
    [[approved.seq, 'edited']],
  );

  rows.splice(rows.indexOf(approved), 1);
  const deleted = await verifyAudit(w.audit, w.clock, anAuditor(), range);
  assert.deepEqual(
    deleted.problems.map((p) => [p.seq, p.kind]),
    [[approved.seq, 'missing']],
  );
});

test('a day taken off the list of days is still read, and named', async () => {
  const { w } = await withTrail();
  w.audit.unlisted.add('2026-03-14');
  const report = await verifyAudit(w.audit, w.clock, anAuditor(), [['from', '2026-03-14']]);
  assert.equal(report.events, 5, 'its events are still checked');
  assert.deepEqual(
    report.problems.map((p) => [p.day, p.kind]),
    [['2026-03-14', 'unregistered']],
  );
});

test("a day's first event links to the day before, and the link is checked", async () => {
  const { w } = await withTrail();
  w.clock.set('2026-03-15T08:00:00.000Z');
  await w.audit.append({ actor: 'system:reconciler', action: 'reconcile.redriven', detail: 'next day' });
  const [first] = await w.audit.readDay('2026-03-15');
  assert.deepEqual([first?.prevDay, first?.prevSeq], ['2026-03-14', 5]);
  const range: Array<[string, string]> = [['from', '2026-03-15']];
  assert.equal((await verifyAudit(w.audit, w.clock, anAuditor(), range)).ok, true);
  w.audit.days.get('2026-03-14')!.find((r) => r.seq === 5)!.hash = 'f'.repeat(64);
  const broken = await verifyAudit(w.audit, w.clock, anAuditor(), range);
  assert.deepEqual(
    broken.problems.map((p) => [p.day, p.kind]),
    [['2026-03-15', 'anchor-mismatch']],
  );
});

test('anchoring writes each finished day once, and refuses to seal a day already broken', async () => {
  const { w } = await withTrail();
  w.clock.set('2026-03-15T00:10:00.000Z');
  assert.deepEqual((await anchorAuditDays(anchorDeps(w))).anchored, [], 'not before the day is well over');
  w.clock.set('2026-03-15T00:16:00.000Z');
  const first = await anchorAuditDays(anchorDeps(w));
  assert.deepEqual(first.anchored, ['2026-03-14']);
  const anchor = await w.anchors.get('2026-03-14');
  assert.ok(anchor && anchor !== 'invalid');
  assert.deepEqual([anchor.events, anchor.headSeq], [5, 5]);
  assert.deepEqual(w.signals.named('jit.audit.anchored').length, 1);

  const again = await anchorAuditDays(anchorDeps(w));
  assert.deepEqual([again.anchored, again.present], [[], ['2026-03-14']]);

  // The table rewritten after the anchor: the next run says so.
  w.audit.days.get('2026-03-14')!.find((r) => r.seq === 2)!.detail = 'rewritten';
  const tampered = await anchorAuditDays(anchorDeps(w));
  assert.deepEqual(
    tampered.failed.map((f) => f.day),
    ['2026-03-14'],
  );
  assert.equal(w.signals.named('jit.audit.anchor-failed').length, 1);
  const checked = await verifyAudit(w.audit, w.clock, anAuditor(), [['from', '2026-03-14']], w.anchors);
  assert.equal(checked.ok, false);
});

test('every action a use case writes is in the vocabulary: the trail under test refuses any other', async () => {
  const { w } = await withTrail();
  const written = new Set(w.audit.actions());
  assert.ok(written.size > 0);
  for (const action of written) assert.ok(isAuditAction(action), action);
  // The other unit tests of use cases run on this trail, so an unlisted action fails the test that writes it.
  const before = w.audit.actions().length;
  const unlisted = { actor: 'system:test', action: 'reconcile.something-new' } as unknown as AuditEvent;
  await assert.rejects(w.audit.append(unlisted), /not in AUDIT_ACTIONS/);
  assert.equal(w.audit.actions().length, before, 'nothing appended');
});
