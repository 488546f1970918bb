/**
 * The audit trail on the sandbox, through the real Tables SDK against Azurite: what a grant's life writes, what
 * auditors can ask (API and `jit audit`), and what verification notices when someone edits or deletes rows.
 * Events of past "eras" are written straight through the AuditTable adapter with a clock the test sets, so each
 * scenario owns its days and its expectations are exact.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import type { TableClient } from '@azure/data-tables';
import { runCli } from '../../cli/jit';
import { verifyAuditTable } from '../../ops/verifyAudit';
import { cliEnv } from '../support/cli';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { AuditTable } from '../../shared/adapters/auditTable';
import { HEAD_ROW_KEY, hashOf } from '../../shared/domain/auditChain';
import type { AuditRow } from '../../shared/domain/auditChain';
import type { AuditEvent } from '../../shared/domain/types';
import { SERVICE_BUS_QUEUES, TABLES } from '../../shared/names';
import { parseCsv } from '../support/csv';
import { api, startSandbox, waitFor } from '../support/sandbox';
import type { ApiResponse } from '../support/sandbox';

const AUDITOR = { 'x-jit-dev-roles': 'Jit.Auditor' };

/** A clock the test moves by hand. */
class ManualClock {
  constructor(public time: Date) {}
  now(): Date {
    return new Date(this.time);
  }
}

function asAuditor(
  sandbox: Sandbox,
  path: string,
  roles: Record<string, string> = AUDITOR,
): Promise<ApiResponse> {
  return api(sandbox, 'GET', path, undefined, 'audra@example.com', roles);
}

