/**
 * The audit trail anchored outside its table, on the sandbox (Azurite's Blob service): each finished day's head and
 * digest go to jit-audit-anchors, and verification compares the table with them. The attack it is for: someone who
 * can write the table rewrites a day and recomputes the whole chain with the project's own chain code, so the chain
 * checks out — and verification still names the day. Azurite does not enforce immutability, so the tests also show
 * the app itself never overwrites an anchor.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import type { TableClient, TransactionAction } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { verifyAuditTable } from '../../ops/verifyAudit';
import type { Sandbox } from '../../dev/sandbox';
import { AuditTable } from '../../shared/adapters/auditTable';
import { services } from '../../shared/composition';
import { ANCHOR_FORMAT } from '../../shared/domain/auditAnchor';
import { HEAD_ROW_KEY, chainEvents, headRow } from '../../shared/domain/auditChain';
import type { AuditRow, ChainAnchor } from '../../shared/domain/auditChain';
import type { AuditEvent } from '../../shared/domain/types';
import { CONTAINERS, TABLES } from '../../shared/names';
import { anchorAuditDays, verifyChain } from '../../shared/usecases/audit';
import type { AnchorReport } from '../../shared/usecases/audit';
import { captureSignals } from '../support/signals';
import { api, startSandbox } from '../support/sandbox';

const signals = captureSignals();
const AUDITOR = { 'x-jit-dev-roles': 'Jit.Auditor' };
const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

function event(n: number, detail = `event ${n}`): AuditEvent {
  return { actor: 'system:test', action: 'request.submitted', requestId: `ANCHOR${n}`, detail };
}

async function writeDay(table: TableClient, day: string, events: AuditEvent[]): Promise<void> {
  let t = Date.parse(`${day}T08:00:00Z`);
  const clock = { time: new Date(t), now: () => new Date(t) };
  const writer = new AuditTable(table, clock);
  for (const e of events) {
    t += 60_000;
    await writer.append(e);
  }
}

async function dayRows(table: TableClient, day: string): Promise<AuditRow[]> {
  const out: AuditRow[] = [];
  for await (const e of table.listEntities({ queryOptions: { filter: odata`PartitionKey eq ${day}` } }))
    out.push(e as AuditRow);
  return out;
}

/** Events back from their rows: every column but the chain's own. */
function eventsOf(rows: AuditRow[]): Array<{ event: AuditEvent; at: Date }> {
  const chain = new Set([
    'partitionKey',
    'rowKey',
    'etag',
    'timestamp',
    'time',
    'seq',
    'hash',
    'prevHash',
    'prevDay',
    'prevSeq',
  ]);
  return rows
    .filter((r) => r.rowKey !== HEAD_ROW_KEY)
    .sort((a, b) => Number(a.seq) - Number(b.seq))
    .map((r) => ({
      at: new Date(String(r.time)),
      event: Object.fromEntries(
        Object.entries(r).filter(([k]) => !chain.has(k) && !k.includes('odata')),
      ) as unknown as AuditEvent,
    }));
}

/**
 * What an administrator with write access to the table can do: replace a day's rows with edited events, chained
 * anew with the project's chain code, and re-chain the day after it onto the new head.
 */
async function rewriteAndRechain(
  table: TableClient,
  day: string,
  nextDay: string,
  edit: (e: AuditEvent) => AuditEvent,
) {
  const rewrite = async (
    d: string,
    anchor: ChainAnchor | undefined,
    change: (e: AuditEvent) => AuditEvent,
  ) => {
    const old = await dayRows(table, d);
    const before = eventsOf(old);
    const first = old.find((r) => Number(r.seq) === 1);
    const link =
      anchor ??
      (first?.prevDay
        ? { day: first.prevDay as string, seq: Number(first.prevSeq), hash: first.prevHash as string }
        : undefined);
    const { rows, head } = chainEvents(
      d,
      undefined,
      link,
      before.map((x) => ({ ...x, event: change(x.event) })),
    );
    for (const r of old) await table.deleteEntity(r.partitionKey, r.rowKey);
    const actions: TransactionAction[] = rows.map((r) => ['create', r]);
    actions.push(['create', headRow(d, head)]);
    await table.submitTransaction(actions);
    return { day: d, seq: head.seq, hash: head.hash };
  };
  const newHead = await rewrite(day, undefined, edit);
  await rewrite(nextDay, newHead, (e) => e);
}

