/**
 * `npm run soak`: a stream of short grants for a few minutes while everything underneath misbehaves, then
 * proof that nothing was lost. Faults, all at once and on a seeded schedule:
 * - ARM: a share of rule PUTs and DELETEs answered 409 AnotherOperationInProgress, 429, 500/503, and reads
 *   503; now and then an operation that is accepted and then ends `Failed`;
 * - Service Bus: a share of expiry messages lost when they come due, and windows in which delivery is late;
 * - the host (a child process) killed with SIGKILL and started again;
 * - Azurite stopped and started again (gracefully: its data is on disk and must survive, as Azure Storage's
 *   does — a hard kill would lose its last 5 s of acknowledged writes, which Azure Storage never does).
 * Then the faults stop, the expiry grace passes and the reconciler runs until the system settles, and the
 * invariants in support/invariants.ts are checked over what storage and ARM hold. Any violation fails the run.
 *
 * Knobs (environment): SOAK_SECONDS (stream length, default 180), SOAK_RATE (requests/s, 2), SOAK_SEED,
 * SOAK_GRANT_MIN_S / SOAK_GRANT_MAX_S (3 / 15), SOAK_KILL_EVERY_S (45), SOAK_AZURITE_EVERY_S (60),
 * SOAK_ARM_FAULT_RATE (0.03 per kind), SOAK_DROP_RATE (0.1), SOAK_SETTLE_S (180). `--seconds N` and
 * `--seed N` on the command line too. Data and the host's warnings go to .sandbox/soak-<seed>-<time>/ (to a
 * temporary directory when a test runs it).
 */
import { appendFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { odata } from '@azure/data-tables';
import { PROJECT_ROOT } from '../dev/sandbox';
import type { Sandbox } from '../dev/sandbox';
import { services } from '../shared/composition';
import { isJitRuleName } from '../shared/domain/ruleNames';
import { FINAL_STATUSES } from '../shared/domain/types';
import type { RequestStatus } from '../shared/domain/types';
import { SERVICE_BUS_QUEUES, TABLES } from '../shared/names';
import { reconcile } from '../shared/usecases/reconcile';
import { submitRequest } from './support/api';
import { startBenchSandbox } from './support/benchmark';
import { ChildHost } from './support/childHost';
import { envNumber } from './support/env';
import { BENCH_SOURCE, addEstate, estatePolicy } from './support/estate';
import type { BenchVm } from './support/estate';
import { checkInvariants, requestIdOfRule } from './support/invariants';
import { KNOWN_ISSUES, knownIssueOf } from './support/knownIssues';
import type { Snapshot, Violation } from './support/invariants';
import { exponentialGap, seededRandom, sleep } from './support/stats';
import { isDayPartition } from '../shared/domain/auditChain';

export interface SoakOptions {
  /** How long requests keep coming (faults run over the same window). */
  durationInSeconds: number;
  ratePerSecond: number;
  /** Grant durations are drawn from this range (seconds). */
  grantSeconds: [number, number];
  seed: number;
  subnets: number;
  vmsPerSubnet: number;
  armOperationLatencyInMs: number;
  armRequestLatencyInMs: number;
  /** Probability, per kind, that a matching ARM request is answered with that fault. */
  armFaultRate: number;
  /** One accepted rule operation ends `Failed` this often (0: never). */
  lroFailureEveryInMs: number;
  /** Share of expiry messages Service Bus loses. */
  expiryDropRate: number;
  /** Late-delivery windows: how often, how late, how long. 0 disables. */
  busDelayEveryInMs: number;
  busDelayInMs: number;
  busDelayWindowInMs: number;
  /** Host SIGKILLs: how often, and how long it stays down. 0 disables. */
  hostKillEveryInMs: number;
  hostDownInMs: [number, number];
  /** Azurite restarts: how often, how long it stays down. 0 disables. */
  azuriteRestartEveryInMs: number;
  azuriteDownInMs: [number, number];
  /** Longest the settling phase may take before the invariants are judged as they stand. */
  settleTimeoutInSeconds: number;
  /** Where Azurite keeps its data and the host its log; a fresh temporary folder when undefined. */
  workDir?: string;
  log?: (line: string) => void;
}

export const DEFAULT_SOAK: SoakOptions = {
  durationInSeconds: 180,
  ratePerSecond: 2,
  grantSeconds: [3, 15],
  seed: 1,
  subnets: 4,
  vmsPerSubnet: 3,
  armOperationLatencyInMs: 300,
  armRequestLatencyInMs: 20,
  armFaultRate: 0.03,
  lroFailureEveryInMs: 4000,
  expiryDropRate: 0.1,
  busDelayEveryInMs: 30_000,
  busDelayInMs: 3000,
  busDelayWindowInMs: 10_000,
  hostKillEveryInMs: 45_000,
  hostDownInMs: [500, 3000],
  azuriteRestartEveryInMs: 60_000,
  azuriteDownInMs: [500, 2000],
  settleTimeoutInSeconds: 180,
};

export interface SoakReport {
  seed: number;
  options: Omit<SoakOptions, 'log'>;
  workDir: string;
  elapsedInSeconds: number;
  requests: {
    sent: number;
    answers: Record<string, number>;
    accepted: number;
    /** Final status of every request in storage (including those whose answer was lost). */
    statuses: Record<string, number>;
    /** Why requests failed, with how many. */
    failureReasons: Record<string, number>;
  };
  faults: {
    /** Every ARM request served, to read the error counts against. */
    armRequestsServed: number;
    armErrorsServed: Record<string, number>;
    lroFailuresArmed: number;
    expiryMessagesDropped: number;
    busDelayWindows: number;
    hostKills: number;
    azuriteRestarts: number;
  };
  /** Longest any JIT rule was seen in an NSG past its request's expiresAt, while faults ran. */
  worstOpenPastExpiryInMs: number;
  reconcilerRuns: number;
  settledInSeconds: number;
  violations: Violation[];
}

type ChaosKind = 'host-kill' | 'azurite-restart' | 'bus-delay';

export async function runSoak(partial: Partial<SoakOptions> = {}): Promise<SoakReport> {
  const o: SoakOptions = { ...DEFAULT_SOAK, ...partial };
  const log = o.log ?? ((line: string) => console.log(line));
  // One generator per concern, so the request stream replays the same whatever the faults' timing.
  const random = seededRandom(o.seed);
  const chaosRandom = seededRandom(o.seed + 1);
  const lroRandom = seededRandom(o.seed + 2);
  const between = ([a, b]: [number, number], r = random) => a + r() * (b - a);
  const workDir = o.workDir ?? mkdtempSync(join(tmpdir(), `jit-soak-${o.seed}-`));
  mkdirSync(workDir, { recursive: true });
  const rg = 'soak-rg';
  const started = Date.now();

  const sandbox = await startBenchSandbox(
    {
      storageLocation: join(workDir, 'azurite'),
      arm: { operationLatencyInMs: o.armOperationLatencyInMs, requestLatencyInMs: o.armRequestLatencyInMs },
      // Lost expiry messages are the reconciler's to find: let it look every 10 s rather than every minute.
      settings: { JIT_RECONCILE_SCHEDULE: '*/10 * * * * *' },
    },
    [estatePolicy(rg)],
  );
  const vms = addEstate(sandbox.arm, { resourceGroup: rg, subnets: o.subnets, vmsPerSubnet: o.vmsPerSubnet });
  const hostLog = join(workDir, 'host.log');
  const startHost = () => ChildHost.forSandbox(sandbox, { logFile: hostLog, verbose: true });
  let host: ChildHost | undefined = await startHost();
  let baseUrl = host.baseUrl;
  let azuriteUp = true;

  const report: SoakReport = {
    seed: o.seed,
    options: { ...o, log: undefined } as SoakReport['options'],
    workDir,
    elapsedInSeconds: 0,
    requests: { sent: 0, answers: {}, accepted: 0, statuses: {}, failureReasons: {} },
    faults: {
      armRequestsServed: 0,
      armErrorsServed: {},
      lroFailuresArmed: 0,
      expiryMessagesDropped: 0,
      busDelayWindows: 0,
      hostKills: 0,
      azuriteRestarts: 0,
    },
    worstOpenPastExpiryInMs: 0,
    reconcilerRuns: 0,
    settledInSeconds: 0,
    violations: [],
  };
  const accepted: string[] = [];
  const dropped = new Set<string>();
  let lastAcceptedAt = Date.now();
  const streamEnds = Date.now() + o.durationInSeconds * 1000;

  try {
    // ---- faults that are always on while the stream runs --------------------------------------------------
    const jit = '/securityRules/jit-';
    if (o.armFaultRate > 0) {
      const rate = o.armFaultRate;
      for (const method of ['PUT', 'DELETE'] as const) {
        sandbox.arm.faults.inject({
          method,
          pathIncludes: jit,
          status: 409,
          code: 'AnotherOperationInProgress',
          rate,
        });
        sandbox.arm.faults.inject({ method, pathIncludes: jit, status: 429, code: 'TooManyRequests', rate });
        sandbox.arm.faults.inject({
          method,
          pathIncludes: jit,
          status: 500,
          code: 'InternalServerError',
          rate,
        });
      }
      sandbox.arm.faults.inject({ method: 'GET', status: 503, code: 'ServiceUnavailable', rate: rate / 2 });
    }
    sandbox.serviceBus.faults.dropScheduled(SERVICE_BUS_QUEUES.expirations, (body) => {
      const id = (body as { requestId?: string } | undefined)?.requestId;
      if (!id || !dropped.has(id)) return false;
      report.faults.expiryMessagesDropped++;
      return true;
    });

    const lroFailures = (async () => {
      if (o.lroFailureEveryInMs <= 0) return;
      while (Date.now() < streamEnds) {
        await sleep(o.lroFailureEveryInMs * (0.5 + lroRandom()));
        sandbox.arm.faults.failNextOperations({ pathIncludes: jit, times: 1 });
        report.faults.lroFailuresArmed++;
      }
    })();

    // ---- host kills, storage restarts, late bus delivery: one at a time, on a seeded schedule -------------
    const schedule: Array<{ at: number; kind: ChaosKind }> = [];
    const plan = (kind: ChaosKind, every: number) => {
      if (every <= 0) return;
      const first = every * (0.5 + 0.4 * chaosRandom());
      for (let t = first; t < o.durationInSeconds * 1000; t += every * (0.75 + 0.5 * chaosRandom()))
        schedule.push({ at: started + t, kind });
    };
    plan('host-kill', o.hostKillEveryInMs);
    plan('azurite-restart', o.azuriteRestartEveryInMs);
    plan('bus-delay', o.busDelayEveryInMs);
    schedule.sort((a, b) => a.at - b.at);
    log(
      `soak seed ${o.seed}: ${o.durationInSeconds} s of requests at ${o.ratePerSecond}/s; ` +
        `chaos: ${schedule.map((e) => `${e.kind}@${Math.round((e.at - started) / 1000)}s`).join(' ') || 'none'}`,
    );

    const chaos = (async () => {
      for (const event of schedule) {
        await sleep(event.at - Date.now());
        const t = Math.round((Date.now() - started) / 1000);
        if (event.kind === 'host-kill') {
          const down = between(o.hostDownInMs, chaosRandom);
          log(`  ${t}s: SIGKILL the host (down ${Math.round(down)} ms)`);
          await host?.kill();
          host = undefined;
          report.faults.hostKills++;
          await sleep(down);
          host = await startHost();
          baseUrl = host.baseUrl;
        } else if (event.kind === 'azurite-restart') {
          const down = between(o.azuriteDownInMs, chaosRandom);
          log(`  ${t}s: stop Azurite (down ${Math.round(down)} ms)`);
          azuriteUp = false;
          await sandbox.azurite.stop();
          report.faults.azuriteRestarts++;
          await sleep(down);
          await sandbox.azurite.start();
          azuriteUp = true;
        } else {
          log(`  ${t}s: Service Bus delivers ${o.busDelayInMs} ms late for ${o.busDelayWindowInMs} ms`);
          report.faults.busDelayWindows++;
          sandbox.serviceBus.faults.delayDelivery(SERVICE_BUS_QUEUES.expirations, o.busDelayInMs);
          await sleep(o.busDelayWindowInMs);
          sandbox.serviceBus.faults.delayDelivery(SERVICE_BUS_QUEUES.expirations, 0);
        }
      }
    })();

    // ---- how long rules outlive their expiry while all this goes on ---------------------------------------
    const expiries = new Map<string, number>();
    let monitoring = true;
    const monitor = (async () => {
      while (monitoring) {
        await sleep(500);
        if (!azuriteUp) continue;
        for (const nsg of sandbox.arm.listNsgs()) {
          for (const rule of nsg.securityRules.filter((r) => isJitRuleName(r.name))) {
            const id = requestIdOfRule(rule.name);
            let expiresAt = expiries.get(id);
            if (expiresAt === undefined) {
              try {
                const row = await sandbox
                  .table(TABLES.requests)
                  .getEntity<{ expiresAt?: string }>(id, 'request');
                if (row.expiresAt) expiries.set(id, (expiresAt = Date.parse(row.expiresAt)));
              } catch {
                continue;
              }
            }
            if (expiresAt !== undefined)
              report.worstOpenPastExpiryInMs = Math.max(
                report.worstOpenPastExpiryInMs,
                Date.now() - expiresAt,
              );
          }
        }
      }
    })();

    // ---- the request stream ------------------------------------------------------------------------------
    const inFlight: Array<Promise<void>> = [];
    while (Date.now() < streamEnds) {
      await sleep(exponentialGap(random, 1000 / o.ratePerSecond));
      const vm = vms[Math.floor(random() * vms.length)] as BenchVm;
      const seconds = Math.round(between(o.grantSeconds));
      const drop = random() < o.expiryDropRate;
      report.requests.sent++;
      inFlight.push(
        submitRequest(baseUrl, {
          vm: vm.id,
          ports: [22],
          duration: `PT${seconds}S`,
          sourcePrefix: BENCH_SOURCE,
          justification: 'soak',
        }).then((res) => {
          const key = String(res.status);
          report.requests.answers[key] = (report.requests.answers[key] ?? 0) + 1;
          if (res.status === 202 && res.id) {
            accepted.push(res.id);
            lastAcceptedAt = Date.now();
            if (drop) dropped.add(res.id);
          }
        }),
      );
    }
    await Promise.all(inFlight);
    await Promise.all([chaos, lroFailures]);
    report.requests.accepted = accepted.length;

    // ---- settle: faults off, grace passes, the reconciler runs until nothing is left open ------------------
    log(
      `  ${Math.round((Date.now() - started) / 1000)}s: stream over (${accepted.length} accepted); settling`,
    );
    sandbox.arm.faults.clear();
    sandbox.serviceBus.faults.clear();
    if (!host?.alive) {
      host = await startHost();
      baseUrl = host.baseUrl;
    }
    const graceInMs = services().deps.settings.expiryGraceInSeconds * 1000;
    await sleep(lastAcceptedAt + o.grantSeconds[1] * 1000 + graceInMs + 2000 - Date.now());
    monitoring = false;
    await monitor;
    for (const [k, v] of Object.entries(armErrorCounts(sandbox))) report.faults.armErrorsServed[k] = v;
    report.faults.armRequestsServed = sandbox.arm.log.length;

    // The settling reconciler's lines go to the host's log, where the rest of each request's story is.
    const line = (level: string) => (event: string, fields?: Record<string, unknown>) =>
      appendFileSync(
        hostLog,
        `[${new Date().toISOString()}] settle ${level} reconcile: ${JSON.stringify({ event, ...fields })}\n`,
      );
    const deps = {
      ...services().deps,
      log: { info: line('information'), warn: line('warning'), error: line('error') },
    };
    const settleStarted = Date.now();
    let snapshot = await takeSnapshot(sandbox, accepted);
    let stableChecks = 0;
    let previous = '';
    while (Date.now() - settleStarted < o.settleTimeoutInSeconds * 1000) {
      // As the timer would, with a short staleness so stalled requests are handed on within the run.
      await reconcile(deps, { staleAfterInSeconds: 5 });
      report.reconcilerRuns++;
      await sleep(3000);
      snapshot = await takeSnapshot(sandbox, accepted);
      const open = snapshot.requests.filter((r) => !FINAL_STATUSES.has(r.status)).length;
      const rules = snapshot.nsgs.flatMap((g) => g.ruleNames.filter(isJitRuleName)).sort();
      const state = JSON.stringify([open, rules]);
      // Settled: every request final and the NSGs unchanged for two checks in a row. Rules still there then
      // belong to final requests, which nothing visits again: waiting longer cannot change the verdict.
      if (open === 0 && (rules.length === 0 || state === previous)) {
        if (++stableChecks >= 2) break;
      } else {
        stableChecks = 0;
        log(`  settling: ${open} open request(s), ${rules.length} JIT rule(s) left`);
      }
      previous = state;
    }
    report.settledInSeconds = Math.round((Date.now() - settleStarted) / 1000);
    report.violations = checkInvariants(snapshot);
    for (const r of snapshot.requests) {
      report.requests.statuses[r.status] = (report.requests.statuses[r.status] ?? 0) + 1;
      if (r.status === 'failed') {
        // Ids and NSG names vary; the reason's kind is what a person compares between runs.
        const reason = (r.statusReason ?? '').replace(/\/subscriptions\/\S+/g, '<nsg>').slice(0, 160);
        report.requests.failureReasons[reason] = (report.requests.failureReasons[reason] ?? 0) + 1;
      }
    }
  } finally {
    await host?.stop().catch(() => undefined);
    if (host?.alive) await host.kill();
    await sandbox.stop();
  }
  report.elapsedInSeconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(join(workDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  return report;
}

/** ARM answers of 400 and above served during the run, by status (injected faults and real conflicts). */
function armErrorCounts(sandbox: Sandbox): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of sandbox.arm.log)
    if (l.status >= 400) out[`${l.method} ${l.status}`] = (out[`${l.method} ${l.status}`] ?? 0) + 1;
  return out;
}

async function takeSnapshot(sandbox: Sandbox, accepted: string[]): Promise<Snapshot> {
  const requests: Snapshot['requests'] = [];
  for await (const e of sandbox.table(TABLES.requests).listEntities<{
    status: RequestStatus;
    statusReason?: string;
    approvedAt?: string;
    activatedAt?: string;
    expiresAt?: string;
  }>({ queryOptions: { filter: odata`RowKey eq ${'request'}` } })) {
    requests.push({
      id: e.partitionKey as string,
      status: e.status,
      statusReason: e.statusReason,
      approvedAt: e.approvedAt,
      activatedAt: e.activatedAt,
      expiresAt: e.expiresAt,
    });
  }
  const grants: Snapshot['grants'] = [];
  // Rule rows only: the `live` index rows name a request, not a rule.
  for await (const e of sandbox.table(TABLES.grants).listEntities<{ nsg?: string; state: string }>())
    if (e.nsg) grants.push({ requestId: e.partitionKey as string, nsgId: e.nsg, state: e.state });
  // Each event once, from the day partitions (the vm|…, actor|… and request|… partitions hold copies).
  const audit: Snapshot['audit'] = [];
  for await (const e of sandbox
    .table(TABLES.audit)
    .listEntities<{ requestId?: string; action?: string; time?: string; seq?: number }>()) {
    if (!isDayPartition(e.partitionKey as string) || !e.action) continue;
    audit.push({
      rowKey: `${e.time}|${String(e.seq).padStart(10, '0')}`,
      requestId: e.requestId,
      action: e.action,
    });
  }
  const nsgs = sandbox.arm
    .listNsgs()
    .map((n) => ({ nsgId: n.id, ruleNames: n.securityRules.map((r) => r.name) }));
  return { requests, grants, audit, nsgs, accepted: [...accepted] };
}

/** Prints what a person needs from a run: the load, the faults, and every violation with its request id. */
export function printSoakReport(r: SoakReport, log: (line: string) => void = console.log): void {
  log('');
  log(`Soak (seed ${r.seed}, ${r.elapsedInSeconds} s; data and host log in ${r.workDir})`);
  log(
    `  requests sent ${r.requests.sent}; answers ${JSON.stringify(r.requests.answers)}; accepted ${r.requests.accepted}`,
  );
  log(`  final statuses in storage ${JSON.stringify(r.requests.statuses)}`);
  for (const [reason, n] of Object.entries(r.requests.failureReasons)) log(`    failed ×${n}: ${reason}`);
  log(
    `  faults: ARM errors served ${JSON.stringify(r.faults.armErrorsServed)} of ${r.faults.armRequestsServed} requests; LRO failures armed ${r.faults.lroFailuresArmed}; ` +
      `expiry messages dropped ${r.faults.expiryMessagesDropped}; late-delivery windows ${r.faults.busDelayWindows}; ` +
      `host kills ${r.faults.hostKills}; Azurite restarts ${r.faults.azuriteRestarts}`,
  );
  log(
    `  worst rule seen open past its expiry while faults ran: ${r.worstOpenPastExpiryInMs} ms; ` +
      `settled in ${r.settledInSeconds} s (${r.reconcilerRuns} reconciler run(s))`,
  );
  const names = [
    'accepted-request-exists',
    'request-final',
    'no-rule-of-ended-grant',
    'no-rule-without-live-grant',
    'audit-for-every-change',
    'applied-at-most-once',
    'grant-records-match',
  ] as const;
  for (const n of names) {
    const v = r.violations.filter((x) => x.invariant === n);
    log(`  ${v.length === 0 ? 'ok  ' : 'FAIL'} ${n}${v.length ? ` (${v.length})` : ''}`);
    for (const x of v.slice(0, 10)) {
      const known = knownIssueOf(x);
      log(`         ${x.requestId ?? ''} ${x.detail}${known ? ` [known issue: ${known.id}]` : ''}`);
    }
  }
}

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const seed = Number(arg('seed') ?? envNumber('SOAK_SEED', Math.floor(Math.random() * 1e6)));
  const workDir = join(PROJECT_ROOT, '.sandbox', `soak-${seed}-${Date.now()}`);
  const report = await runSoak({
    durationInSeconds: Number(arg('seconds') ?? envNumber('SOAK_SECONDS', DEFAULT_SOAK.durationInSeconds)),
    ratePerSecond: envNumber('SOAK_RATE', DEFAULT_SOAK.ratePerSecond),
    seed,
    grantSeconds: [
      envNumber('SOAK_GRANT_MIN_S', DEFAULT_SOAK.grantSeconds[0]),
      envNumber('SOAK_GRANT_MAX_S', DEFAULT_SOAK.grantSeconds[1]),
    ],
    hostKillEveryInMs: envNumber('SOAK_KILL_EVERY_S', DEFAULT_SOAK.hostKillEveryInMs / 1000) * 1000,
    azuriteRestartEveryInMs:
      envNumber('SOAK_AZURITE_EVERY_S', DEFAULT_SOAK.azuriteRestartEveryInMs / 1000) * 1000,
    armFaultRate: envNumber('SOAK_ARM_FAULT_RATE', DEFAULT_SOAK.armFaultRate),
    expiryDropRate: envNumber('SOAK_DROP_RATE', DEFAULT_SOAK.expiryDropRate),
    settleTimeoutInSeconds: envNumber('SOAK_SETTLE_S', DEFAULT_SOAK.settleTimeoutInSeconds),
    workDir,
  });
  printSoakReport(report);
  if (report.violations.length) {
    for (const k of KNOWN_ISSUES.filter((k) => report.violations.some((v) => k.matches(v))))
      console.error(`\nKnown issue ${k.id}: ${k.summary}`);
    console.error(
      `\n${report.violations.length} invariant violation(s); replay the stream with --seed ${report.seed}`,
    );
    process.exit(1);
  }
  console.log('\nEvery invariant held.');
  process.exit(0);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
}