/** Every page of a query, following continuation tokens; each page is checked against the page size. */
async function allPages(sandbox: Sandbox, params: Record<string, string>, pageSize = 4) {
  const items: Array<Record<string, unknown>> = [];
  let token: string | undefined;
  let pages = 0;
  do {
    const q = new URLSearchParams({ ...params, pageSize: String(pageSize) });
    if (token) q.set('continuationToken', token);
    const res = await asAuditor(sandbox, `audit?${q.toString()}`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.ok(res.body.items.length <= pageSize, `a page holds at most ${pageSize}`);
    items.push(...res.body.items);
    token = res.body.continuationToken;
    assert.ok(++pages < 200, 'pages end');
  } while (token);
  return { items, pages };
}

/** Writes events through the adapter, each at its own time, one after another. */
async function writeEra(table: TableClient, events: Array<{ at: string; event: AuditEvent }>): Promise<void> {
  const clock = new ManualClock(new Date(0));
  const writer = new AuditTable(table, clock);
  for (const { at, event } of events) {
    clock.time = new Date(at);
    await writer.append(event);
  }
}

async function eventRow(table: TableClient, day: string, seq: number): Promise<AuditRow> {
  for await (const e of table.listEntities({
    queryOptions: { filter: `${odata`PartitionKey eq ${day}`} and seq eq ${seq}` },
  }))
    return e as AuditRow;
  throw new Error(`no event ${day}#${seq}`);
}

async function verify(sandbox: Sandbox, from: string, to: string) {
  const res = await asAuditor(sandbox, `audit/verify?from=${from}&to=${to}`);
  assert.equal(res.status, 200, JSON.stringify(res.body));
  return res.body as {
    ok: boolean;
    events: number;
    firstBreak?: { day: string; seq?: number; kind: string; message: string };
    problems: Array<{ day: string; seq?: number; kind: string; message: string }>;
    days: Array<{ day: string; events: number; headSeq?: number }>;
  };
}

/** Runs `jit` in-process against the sandbox and returns what it printed, as a terminal would get it. */
async function jit(sandbox: Sandbox, args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(['--api', `${sandbox.baseUrl}/api`, '--user', 'audra@example.com', ...args], {
    out: (t) => out.push(`${t}\n`),
    err: (t) => err.push(`${t}\n`),
    env: cliEnv(),
  });
  return { code, out: out.join(''), err: err.join('') };
}

const vmId = (name: string) =>
  `/subscriptions/00000000-0000-0000-0000-0000000000aa/resourceGroups/Audit-RG/providers/Microsoft.Compute/virtualMachines/${name}`;

describe('the audit trail', () => {
  let sandbox: Sandbox;
  let table: TableClient;
  before(async () => {
    sandbox = await startSandbox();
    table = sandbox.table(TABLES.audit);
  });
  after(async () => {
    await sandbox?.stop();
  });

  test("a grant's whole life is in the trail, in order, with the chain intact", async () => {
    const started = new Date();
    const res = await api(
      sandbox,
      'POST',
      'requests',
      {
        vm: DEMO.linuxVm.id,
        ports: [22],
        sourcePrefix: '203.0.113.7/32',
        duration: 'PT3S',
        justification: 'INC-42: disk full, "urgent"',
      },
      'alice@example.com',
    );
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    await waitFor('the grant to be active', async () => {
      return (await api(sandbox, 'GET', `requests/${id}`)).body.status === 'active';
    });
    // The expiry message, while it is still scheduled (it may already have fired on a slow machine).
    const scheduled = sandbox.serviceBus
      .listScheduled(SERVICE_BUS_QUEUES.expirations)
      .find((m) => (m.body as { requestId: string }).requestId === id)?.sequenceNumber;
    const request = await waitFor('the grant to expire', async () => {
      const r = (await api(sandbox, 'GET', `requests/${id}`)).body;
      return r.status === 'expired' ? r : undefined;
    });

    // Each event is written just after the state change it records: the status can read `expired` a moment
    // before `grant.expired` is in the trail.
    const { items } = await waitFor('grant.expired in the trail', async () => {
      const all = await allPages(sandbox, { requestId: id }, 3);
      return all.items[0]?.action === 'grant.expired' ? all : undefined;
    });
    const events = items.reverse();
    assert.deepEqual(
      events.map((e) => e.action),
      [
        'request.submitted',
        'request.approved',
        'grant.rule-applied',
        'grant.rule-applied',
        'grant.expiry-scheduled',
        'grant.activated',
        'grant.rule-removed',
        'grant.rule-removed',
        'grant.expired',
      ],
    );
    const [submitted, approved, ...rest] = events;
    assert.equal(submitted!.actor, 'alice@example.com');
    assert.equal(submitted!.justification, 'INC-42: disk full, "urgent"');
    assert.equal(submitted!.clientAddress, '127.0.0.1');
    assert.deepEqual(submitted!.ports, [22]);
    assert.equal(submitted!.sourcePrefix, '203.0.113.7/32');
    assert.equal(submitted!.vm, DEMO.linuxVm.id.toLowerCase());
    assert.equal(approved!.actor, 'system:policy');
    const applied = rest.filter((e) => e.action === 'grant.rule-applied');
    assert.deepEqual(
      applied.map((e) => e.nsg).sort(),
      DEMO.linuxVm.nsgIds.map((n) => n.toLowerCase()).sort(),
    );
    for (const e of applied) {
      assert.equal(e.rule, `jit-${id.toLowerCase()}`);
      assert.ok(Number(e.priority) >= 1000 && Number(e.priority) <= 1999, `priority ${String(e.priority)}`);
    }
    const expiry = rest.find((e) => e.action === 'grant.expiry-scheduled')!;
    assert.equal(expiry.expiresAt, request.expiresAt);
    assert.equal(expiry.expirySequenceNumber, request.expirySequenceNumber);
    if (scheduled !== undefined) assert.equal(expiry.expirySequenceNumber, scheduled.toString());
    // Closed by its scheduled message, or by the reconciler if that message was late on a busy machine.
    assert.match(String(rest.at(-1)!.actor), /^system:(expiry|reconciler)$/);
    // Oldest first, the times never go back, and every event sits in one day's chain.
    for (let i = 1; i < events.length; i++) assert.ok(String(events[i]!.time) >= String(events[i - 1]!.time));

    const today = started.toISOString().slice(0, 10);
    const report = await verify(sandbox, today, new Date(Date.now() + 60_000).toISOString());
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.ok(report.events >= events.length);

    // The same events are found by VM and by actor.
    const byVm = await allPages(sandbox, { vm: DEMO.linuxVm.id, from: started.toISOString() }, 50);
    assert.deepEqual(
      byVm.items.filter((e) => e.requestId === id).map((e) => e.seq),
      items.map((e) => e.seq).reverse(),
    );
    const byAlice = await allPages(sandbox, { actor: 'Alice@Example.com', from: started.toISOString() }, 50);
    assert.deepEqual(
      byAlice.items.filter((e) => e.requestId === id).map((e) => e.action),
      ['request.submitted'],
    );
  });

  describe('filters', () => {
    // 2024-02-27 22:00 to 2024-03-05: across a leap day, a month end, and two days without events.
    const actors = ['Carol@Example.com', 'dave@example.com', 'system:grant'];
    const vms = [vmId('db-1'), vmId('db-2'), vmId('web-1')];
    const era: Array<{ at: string; event: AuditEvent }> = [];
    for (let i = 0; i < 60; i++) {
      // Every 97 minutes; events 30 and 31 share one millisecond (the same instant is still ordered).
      const at = new Date(Date.UTC(2024, 1, 27, 22) + (i === 31 ? 30 : i) * 97 * 60_000);
      era.push({
        at: at.toISOString(),
        event: {
          actor: actors[i % 3]!,
          action: i % 2 ? 'grant.rule-applied' : 'request.submitted',
          requestId: `FILTERREQ${i % 8}`,
          vm: vms[i % 3 === 0 ? 0 : (i % 5) % 3]!,
          ports: [22],
          detail: `e${i}`,
        },
      });
    }
    era.push({
      at: '2024-03-05T08:00:00.000Z',
      event: { actor: 'dave@example.com', action: 'grant.expired', vm: vms[1], detail: 'e60' },
    });
    const expected = (keep: (e: { at: string; event: AuditEvent }) => boolean) =>
      era
        .filter(keep)
        .map((e) => e.event.detail)
        .reverse();
    const details = (items: Array<Record<string, unknown>>) => items.map((e) => e.detail);

    before(async () => {
      await writeEra(table, era);
    });

    test('a time range walks the days newest first, across empty days and pages', async () => {
      const cases: Array<[string, string]> = [
        ['2024-02-28T03:00:00Z', '2024-03-01T12:00:00Z'],
        ['2024-02-27', '2024-03-06'],
        ['2024-02-29', '2024-03-01'],
        [era[10]!.at, era[20]!.at], // from is inclusive, to exclusive, to the millisecond
        ['2024-03-02', '2024-03-05'], // only empty days
      ];
      for (const [from, to] of cases) {
        const { items } = await allPages(sandbox, { from, to });
        assert.deepEqual(
          details(items),
          expected((e) => e.at >= new Date(from).toISOString() && e.at < new Date(to).toISOString()),
          `${from} .. ${to}`,
        );
      }
      const { items, pages } = await allPages(sandbox, { from: '2024-02-27', to: '2024-03-06' }, 7);
      assert.equal(items.length, 61);
      assert.ok(pages >= 9);
      // Same millisecond: the later append is listed first.
      const i30 = details(items).indexOf('e30');
      assert.equal(details(items)[i30 - 1], 'e31');
    });

    test('vm, actor and request id each return exactly their events, alone and combined', async () => {
      const cases: Array<[Record<string, string>, (e: { at: string; event: AuditEvent }) => boolean]> = [
        [{ vm: vms[1]! }, (e) => e.event.vm === vms[1]],
        [{ vm: vms[0]!.toUpperCase() }, (e) => e.event.vm === vms[0]],
        [{ actor: 'carol@example.com' }, (e) => e.event.actor === 'Carol@Example.com'],
        [
          { actor: 'SYSTEM:GRANT', to: '2024-03-01' },
          (e) => e.event.actor === 'system:grant' && e.at < '2024-03-01',
        ],
        [{ requestId: 'FILTERREQ3' }, (e) => e.event.requestId === 'FILTERREQ3'],
        [
          { vm: vms[2]!, actor: 'dave@example.com', from: '2024-02-28' },
          (e) => e.event.vm === vms[2] && e.event.actor === 'dave@example.com' && e.at >= '2024-02-28',
        ],
        [
          { requestId: 'FILTERREQ5', vm: vms[0]!, actor: 'system:grant' },
          (e) =>
            e.event.requestId === 'FILTERREQ5' && e.event.vm === vms[0] && e.event.actor === 'system:grant',
        ],
      ];
      for (const [params, keep] of cases) {
        const want = expected(keep);
        assert.ok(
          want.length > 0 || params.requestId === 'FILTERREQ5',
          `a case with events: ${JSON.stringify(params)}`,
        );
        assert.deepEqual(details((await allPages(sandbox, params, 3)).items), want, JSON.stringify(params));
      }
    });

    test('a token from other parameters is refused rather than answering another question', async () => {
      const first = await asAuditor(sandbox, `audit?vm=${encodeURIComponent(vms[1]!)}&pageSize=2`);
      assert.ok(first.body.continuationToken);
      const other = await asAuditor(
        sandbox,
        `audit?vm=${encodeURIComponent(vms[2]!)}&pageSize=2&continuationToken=${first.body.continuationToken}`,
      );
      assert.equal(other.status, 400);
      assert.equal(other.body.errors[0].field, 'continuationToken');
    });
  });

  describe('verification', () => {
    // Four days of ten events each, in June 2023.
    const era: Array<{ at: string; event: AuditEvent }> = [];
    for (let d = 1; d <= 4; d++)
      for (let i = 0; i < 10; i++)
        era.push({
          at: new Date(Date.UTC(2023, 5, d, 8 + i)).toISOString(),
          event: { actor: 'erin@example.com', action: 'request.submitted', detail: `d${d}e${i + 1}` },
        });
    before(async () => {
      await writeEra(table, era);
    });

    test('an untouched range verifies, and edits and deletions are pinpointed', async () => {
      const clean = await verify(sandbox, '2023-06-01', '2023-06-05');
      assert.equal(clean.ok, true, JSON.stringify(clean.problems));
      assert.equal(clean.events, 40);
      assert.deepEqual(
        clean.days.map((d) => [d.day, d.events, d.headSeq]),
        [1, 2, 3, 4].map((d) => [`2023-06-0${d}`, 10, 10]),
      );

      // Someone with write access edits a row through the Tables SDK.
      const edited = await eventRow(table, '2023-06-02', 4);
      await table.updateEntity(
        { partitionKey: edited.partitionKey, rowKey: edited.rowKey, detail: 'nothing to see' },
        'Merge',
      );
      let report = await verify(sandbox, '2023-06-01', '2023-06-05');
      assert.equal(report.ok, false);
      assert.deepEqual(
        { day: report.firstBreak?.day, seq: report.firstBreak?.seq, kind: report.firstBreak?.kind },
        { day: '2023-06-02', seq: 4, kind: 'edited' },
      );
      assert.equal(report.problems.length, 1);

      // …deletes a row in the middle of a day…
      const middle = await eventRow(table, '2023-06-03', 5);
      await table.deleteEntity(middle.partitionKey, middle.rowKey);
      report = await verify(sandbox, '2023-06-03', '2023-06-04');
      assert.deepEqual(
        report.problems.map((p) => [p.day, p.seq, p.kind]),
        [['2023-06-03', 5, 'missing']],
      );

      // …and the last row of a day, which only the head still remembers.
      const last = await eventRow(table, '2023-06-04', 10);
      await table.deleteEntity(last.partitionKey, last.rowKey);
      report = await verify(sandbox, '2023-06-04', '2023-06-05');
      assert.deepEqual(
        report.problems.map((p) => [p.day, p.seq, p.kind]),
        [['2023-06-04', 10, 'missing']],
      );
      assert.match(report.problems[0]!.message, /last event was deleted/);

      report = await verify(sandbox, '2023-06-01', '2023-06-05');
      assert.deepEqual(
        report.problems.map((p) => [p.day, p.seq, p.kind]),
        [
          ['2023-06-02', 4, 'edited'],
          ['2023-06-03', 5, 'missing'],
          ['2023-06-04', 10, 'missing'],
        ],
      );
    });

    test('a rewrite that recomputes hashes, or a whole deleted day, still breaks a link', async () => {
      // Rewriting 06-01#3 and giving it a fresh, valid hash breaks the link from #4.
      const row = await eventRow(table, '2023-06-01', 3);
      const forged: AuditRow = { partitionKey: row.partitionKey, rowKey: row.rowKey };
      for (const [k, v] of Object.entries(row))
        if (!['etag', 'timestamp', 'hash'].includes(k) && !k.startsWith('odata.')) forged[k] = v;
      forged.detail = 'rewritten';
      forged.hash = hashOf(forged);
      await table.updateEntity(forged, 'Replace');
      let report = await verify(sandbox, '2023-06-01', '2023-06-02');
      assert.deepEqual(
        report.problems.map((p) => [p.day, p.seq, p.kind]),
        [['2023-06-01', 4, 'broken-link']],
      );

      // Deleting all of 06-01, head included, leaves 06-02's first event pointing at nothing.
      const day: AuditRow[] = [];
      for await (const r of table.listEntities({
        queryOptions: { filter: odata`PartitionKey eq ${'2023-06-01'}` },
      }))
        day.push(r as AuditRow);
      assert.equal(day.length, 11, 'ten events and the head');
      for (const r of day) await table.deleteEntity(r.partitionKey, r.rowKey);
      report = await verify(sandbox, '2023-06-02', '2023-06-03');
      assert.deepEqual(
        report.problems.map((p) => [p.day, p.seq, p.kind]),
        [
          ['2023-06-02', 1, 'anchor-missing'],
          ['2023-06-02', 4, 'edited'],
        ],
      );
    });
  });

  test('concurrent appends from several writers leave one unbroken chain', async (t) => {
    // Three writers (as three instances would be), all at one instant, small batches to make them collide.
    const clock = new ManualClock(new Date('2022-01-01T12:00:00.000Z'));
    const writers = [0, 1, 2].map(() => new AuditTable(sandbox.table(TABLES.audit), clock, { maxBatch: 5 }));
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        writers[i % 3]!.append({ actor: 'system:test', action: 'reconcile.redriven', detail: `c${i}` }),
      ),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const report = await verify(sandbox, '2022-01-01', '2022-01-02');
    assert.equal(report.ok, true, JSON.stringify(report.problems));
    assert.deepEqual(
      report.days.map((d) => [d.day, d.events, d.headSeq]),
      [['2022-01-01', 60, 60]],
    );
    const { items } = await allPages(sandbox, { from: '2022-01-01', to: '2022-01-02' }, 1000);
    assert.equal(new Set(items.map((e) => e.detail)).size, 60);
    assert.deepEqual(
      items.map((e) => e.seq),
      Array.from({ length: 60 }, (_, i) => 60 - i),
    );
    const head = await table.getEntity('2022-01-01', HEAD_ROW_KEY);
    assert.equal(head.seq, 60);
    t.diagnostic(`60 concurrent appends by 3 writers: ${(60 / seconds).toFixed(0)} appends/s`);
  });

  test('only auditors and admins read the trail', async () => {
    for (const path of ['audit', 'audit/verify?from=2024-01-01&to=2024-01-02']) {
      for (const roles of [{}, { 'x-jit-dev-roles': 'Jit.Requester' }] as Array<Record<string, string>>) {
        const res = await asAuditor(sandbox, path, roles);
        assert.equal(res.status, 403, `${path} with ${JSON.stringify(roles)}`);
        assert.equal(res.headers.get('content-type'), 'application/problem+json');
        assert.match(res.body.detail, /Jit\.Auditor or Jit\.Admin/);
      }
      for (const role of ['Jit.Auditor', 'Jit.Admin', 'Jit.Requester, Jit.Auditor'])
        assert.equal((await asAuditor(sandbox, path, { 'x-jit-dev-roles': role })).status, 200, role);
      assert.equal((await api(sandbox, 'GET', path, undefined, null)).status, 401);
    }
  });

  test('bad parameters are a 400 naming the field', async () => {
    const cases: Array<[string, string]> = [
      ['audit?from=yesterday', 'from'],
      ['audit?to=2024-02-30', 'to'],
      ['audit?from=2024-03-01T10:00:00', 'from'],
      ['audit?from=2024-03-02&to=2024-03-01', 'to'],
      ['audit?vm=prod-db', 'vm'],
      ['audit?requestId=not%20an%20id', 'requestId'],
      ['audit?pageSize=0', 'pageSize'],
      ['audit?pageSize=1001', 'pageSize'],
      ['audit?acter=alice', 'acter'],
      ['audit?continuationToken=bm9wZQ', 'continuationToken'],
      ['audit/verify', 'from'],
      ['audit/verify?from=2020-01-01&to=2022-01-01', 'to'],
    ];
    for (const [path, field] of cases) {
      const res = await asAuditor(sandbox, path);
      assert.equal(res.status, 400, `${path} -> ${res.status}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      assert.ok(
        res.body.errors.some((e: { field: string }) => e.field === field),
        `${field} named for ${path}: ${JSON.stringify(res.body)}`,
      );
    }
  });

  describe('jit audit', () => {
    const tricky = 'INC-7, "prod" down\nsecond line, with a comma\r\nand "quotes"';
    before(async () => {
      await writeEra(table, [
        {
          at: '2021-05-05T09:00:00.000Z',
          event: {
            actor: 'frank@example.com',
            action: 'request.submitted',
            requestId: 'CLIREQ1',
            vm: vmId('db-9'),
            ports: [22, 3389],
            justification: tricky,
            eventId: '01CLIEVENT0000000000000000',
          },
        },
        ...Array.from({ length: 4 }, (_, i) => ({
          at: `2021-05-05T1${i}:00:00.000Z`,
          event: {
            actor: 'system:grant',
            action: 'grant.rule-applied' as const,
            requestId: 'CLIREQ1',
            priority: 1000 + i,
          },
        })),
      ]);
    });
    const range = ['--from', '2021-05-05', '--to', '2021-05-06', '--page-size', '2'];

    test('csv is RFC 4180: free text with commas, quotes and line breaks survives a round trip', async () => {
      const { code, out } = await jit(sandbox, ['--roles', 'Jit.Auditor', '-o', 'csv', 'audit', ...range]);
      assert.equal(code, 0);
      const [header, ...rows] = parseCsv(out);
      assert.equal(header![0], 'time');
      assert.equal(rows.length, 5);
      const col = (name: string) => header!.indexOf(name);
      const submitted = rows.at(-1)!;
      assert.equal(submitted[col('justification')], tricky);
      assert.equal(submitted[col('ports')], '22,3389');
      assert.equal(submitted[col('actor')], 'frank@example.com');
      // A state change's id, by which an auditor counts changes once (docs/audit.md).
      assert.equal(submitted[col('eventId')], '01CLIEVENT0000000000000000');
      assert.deepEqual(
        rows.map((r) => r[col('priority')]),
        ['1003', '1002', '1001', '1000', ''],
      );
      assert.ok(rows.every((r) => r.length === header!.length));
    });

    test('json is one event per line, and table is one line per event', async () => {
      const json = await jit(sandbox, ['--roles', 'Jit.Auditor', '-o', 'json', 'audit', ...range]);
      assert.equal(json.code, 0);
      const events = json.out
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l));
      assert.equal(events.length, 5);
      assert.equal(events[4].justification, tricky);
      assert.deepEqual(events[4].ports, [22, 3389]);

      const table = await jit(sandbox, [
        '--roles',
        'Jit.Auditor',
        'audit',
        ...range,
        '--request-id',
        'CLIREQ1',
      ]);
      assert.equal(table.code, 0);
      const lines = table.out.trimEnd().split('\n');
      assert.match(lines[0]!, /^TIME\s+ACTION\s+ACTOR/);
      assert.equal(lines.length, 6);
      assert.match(lines[5]!, /request\.submitted.*frank@example\.com.*db-9\s+22,3389/);

      // The VM as people write it in every command: <resource group>/<name> in the chosen subscription.
      const byVm = await jit(sandbox, [
        '--roles',
        'Jit.Auditor',
        '--subscription',
        '00000000-0000-0000-0000-0000000000aa',
        'audit',
        ...range,
        '--vm',
        'Audit-RG/db-9',
      ]);
      assert.equal(byVm.code, 0, byVm.err);
      const vmLines = byVm.out.trimEnd().split('\n');
      assert.equal(vmLines.length, 2);
      assert.match(vmLines[1]!, /request\.submitted.*frank@example\.com.*db-9\s+22,3389/);
    });

    test('verify exits 0 on an intact chain and 8 on a broken one, through the API or the table itself', async () => {
      const ok = await jit(sandbox, [
        '--roles',
        'Jit.Auditor',
        'audit',
        'verify',
        '--from',
        '2021-05-05',
        '--to',
        '2021-05-06',
      ]);
      assert.equal(ok.code, 0, ok.err);
      assert.match(ok.out, /intact — 5 events in 1 day/);
      // npm run audit:verify: the same check from the table itself, trusting nothing the app says.
      const directOut: string[] = [];
      const direct = () =>
        verifyAuditTable(
          [
            '--from',
            '2021-05-05',
            '--to',
            '2021-05-06',
            '--connection-string',
            sandbox.settings.AzureWebJobsStorage!,
          ],
          { out: (t) => directOut.push(t), err: (t) => directOut.push(t) },
        );
      assert.equal(await direct(), 0, directOut.join('\n'));
      assert.match(directOut.join('\n'), /intact — 5 events in 1 day/);

      const row = await eventRow(table, '2021-05-05', 2);
      await table.updateEntity(
        { partitionKey: row.partitionKey, rowKey: row.rowKey, priority: 4000 },
        'Merge',
      );
      const broken = await jit(sandbox, [
        '--roles',
        'Jit.Auditor',
        'audit',
        'verify',
        '--from',
        '2021-05-05',
        '--to',
        '2021-05-06',
      ]);
      assert.equal(broken.code, 8);
      assert.match(broken.out, /BROKEN/);
      assert.match(broken.out, /first broken link: 2021-05-05 #2 \(edited\)/);
      assert.equal(await direct(), 8, 'and from the table itself');

      const forbidden = await jit(sandbox, ['audit', '--from', '2021-05-05']);
      assert.equal(forbidden.code, 3);
      assert.match(forbidden.err, /403/);
    });
  });
});
