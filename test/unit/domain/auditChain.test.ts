import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import {
  GENESIS_HASH,
  HEAD_ROW_KEY,
  MAX_TEXT_LENGTH,
  actorPartition,
  chainEvents,
  dayRowKey,
  eventColumns,
  eventRowKey,
  hashOf,
  headRow,
  indexPartitions,
  rowKeyRange,
  verifyDay,
  vmPartition,
} from '../../../shared/domain/auditChain';
import type { AuditRow } from '../../../shared/domain/auditChain';

const DAY = '2026-03-14';
const at = (hh: number, mm = 0, ms = 0) => new Date(Date.UTC(2026, 2, 14, hh, mm, 0, ms));

/** A day of `n` chained events, plus its head row, as the writer would store them. */
function day(n: number): AuditRow[] {
  const { rows, head } = chainEvents(
    DAY,
    undefined,
    undefined,
    Array.from({ length: n }, (_, i) => ({
      at: at(9, i),
      event: { actor: 'alice@example.com', action: 'request.submitted', detail: `event ${i + 1}` },
    })),
  );
  return [...rows, headRow(DAY, head)];
}

const kinds = (rows: AuditRow[]) => verifyDay(DAY, rows).problems.map((p) => [p.seq, p.kind]);

test('row keys sort newest first, and the same millisecond by the later seq first', () => {
  const keys = [
    eventRowKey(at(9).getTime(), 1),
    eventRowKey(at(10).getTime(), 2),
    eventRowKey(at(10).getTime(), 3),
  ];
  assert.deepEqual([...keys].sort(), [keys[2], keys[1], keys[0]]);
  assert.ok(
    keys.every((k) => k < HEAD_ROW_KEY),
    'the head row sorts after every event',
  );
  assert.ok(dayRowKey('2026-03-15') < dayRowKey('2026-03-14'), 'days too, newest first');
});

test('a row-key range holds exactly the events with from <= time < to', () => {
  const ms = fc.integer({ min: Date.UTC(2000, 0, 1), max: Date.UTC(2200, 0, 1) });
  fc.assert(
    fc.property(ms, fc.integer({ min: 1, max: 99_999_999 }), ms, ms, (time, seq, a, b) => {
      const [from, to] = a <= b ? [a, b] : [b, a];
      const key = eventRowKey(time, seq);
      const { ge, lt } = rowKeyRange(from, to);
      assert.equal(key >= ge && key < lt, time >= from && time < to);
      const open = rowKeyRange(undefined, undefined);
      assert.ok(key >= open.ge && key < open.lt && !(HEAD_ROW_KEY < open.lt));
    }),
  );
});

test('each event links to the one before, and a clock running behind is raised to the previous time', () => {
  const first = chainEvents(DAY, undefined, undefined, [
    { at: at(9), event: { actor: 'a', action: 'request.submitted' } },
  ]);
  assert.equal(first.rows[0]!.seq, 1);
  assert.equal(first.rows[0]!.prevHash, GENESIS_HASH);
  const next = chainEvents(DAY, first.head, undefined, [
    { at: at(8, 59), event: { actor: 'b', action: 'request.approved' } },
    { at: at(9, 5), event: { actor: 'c', action: 'grant.activated' } },
  ]);
  assert.deepEqual(
    next.rows.map((r) => [r.seq, r.time]),
    [
      [2, at(9).toISOString()],
      [3, at(9, 5).toISOString()],
    ],
  );
  assert.equal(next.rows[0]!.prevHash, first.head.hash);
  assert.equal(next.rows[1]!.prevHash, next.rows[0]!.hash);
  assert.deepEqual(next.head, { seq: 3, hash: next.rows[1]!.hash, time: at(9, 5).toISOString() });
  assert.throws(() =>
    chainEvents(DAY, undefined, undefined, [
      { at: new Date('2026-03-15T00:00:00Z'), event: { actor: 'a', action: 'grant.failed' } },
    ]),
  );
});

test("a day's first event links to the latest earlier day", () => {
  const anchor = { day: '2026-03-10', seq: 7, hash: 'a'.repeat(64) };
  const { rows } = chainEvents(DAY, undefined, anchor, [
    { at: at(1), event: { actor: 'a', action: 'grant.failed' } },
  ]);
  assert.equal(rows[0]!.prevHash, anchor.hash);
  assert.equal(rows[0]!.prevDay, '2026-03-10');
  assert.equal(rows[0]!.prevSeq, 7);
  assert.deepEqual(verifyDay(DAY, rows).anchor, anchor);
});

