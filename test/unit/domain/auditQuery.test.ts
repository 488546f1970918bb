import { test } from 'node:test';
import assert from 'node:assert/strict';
import { daysBetween, parseAuditQuery, parseVerifyRange } from '../../../shared/domain/auditQuery';
import { InvalidRequest } from '../../../shared/domain/errors';

const fields = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof InvalidRequest, String(err));
    return err.problems.map((p) => p.field);
  }
  assert.fail('expected InvalidRequest');
};
const q = (s: string) => [...new URLSearchParams(s).entries()];

test('audit queries: dates, date-times with a zone, filters normalised, page size', () => {
  const { query, pageSize } = parseAuditQuery(
    q(
      'from=2026-03-01&to=2026-03-14T09:30%2B01:00&actor=Alice@Example.com&pageSize=50&vm=/subscriptions/0000000A-0000-4000-8000-000000000001/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/DB',
    ),
  );
  assert.equal(query.from?.toISOString(), '2026-03-01T00:00:00.000Z');
  assert.equal(query.to?.toISOString(), '2026-03-14T08:30:00.000Z');
  assert.equal(query.actor, 'alice@example.com');
  assert.equal(
    query.vm,
    '/subscriptions/0000000a-0000-4000-8000-000000000001/resourcegroups/rg/providers/microsoft.compute/virtualmachines/db',
  );
  assert.equal(pageSize, 50);
  assert.equal(
    parseAuditQuery(q('to=2026-03-01T09:00Z')).query.to?.toISOString(),
    '2026-03-01T09:00:00.000Z',
  );
  assert.equal(parseAuditQuery([]).pageSize, 100);
});

test('audit queries: every bad parameter is named at once; unknown and repeated ones too', () => {
  assert.deepEqual(
    fields(() => parseAuditQuery(q('from=2026-02-30&to=soon&pageSize=-1&vm=db&requestId=a-b'))),
    ['from', 'to', 'vm', 'requestId', 'pageSize'],
  );
  assert.deepEqual(
    fields(() => parseAuditQuery(q('acter=bob&actor=a&actor=b'))),
    ['acter', 'actor'],
  );
  assert.deepEqual(
    fields(() => parseAuditQuery(q('from=2026-03-02&to=2026-03-01'))),
    ['to'],
  );
  assert.deepEqual(
    fields(() => parseAuditQuery(q('from=2026-03-01T10:00'))),
    ['from'],
  );
  assert.deepEqual(
    fields(() => parseAuditQuery(q('from=1999-12-31'))),
    ['from'],
  );
});

test('verification covers whole UTC days, to exclusive, and at most a year', () => {
  const now = new Date('2026-03-20T10:00:00Z');
  assert.deepEqual(parseVerifyRange(q('from=2026-03-01&to=2026-04-01'), now), {
    fromDay: '2026-03-01',
    toDay: '2026-03-31',
  });
  assert.deepEqual(parseVerifyRange(q('from=2026-03-14T23:00Z'), now), {
    fromDay: '2026-03-14',
    toDay: '2026-03-20',
  });
  assert.deepEqual(
    fields(() => parseVerifyRange([], now)),
    ['from'],
  );
  assert.deepEqual(
    fields(() => parseVerifyRange(q('from=2024-01-01&to=2025-06-01'), now)),
    ['to'],
  );
  assert.deepEqual(
    fields(() => parseVerifyRange(q('from=2026-03-01&vm=x'), now)),
    ['vm'],
  );
  assert.deepEqual(daysBetween('2024-02-28', '2024-03-01'), ['2024-02-28', '2024-02-29', '2024-03-01']);
});
