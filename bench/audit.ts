/**
 * The audit trail: how fast the chain writer appends, and whether the questions auditors ask stay as cheap when
 * the table is ten times bigger (they should: each is a key-range read of one partition).
 *
 * Runs against its own Azurite unless JIT_BENCH_STORAGE holds a storage connection string (then it creates and
 * deletes tables `BenchAudit…` there). The 100k-event table is loaded directly in entity-group transactions of 100
 * rows per partition, outside the chain writer (which commits one day's queue at a time): the rows are the ones
 * the writer would write — the same chainEvents(), heads, list of days and index rows — so verify passes on them.
 *
 * Azurite answers every query by scanning the whole table in JavaScript, so on Azurite even an empty partition
 * costs more as the table grows; that floor is measured and shown. Azure Table storage reads a key range of one
 * partition without touching the rest.
 */
import type { AuditAction } from '../shared/domain/auditActions';
import { TableClient } from '@azure/data-tables';
import type { TransactionAction } from '@azure/data-tables';
import { Azurite } from '../dev/azurite';
import { AuditTable } from '../shared/adapters/auditTable';
import {
  DAYS_PARTITION,
  chainEvents,
  dayRowKey,
  headRow,
  indexPartitions,
} from '../shared/domain/auditChain';
import type { AuditRow, ChainAnchor, TimedEvent } from '../shared/domain/auditChain';
import type { AuditQuery } from '../shared/domain/auditQuery';
import type { AuditEvent } from '../shared/domain/types';
import { verifyChain } from '../shared/usecases/audit';
import type { Benchmark } from './support/benchmark';

/** JIT_BENCH_AUDIT_EVENTS shrinks (or grows) the run; the small table is always a tenth of the large one. */
const LARGE = Number(process.env.JIT_BENCH_AUDIT_EVENTS ?? 100_000);
const SMALL = LARGE / 10;
const EVENTS_PER_DAY = 100;
const VMS = 20;
const PEOPLE = 50;
const FIRST_DAY = Date.UTC(2020, 0, 1);
const DAY_MS = 86_400_000;
/** The day and the people the queries ask about: inside the small table, so both sizes hold the same answer. */
const TARGET_DAY = Math.floor(SMALL / EVENTS_PER_DAY / 2);
const RUNS = 11;
const IN_FLIGHT = 8;

const LIFECYCLE: Array<[AuditAction, string | undefined]> = [
  ['request.submitted', undefined],
  ['request.approved', 'system:policy'],
  ['grant.rule-applied', 'system:grant'],
  ['grant.rule-applied', 'system:grant'],
  ['grant.expiry-scheduled', 'system:grant'],
  ['grant.activated', 'system:grant'],
  ['grant.rule-removed', 'system:expiry'],
  ['grant.rule-removed', 'system:expiry'],
  ['grant.expired', 'system:expiry'],
];

/** A small seeded generator: the same tables every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const vm = (i: number) =>
  `/subscriptions/00000000-0000-0000-0000-00000000be0c/resourceGroups/bench-rg/providers/Microsoft.Compute/virtualMachines/vm-${i}`;
const person = (i: number) => `person${i}@example.com`;
const dayString = (k: number) => new Date(FIRST_DAY + k * DAY_MS).toISOString().slice(0, 10);

/** One day of events: requests of nine events each, spread over the day, on VMs and by people chosen at random. */
function eventsOfDay(k: number): TimedEvent[] {
  const next = random(k + 1);
  const out: TimedEvent[] = [];
  let request = 0;
  while (out.length < EVENTS_PER_DAY) {
    const requestId = `BENCH${k}X${request++}`;
    const machine = vm(Math.floor(next() * VMS));
    const requester = person(Math.floor(next() * PEOPLE));
    for (const [action, actor] of LIFECYCLE) {
      if (out.length === EVENTS_PER_DAY) break;
      const event: AuditEvent = {
        actor: actor ?? requester,
        action,
        requestId,
        vm: machine,
        ports: [22],
        sourcePrefix: '203.0.113.7/32',
        detail: `bench event ${out.length}`,
      };
      out.push({ at: new Date(FIRST_DAY + k * DAY_MS + out.length * 14 * 60_000), event });
    }
  }
  return out;
}

/** Runs tasks with at most `n` in flight. */
async function pool<T>(items: T[], n: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await task(items[i++]!);
    }),
  );
}

const chunks = <T>(list: T[], size: number) =>
  Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));