test('the hash covers every column and the keys, and nothing the service adds', () => {
  const [row] = day(1);
  const base = hashOf(row!);
  for (const change of [
    { detail: 'event 2' },
    { actor: 'mallory@example.com' },
    { seq: 2 },
    { rowKey: eventRowKey(at(9, 1).getTime(), 1) },
    { partitionKey: '2026-03-15' },
    { note: 'added by hand' },
    { prevHash: 'f'.repeat(64) },
  ]) {
    assert.notEqual(hashOf({ ...row!, ...change }), base, JSON.stringify(change));
  }
  assert.equal(
    hashOf({ ...row!, etag: 'W/"x"', timestamp: '2026-03-14T09:00:00Z', 'odata.metadata': 'x', hash: 'y' }),
    base,
  );
  // Index rows are checked against the day they came from.
  assert.equal(hashOf({ ...row!, partitionKey: 'vm|x' }, DAY), base);
});

test('columns: every event field, arrays joined, vm and actor lower-cased, long text clipped', () => {
  const c = eventColumns({
    actor: 'Alice@Example.com',
    action: 'grant.rule-applied',
    vm: '/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/Prod-DB',
    ports: [22, 3389],
    priority: 1000,
    detail: 'x'.repeat(MAX_TEXT_LENGTH + 5),
  });
  assert.equal(c.actor, 'alice@example.com');
  assert.equal(
    c.vm,
    '/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachines/prod-db',
  );
  assert.equal(c.ports, '22,3389');
  assert.equal(c.priority, 1000);
  assert.match(String(c.detail), /…\[5 more characters not kept\]$/);
  assert.throws(() => eventColumns({ actor: 'a', action: 'grant.failed', ...{ seq: 3 } }), /chain column/);
});

test('index partitions name the VM, the actor and the request in a form a person can type', () => {
  const [row] = day(1);
  const vm = '/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/Prod-DB';
  assert.equal(
    vmPartition(vm),
    'vm|subscriptions|s|resourcegroups|rg|providers|microsoft.compute|virtualmachines|prod-db',
  );
  assert.equal(actorPartition('System:Grant'), 'actor|system:grant');
  assert.equal(actorPartition('odd/#?name'), 'actor|odd%2f%23%3fname');
  assert.deepEqual(indexPartitions({ ...row!, vm, requestId: 'R1' }), [
    vmPartition(vm),
    'actor|alice@example.com',
    'request|R1',
  ]);
});

test('an untouched day verifies', () => {
  const check = verifyDay(DAY, day(5));
  assert.deepEqual(check.problems, []);
  assert.equal(check.events, 5);
  assert.equal(check.head?.seq, 5);
});

test('verification names the edited, the deleted and the re-chained rows', () => {
  const edited = day(5);
  edited[2] = { ...edited[2]!, detail: 'nothing happened' };
  assert.deepEqual(kinds(edited), [[3, 'edited']]);

  assert.deepEqual(kinds(day(5).filter((r) => r.seq !== 2)), [[2, 'missing']]);
  assert.deepEqual(kinds(day(6).filter((r) => r.seq !== 2 && r.seq !== 3)), [[2, 'missing']]);
  assert.match(
    verifyDay(
      DAY,
      day(6).filter((r) => r.seq !== 2 && r.seq !== 3),
    ).problems[0]!.message,
    /#2–3/,
  );
  // The last event: only the head still knows it existed.
  const five = day(5);
  assert.deepEqual(kinds(five.filter((r) => r !== five[4])), [[5, 'missing']]);
  assert.deepEqual(kinds(day(5).filter((r) => r.rowKey !== HEAD_ROW_KEY)), [[undefined, 'head-missing']]);

  // Rewritten with a fresh, self-consistent hash: the next link breaks.
  const forged = day(5);
  forged[1] = { ...forged[1]!, detail: 'forged' };
  forged[1].hash = hashOf(forged[1]);
  assert.deepEqual(kinds(forged), [[3, 'broken-link']]);
  // …and if it was the last event, the head gives it away.
  const forgedLast = day(3);
  forgedLast[2] = { ...forgedLast[2]!, detail: 'forged' };
  forgedLast[2].hash = hashOf(forgedLast[2]);
  assert.deepEqual(kinds(forgedLast), [[3, 'head-mismatch']]);

  const duplicated = day(3);
  duplicated.push({ ...duplicated[1]!, rowKey: eventRowKey(at(12).getTime(), 2) });
  assert.deepEqual(kinds(duplicated), [[2, 'duplicate']]);

  const unrecorded = day(3);
  const head = unrecorded.pop()!;
  unrecorded.push({ ...head, seq: 2, hash: unrecorded[1]!.hash });
  assert.deepEqual(kinds(unrecorded), [[3, 'unrecorded']]);

  assert.deepEqual(kinds([...day(2), { partitionKey: DAY, rowKey: 'zz', note: 'hello' }]), [
    [undefined, 'malformed'],
  ]);
});