describe('audit anchors outside the table', () => {
  let sandbox: Sandbox;
  let table: TableClient;
  const anchorAt = (iso: string) =>
    anchorAuditDays({
      trail: services().auditTrail,
      anchors: services().auditAnchors!,
      clock: { now: () => new Date(iso) },
      signals: services().deps.signals,
      log: quiet,
    });
  const verifyThroughApi = () =>
    api(
      sandbox,
      'GET',
      'audit/verify?from=2024-05-01&to=2024-05-03',
      undefined,
      'audra@example.com',
      AUDITOR,
    );
  const blob = (day: string) =>
    BlobServiceClient.fromConnectionString(sandbox.azurite.connectionString)
      .getContainerClient(CONTAINERS.auditAnchors)
      .getBlockBlobClient(`${day}.json`);

  before(async () => {
    sandbox = await startSandbox({
      telemetry: { meterProvider: signals.meterProvider, loggerProvider: signals.loggerProvider },
    });
    table = sandbox.table(TABLES.audit);
    await writeDay(table, '2024-05-01', [event(1), event(2), event(3)]);
    await writeDay(table, '2024-05-02', [event(4), event(5)]);
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('each finished day is anchored once, after the day is over', async () => {
    // Ten minutes after 05-02 ended: too early for 05-02 (15 minutes' delay), not for 05-01.
    let report: AnchorReport = await anchorAt('2024-05-03T00:10:00Z');
    assert.deepEqual(report.anchored, ['2024-05-01']);
    report = await anchorAt('2024-05-03T01:00:00Z');
    assert.deepEqual(report, { anchored: ['2024-05-02'], present: ['2024-05-01'], failed: [] });
    const stored = JSON.parse((await blob('2024-05-01').downloadToBuffer()).toString('utf8')) as Record<
      string,
      unknown
    >;
    assert.equal(stored.format, ANCHOR_FORMAT);
    assert.equal(stored.day, '2024-05-01');
    assert.equal(stored.events, 3);
    assert.equal(stored.headSeq, 3);
    assert.match(String(stored.digest), /^[0-9a-f]{64}$/);
    assert.deepEqual(
      signals.events('jit.audit.anchored').map((e) => [e.attributes.day, e.attributes.events]),
      [
        ['2024-05-01', 3],
        ['2024-05-02', 2],
      ],
    );

    const res = await verifyThroughApi();
    assert.equal(res.status, 200);
    assert.equal(res.body.ok, true, JSON.stringify(res.body.problems));
    assert.deepEqual(res.body.anchors, { checked: true, anchoredDays: 2 });
    assert.ok(res.body.days.every((d: { anchored?: boolean }) => d.anchored));
  });

  test('a day rewritten with its chain recomputed passes the chain, and fails its anchor, named', async () => {
    const etag = (await blob('2024-05-01').getProperties()).etag;
    await rewriteAndRechain(table, '2024-05-01', '2024-05-02', (e) =>
      e.requestId === 'ANCHOR2' ? { ...e, detail: 'nothing to see here' } : e,
    );
    const range = { fromDay: '2024-05-01', toDay: '2024-05-02' };
    // The chain alone cannot tell: every hash and link was recomputed.
    assert.equal((await verifyChain(services().auditTrail, range)).ok, true);

    const res = await verifyThroughApi();
    assert.equal(res.body.ok, false);
    assert.equal(res.body.firstBreak.day, '2024-05-01');
    assert.equal(res.body.firstBreak.kind, 'anchor-differs');
    assert.match(
      res.body.firstBreak.message,
      /2024-05-01 does not match its anchor .* rewritten after it was anchored/,
    );

    // npm run audit:verify, reading table and anchors straight from storage, says the same and exits 8.
    const out: string[] = [];
    const code = await verifyAuditTable(
      ['--from', '2024-05-01', '--to', '2024-05-03', '--connection-string', sandbox.azurite.connectionString],
      { out: (t) => out.push(t), err: (t) => out.push(t) },
    );
    assert.equal(code, 8, out.join('\n'));
    assert.match(out.join('\n'), /first broken link: 2024-05-01 \(anchor-differs\)/);

    // The next anchoring run reports the mismatch and leaves the anchor as it was.
    const report = await anchorAt('2024-05-03T02:00:00Z');
    assert.deepEqual(
      report.failed.map((f) => f.day),
      ['2024-05-01', '2024-05-02'],
    );
    assert.equal((await blob('2024-05-01').getProperties()).etag, etag);
    assert.ok(signals.events('jit.audit.anchor-failed').some((e) => e.attributes.day === '2024-05-01'));
  });

  test('the app never overwrites an anchor, even where the emulator would let it', async () => {
    const before = await blob('2024-05-02').getProperties();
    const result = await services().auditAnchors!.create({
      format: ANCHOR_FORMAT,
      day: '2024-05-02',
      events: 99,
      headSeq: 99,
      headHash: 'f'.repeat(64),
      digest: 'f'.repeat(64),
      anchoredAt: '2024-05-03T03:00:00.000Z',
    });
    assert.equal(result, 'exists');
    const after = await blob('2024-05-02').getProperties();
    assert.equal(after.etag, before.etag);
    assert.equal(JSON.parse((await blob('2024-05-02').downloadToBuffer()).toString('utf8')).events, 2);
  });

  test('a day whose chain is already broken is reported, not sealed', async () => {
    await writeDay(table, '2024-05-10', [event(10), event(11)]);
    const row = (await dayRows(table, '2024-05-10')).find((r) => r.seq === 2)!;
    await table.updateEntity(
      { partitionKey: row.partitionKey, rowKey: row.rowKey, detail: 'edited' },
      'Merge',
    );
    const report = await anchorAt('2024-05-11T01:00:00Z');
    assert.equal(report.anchored.includes('2024-05-10'), false);
    assert.match(
      report.failed.find((f) => f.day === '2024-05-10')?.error ?? '',
      /not anchored: event 2024-05-10#2 .* changed/,
    );
    assert.equal(await blob('2024-05-10').exists(), false);
  });
});