/**
 * Writes days 0 … count-1 as the chain writer would lay them out. The chain runs oldest to newest, but the rows are
 * written newest day first: RowKeys then arrive in ascending order, which Azurite's in-memory indexes take at the
 * end instead of shifting everything (loading oldest first slows down as the table grows).
 */
async function loadDays(client: TableClient, count: number, label: string): Promise<number> {
  const started = Date.now();
  const anchors: Array<ChainAnchor | undefined> = [undefined];
  for (let k = 0; k < count - 1; k++) {
    const { head } = chainEvents(dayString(k), undefined, anchors[k], eventsOfDay(k));
    anchors.push({ day: dayString(k), seq: head.seq, hash: head.hash });
  }
  // A listed day without events: the empty twin of the one-day questions (see measureQueries).
  await client.createEntity({
    partitionKey: DAYS_PARTITION,
    rowKey: dayRowKey(dayString(-1)),
    day: dayString(-1),
  });
  let done = 0;
  // A slice of days at a time keeps memory to a few tens of thousands of rows.
  for (let end = count; end > 0; end -= 100) {
    const batches: TransactionAction[][] = [];
    const byIndex = new Map<string, AuditRow[]>();
    const listed: AuditRow[] = [];
    for (let k = end - 1; k >= Math.max(0, end - 100); k--) {
      const day = dayString(k);
      const { rows, head } = chainEvents(day, undefined, anchors[k], eventsOfDay(k));
      for (const c of chunks([...rows, headRow(day, head)], 100)) batches.push(c.map((r) => ['create', r]));
      listed.push({ partitionKey: DAYS_PARTITION, rowKey: dayRowKey(day), day });
      for (const row of rows) {
        for (const pk of indexPartitions(row)) {
          const list = byIndex.get(pk) ?? [];
          list.push({ ...row, partitionKey: pk });
          byIndex.set(pk, list);
        }
      }
      done += rows.length;
    }
    for (const list of [listed, ...byIndex.values()])
      for (const c of chunks(list, 100)) batches.push(c.map((r) => ['create', r]));
    await pool(batches, IN_FLIGHT, (actions) => client.submitTransaction(actions));
    const seconds = (Date.now() - started) / 1000;
    process.stdout.write(
      `\r  loading the ${label} table: ${done.toLocaleString('en')} events, ${(done / seconds).toFixed(0)} events/s   `,
    );
  }
  process.stdout.write('\n');
  return (Date.now() - started) / 1000;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Timing {
  ms: number;
  rows: number;
  /** Calls to the table service one run makes. */
  requests: number;
}

/** Counts the calls a client makes, to tell the store's per-call cost from the query's own. */
function countRequests(client: TableClient): { n: number } {
  const counter = { n: 0 };
  client.pipeline.addPolicy({
    name: 'benchRequestCounter',
    sendRequest: (request, next) => {
      counter.n++;
      return next(request);
    },
  });
  return counter;
}

/**
 * Times several runs side by side, taking turns run by run, so that whatever else the machine is doing weighs on
 * each alike.
 */
async function timedTurns(
  sides: Array<{ counter: { n: number }; run: () => Promise<number> }>,
): Promise<Timing[]> {
  for (const side of sides) await side.run(); // warm-up: connection, JIT
  const times: number[][] = sides.map(() => []);
  const rows: number[] = sides.map(() => 0);
  const calls: number[] = sides.map(() => 0);
  for (let i = 0; i < RUNS; i++) {
    for (const [j, side] of sides.entries()) {
      const before = side.counter.n;
      const t = process.hrtime.bigint();
      rows[j] = await side.run();
      times[j]!.push(Number(process.hrtime.bigint() - t) / 1e6);
      calls[j] = side.counter.n - before;
    }
  }
  return sides.map((_, j) => ({ ms: median(times[j]!), rows: rows[j]!, requests: calls[j]! }));
}

/** Every page of a query, through the adapter the API uses; returns how many events came back. */
async function all(
  trail: AuditTable,
  query: AuditQuery,
  pageSize = 1000,
  maxPages = Infinity,
): Promise<number> {
  let n = 0;
  let token: string | undefined;
  let pages = 0;
  do {
    const page = await trail.listEvents(query, { pageSize, continuationToken: token });
    n += page.items.length;
    token = page.continuationToken;
  } while (token && ++pages < maxPages);
  return n;
}

interface QueryFigures {
  query: string;
  small: Timing;
  large: Timing;
  smallAbsent: Timing;
  largeAbsent: Timing;
}

/** What a question asks about. */
interface Target {
  day: string;
  vm: string;
  actor: string;
  request: string;
}

async function measureQueries(small: TableClient, large: TableClient): Promise<Record<string, unknown>> {
  const loadSeconds = {
    small: await loadDays(small, SMALL / EVENTS_PER_DAY, 'small'),
    large: await loadDays(large, LARGE / EVENTS_PER_DAY, 'large'),
  };
  // Each question is asked twice: about what the table holds, and about something absent (a VM, person, request
  // and listed day without events). On Azurite both cost a scan of the whole table; the difference is what the
  // layout decides — the rows read and returned.
  const sample = eventsOfDay(TARGET_DAY);
  const present: Target = {
    day: dayString(TARGET_DAY),
    vm: sample[0]!.event.vm!.toLowerCase(),
    actor: sample[0]!.event.actor,
    request: sample[0]!.event.requestId!,
  };
  const absent: Target = {
    day: dayString(-1),
    vm: vm(VMS + 1),
    actor: 'nobody@example.com',
    request: 'NOREQUEST',
  };
  const range = (t: Target) => ({ from: new Date(t.day), to: new Date(Date.parse(t.day) + DAY_MS) });
  const queries: Array<[string, (trail: AuditTable, t: Target) => Promise<number>]> = [
    ['one VM, one day', (trail, t) => all(trail, { vm: t.vm, ...range(t) })],
    ['one person, one day', (trail, t) => all(trail, { actor: t.actor, ...range(t) })],
    ['one request, all time', (trail, t) => all(trail, { requestId: t.request })],
    ['one day, every event', (trail, t) => all(trail, range(t))],
    ['one VM, newest 100, all time', (trail, t) => all(trail, { vm: t.vm }, 100, 1)],
    [
      'verify one day (recompute chain)',
      async (trail, t) => (await verifyChain(trail, { fromDay: t.day, toDay: t.day })).events,
    ],
  ];
  const sides = [small, large].map((client) => ({
    counter: countRequests(client),
    trail: new AuditTable(client, { now: () => new Date() }),
  }));
  for (const side of sides) {
    const check = await verifyChain(side.trail, {
      fromDay: dayString(TARGET_DAY - 1),
      toDay: dayString(TARGET_DAY + 1),
    });
    if (!check.ok) throw new Error(`the bench's own chain does not verify: ${check.firstBreak?.message}`);
  }

  const figures: QueryFigures[] = [];
  for (const [query, run] of queries) {
    const [small, large, smallAbsent, largeAbsent] = await timedTurns([
      ...sides.map((side) => ({ counter: side.counter, run: () => run(side.trail, present) })),
      ...sides.map((side) => ({ counter: side.counter, run: () => run(side.trail, absent) })),
    ]);
    figures.push({
      query,
      small: small!,
      large: large!,
      smallAbsent: smallAbsent!,
      largeAbsent: largeAbsent!,
    });
  }
  const net = (t: Timing, absentTwin: Timing) => Math.max(0, t.ms - absentTwin.ms);
  const rowsPerEvent = 1 + 3; // the day row and three index rows (VM, actor, request)
  console.log(
    `\nQueries (median of ${RUNS}, the two tables taking turns) on ${SMALL.toLocaleString('en')} and on ` +
      `${LARGE.toLocaleString('en')} events (${(SMALL * rowsPerEvent).toLocaleString('en')} / ` +
      `${(LARGE * rowsPerEvent).toLocaleString('en')} rows), loaded in ${loadSeconds.small.toFixed(0)} s + ` +
      `${loadSeconds.large.toFixed(0)} s`,
  );
  console.log(
    table(
      [
        'query',
        'rows',
        'calls',
        'small ms',
        'large ms',
        'ratio',
        'absent: small',
        'large',
        'net: small',
        'large',
        'ratio',
      ],
      figures.map((f) => {
        const [a, b] = [net(f.small, f.smallAbsent), net(f.large, f.largeAbsent)];
        const same = (x: number, y: number) => (x === y ? String(x) : `${x}/${y}`);
        return [
          f.query,
          same(f.small.rows, f.large.rows),
          same(f.small.requests, f.large.requests),
          f.small.ms.toFixed(1),
          f.large.ms.toFixed(1),
          (f.large.ms / f.small.ms).toFixed(2),
          f.smallAbsent.ms.toFixed(1),
          f.largeAbsent.ms.toFixed(1),
          a.toFixed(1),
          b.toFixed(1),
          (b / Math.max(0.5, a)).toFixed(2),
        ];
      }),
    ),
  );
  console.log(
    'rows: events returned; calls: requests to the table service — both the same at either size.\n' +
      'absent: the same question about a VM, person, request or listed day without events. Azure Table storage\n' +
      'answers it from the key index whatever the size of the table; Azurite scans the whole table in JavaScript on\n' +
      'every call, so it grows with the table. net = ms − absent: the part the partition layout decides.',
  );
  return { sizes: { small: SMALL, large: LARGE }, loadSeconds, queries: figures };
}

async function measureAppends(client: TableClient): Promise<Record<string, unknown>> {
  let n = 0;
  const event = (): AuditEvent => ({
    actor: person(n % PEOPLE),
    action: 'grant.rule-applied',
    requestId: `APPEND${n++}`,
    vm: vm(n % VMS),
    ports: [22],
    nsg: '/subscriptions/x/resourcegroups/bench-rg/providers/microsoft.network/networksecuritygroups/nsg',
    rule: 'jit-append',
    priority: 1000,
  });
  const clock = { now: () => new Date() };
  const firstDay = clock.now().toISOString().slice(0, 10);
  const cases: Array<[string, () => Promise<number>]> = [
    [
      'one after another, one writer',
      async () => {
        const w = new AuditTable(client, clock);
        for (let i = 0; i < 100; i++) await w.append(event());
        return 100;
      },
    ],
    [
      '500 at once, one writer',
      async () => {
        const w = new AuditTable(client, clock);
        await Promise.all(Array.from({ length: 500 }, () => w.append(event())));
        return 500;
      },
    ],
    [
      '500 at once, four writers (instances)',
      async () => {
        const ws = [0, 1, 2, 3].map(() => new AuditTable(client, clock));
        await Promise.all(Array.from({ length: 500 }, (_, i) => ws[i % 4]!.append(event())));
        return 500;
      },
    ],
  ];
  const out: Array<{ case: string; appends: number; seconds: number; perSecond: number }> = [];
  for (const [name, run] of cases) {
    const t = process.hrtime.bigint();
    const appends = await run();
    const seconds = Number(process.hrtime.bigint() - t) / 1e9;
    out.push({ case: name, appends, seconds, perSecond: appends / seconds });
  }
  // From the day the appends began, in case they ran past midnight (UTC).
  const check = await verifyChain(new AuditTable(client, clock), {
    fromDay: firstDay,
    toDay: new Date().toISOString().slice(0, 10),
  });
  if (!check.ok || check.events !== 1100)
    throw new Error(`appends did not verify: ${JSON.stringify(check.firstBreak)}`);
  console.log(
    '\nAppends through the chain writer (each event: chained in its day, then copied to 3 index partitions)',
  );
  console.log(
    table(
      ['case', 'appends', 'seconds', 'appends/s'],
      out.map((o) => [o.case, String(o.appends), o.seconds.toFixed(2), o.perSecond.toFixed(0)]),
    ),
  );
  return { appends: out, chainVerified: check.events };
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

async function run(): Promise<Record<string, unknown>> {
  const external = process.env.JIT_BENCH_STORAGE;
  const azurite = external ? undefined : new Azurite({ blobPort: 0, queuePort: 0, tablePort: 0 });
  await azurite?.start();
  const connection = external ?? azurite!.connectionString;
  const suffix = Date.now().toString(36);
  const tables = ['BenchAppends', 'BenchAuditSmall', 'BenchAuditLarge'].map((name) =>
    TableClient.fromConnectionString(connection, `${name}${suffix}`, { allowInsecureConnection: !external }),
  );
  try {
    for (const t of tables) await t.createTable();
    const appends = await measureAppends(tables[0]!);
    const queries = await measureQueries(tables[1]!, tables[2]!);
    return { store: external ? 'Azure Table storage' : 'Azurite', ...appends, ...queries };
  } finally {
    if (external) await Promise.allSettled(tables.map((t) => t.deleteTable()));
    await azurite?.stop();
  }
}

export const auditBench: Benchmark = {
  name: 'audit',
  summary: 'audit chain appends per second, and auditor queries on a 10k and a 100k-event table',
  run,
};
