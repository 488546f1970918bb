/**
 * The reconciler over a large estate (default 10,000 VMs behind 1,000 NSGs in 20 subscriptions) against an
 * Azure-like ARM (3 s operations, Retry-After 10 s, ARM's token-bucket throttling):
 * - one unbounded pass over a fresh estate (every VM new) and one full sweep (every VM's path read again, every
 *   watched NSG's rules listed): ARM calls, wall time, reads per subscription and their peak rate against ARM's
 *   read limit, 429s;
 * - how many runs of the configured budget (JIT_RECONCILE_MAX_ARM_CALLS, a run every 2 minutes as deployed) a full
 *   sweep takes, with the clock an hour on so that everything is due;
 * - a grant expiring in the middle of a full sweep (while it reads ARM): its close lag, beside one that expires with
 *   no sweep running, and what the sweep did before and after the expiry.
 *
 * The sweeps run in this process with the sandbox's services, the grants in the child host; both use one
 * identity, as the timer and the Service Bus trigger of one Function App do, so they share ARM's buckets.
 */
import { loadavg } from 'node:os';
import { services } from '../shared/composition';
import { TABLES } from '../shared/names';
import type { Deps } from '../shared/usecases/deps';
import { reconcile } from '../shared/usecases/reconcile';
import type { ReconcileReport } from '../shared/usecases/reconcile';
import type { Sandbox } from '../dev/sandbox';
import type { ArmRequestLogEntry } from '../dev/arm/emulator';
import { submitRequest } from './support/api';
import { hostLogFile, startBenchSandbox } from './support/benchmark';
import type { Benchmark } from './support/benchmark';
import { ChildHost } from './support/childHost';
import { envNumber, envString } from './support/env';
import { BENCH_SOURCE, addLargeEstate } from './support/estate';
import type { BenchVm } from './support/estate';
import { RuleWatch } from './support/ruleWatch';
import { ms, ratio, sleep } from './support/stats';
import { printTable } from './support/table';

/** ARM's read bucket per subscription and principal (dev/arm/throttling.ts cites the page). */
const READ_REFILL_PER_SECOND = 25;
const READ_BUCKET = 250;
const SCHEDULE_IN_MINUTES = 2;

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

interface PassFigures {
  armCalls: number;
  wallInS: number;
  reads: number;
  writes: number;
  throttled: number;
  subscriptionsRead: number;
  /** Most reads of any one subscription in the pass. */
  maxReadsPerSubscription: number;
  /** Most reads of any one subscription within one second. */
  peakReadsPerSecond: number;
  nsgsSwept: number;
  vmsRefreshed: number;
  budgetSpent: boolean;
  stoppedIn?: string;
  /** When half the pass's ARM requests had been served, in seconds from its start. */
  halfCallsInS: number;
  /** When the pass started and ended (ms since the epoch). */
  startedAt: number;
  endedAt: number;
}

/** Close lag of one grant (closeLag), in ms from its expiresAt. */
interface CloseLag {
  expiresAt: string;
  goneInMs: number;
  expiredInMs: number;
}

/** A grant expiring in the middle of a full sweep, beside one expiring with nothing else running. */
interface ExpiryFigures {
  control: CloseLag;
  duringSweep: CloseLag;
  sweep: PassFigures;
  /** Whether the sweep was running both at expiresAt and when the rule went; if not, the lags compare nothing. */
  overlapped: boolean;
  /** When the sweep started and ended, in ms from expiresAt (negative: before it). */
  sweepStartInMs: number;
  sweepEndInMs: number;
  /** The sweep's own ARM requests (not the grant's) served before expiresAt, until the rule was gone, and after. */
  sweepCalls: { beforeExpiry: number; untilGone: number; afterGone: number };
  /** The machine's 1-minute load average when the sweep ended (the sandbox and the host share it with the sweep). */
  loadAverage: number;
}

export const reconcileBench: Benchmark = {
  name: 'reconcile',
  summary:
    'one reconciler pass over 10,000 VMs / 1,000 NSGs / 20 subscriptions: ARM calls, time, read-limit share',
  async run() {
    const o = {
      subscriptions: envNumber('BENCH_ESTATE_SUBSCRIPTIONS', 20),
      vmsPerSubscription: envNumber('BENCH_ESTATE_VMS', 500),
      nsgsPerSubscription: envNumber('BENCH_ESTATE_NSGS', 50),
      requestLatencyInMs: envNumber('BENCH_ARM_REQUEST_MS', 0),
      maxBudgetedRuns: envNumber('BENCH_ESTATE_RUNS', 30),
      // JIT_RECONCILE_MAX_ARM_CALLS as deployed (its default).
      budget: envNumber('BENCH_ESTATE_BUDGET', 200),
      grantSeconds: envNumber('BENCH_ESTATE_GRANT_S', 45),
      // Which parts to run (the first pass always runs: it builds what the others sweep; `expiry` runs `full` too, to
      // know when in a sweep its ARM calls come).
      parts: new Set(envString('BENCH_ESTATE_PARTS', 'full,budgeted,expiry').split(',')),
    };
    const sandbox = await startBenchSandbox({
      arm: { profile: 'azure', requestLatencyInMs: o.requestLatencyInMs },
      // The child host's own timer stays out of the way: its start-up run is the smallest a run can be.
      settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *', JIT_RECONCILE_MAX_ARM_CALLS: '10' },
    });
    const started = Date.now();
    const estate = addLargeEstate(sandbox.arm, o);
    const vmCount = estate.vms.reduce((n, v) => n + v.length, 0);
    console.log(
      `  estate: ${vmCount} VMs, ${sandbox.arm.listNsgs().length} NSGs, built in ${Date.now() - started} ms`,
    );
    const base: Deps = { ...services().deps, log: quiet };
    for (const p of estate.policies) await base.policies.upsert(p);
    const budget = o.budget;

    const figures: Record<string, unknown> = {
      conditions: { ...o, parts: [...o.parts], vms: vmCount },
    };
    const rows: Array<Record<string, string | number>> = [];
    const row = (what: string, f: PassFigures) =>
      rows.push({
        pass: what,
        'ARM calls': f.armCalls,
        'wall s': ms(f.wallInS),
        reads: f.reads,
        '429s': f.throttled,
        'max reads/sub': f.maxReadsPerSubscription,
        'peak reads/sub/s': f.peakReadsPerSecond,
        'NSGs swept': f.nsgsSwept,
        'VMs refreshed': f.vmsRefreshed,
      });
    let host: ChildHost | undefined;
    const watch = new RuleWatch(sandbox.arm);
    try {
      const first = await measure(sandbox.arm.log, () => reconcile(base, { maxArmCalls: 100_000 }));
      row('first pass (every VM new)', first);
      console.log(`  first pass: ${first.armCalls} ARM calls in ${ms(first.wallInS)} s`);
      figures.firstPass = first;
      let full: PassFigures | undefined;
      if (o.parts.has('full') || o.parts.has('expiry')) {
        full = await measure(sandbox.arm.log, () =>
          reconcile(base, { maxArmCalls: 100_000, coverageRefreshInSeconds: 0 }),
        );
        row('full sweep', full);
        console.log(`  full sweep: ${full.armCalls} ARM calls in ${ms(full.wallInS)} s`);
        figures.fullSweep = full;
      }

      // A grant that expires while a full sweep runs, beside one that expires with nothing else going on. Before the
      // budgeted runs: they run with the clock an hour on and leave every NSG and VM marked swept in the future, so a
      // sweep on the real clock after them finds next to nothing due.
      let expiry: ExpiryFigures | undefined;
      if (full && o.parts.has('expiry')) {
        host = await ChildHost.forSandbox(sandbox, {
          logFile: hostLogFile('reconcile'),
          armPollIntervalInMs: 'default',
        });
        // Start the sweep so that the expiry lands when it has made half its ARM calls, as the full sweep above did
        // (at once if the grant is shorter than that).
        expiry = await expiryDuringSweep(
          base,
          host,
          watch,
          sandbox,
          estate.vms[0]!,
          o.grantSeconds,
          full.halfCallsInS,
        );
        figures.expiry = expiry;
        row('full sweep with a grant expiring', expiry.sweep);
        await host.stop();
        host = undefined;
      }

      // An hour on, everything is due again: how many budgeted runs, one every 2 minutes, until each watched NSG has
      // been read and each VM's path refreshed?
      let offsetInMs = 61 * 60_000;
      const due = new Date(Date.now() + offsetInMs).toISOString();
      const runs: Array<Pick<ReconcileReport, 'armCalls' | 'nsgsSwept' | 'vmsRefreshed' | 'stoppedIn'>> = [];
      let complete = false;
      while (o.parts.has('budgeted') && runs.length < o.maxBudgetedRuns && !complete) {
        const at = offsetInMs;
        const d: Deps = { ...base, clock: { now: () => new Date(Date.now() + at) } };
        const r = await reconcile(d, { maxArmCalls: budget });
        runs.push({
          armCalls: r.armCalls,
          nsgsSwept: r.nsgsSwept,
          vmsRefreshed: r.vmsRefreshed,
          stoppedIn: r.stoppedIn,
        });
        offsetInMs += SCHEDULE_IN_MINUTES * 60_000;
        complete = await sweptSince(base, due, vmCount);
      }
      const budgeted = {
        runs: runs.length,
        complete,
        minutes: runs.length * SCHEDULE_IN_MINUTES,
        armCalls: runs.reduce((n, r) => n + r.armCalls, 0),
        nsgsSwept: runs.reduce((n, r) => n + r.nsgsSwept, 0),
        vmsRefreshed: runs.reduce((n, r) => n + r.vmsRefreshed, 0),
        stoppedIn: [...new Set(runs.map((r) => r.stoppedIn ?? 'none'))],
      };
      figures.budgeted = budgeted;
      console.log(`  budgeted runs: ${budgeted.runs}, complete: ${String(budgeted.complete)}`);

      printTable(
        `Reconciler over ${vmCount} VMs, ${estate.subscriptionIds.length * o.nsgsPerSubscription} NSGs, ` +
          `${estate.subscriptionIds.length} subscriptions (ARM request latency ${o.requestLatencyInMs} ms)`,
        rows,
      );
      if (full)
        console.log(
          `  full sweep: ${ratio(full.armCalls / vmCount)} ARM calls per VM; at most ${full.maxReadsPerSubscription} ` +
            `reads in one subscription = ${ratio((100 * full.maxReadsPerSubscription) / (READ_REFILL_PER_SECOND * 3600))} % ` +
            `of its hourly read capacity (${READ_REFILL_PER_SECOND}/s, bucket ${READ_BUCKET}); peak ` +
            `${full.peakReadsPerSecond} reads/s in one subscription = ` +
            `${Math.round((100 * full.peakReadsPerSecond) / READ_REFILL_PER_SECOND)} % of the refill`,
        );
      console.log(
        `  budgeted (${budget} calls a run, one every ${SCHEDULE_IN_MINUTES} min, clock an hour on): ` +
          (budgeted.complete
            ? `a full sweep took ${budgeted.runs} runs = ${budgeted.minutes} min`
            : `no full sweep in ${budgeted.runs} runs (${budgeted.minutes} min)`) +
          `; ${budgeted.nsgsSwept} NSG sweeps, ${budgeted.vmsRefreshed} VM refreshes, ${budgeted.armCalls} calls; ` +
          `runs stopped in ${budgeted.stoppedIn.join(', ')}`,
      );
      if (expiry) {
        const { control, duringSweep: during, sweepCalls: c } = expiry;
        console.log(
          `  expiry during a sweep: the sweep ran from ${ratio(expiry.sweepStartInMs / 1000)} to ` +
            `${ratio(expiry.sweepEndInMs / 1000)} s of expiresAt, the rule went at ${ratio(during.goneInMs / 1000)} s; the ` +
            `sweep's ARM requests: ${c.beforeExpiry} before expiresAt, ${c.untilGone} until the rule went, ` +
            `${c.afterGone} after` +
            (expiry.overlapped ? '' : ' — NOT a sweep in progress at the expiry: the lags below say nothing'),
        );
        console.log(
          `  expiresAt → rule gone: ${ms(control.goneInMs)} ms with nothing running, ${ms(during.goneInMs)} ms with a ` +
            `full sweep running; expiresAt → request expired: ${ms(control.expiredInMs)} ms / ${ms(during.expiredInMs)} ms ` +
            `(load average ${expiry.loadAverage})`,
        );
      }
    } finally {
      watch.stop();
      await host?.stop();
      await sandbox.stop();
    }
    return figures;
  },
};

/**
 * Runs a pass and reads what it did from its report and from the ARM requests served meanwhile (those `ours` keeps,
 * when others' requests are served at the same time).
 */
async function measure(
  log: ArmRequestLogEntry[],
  pass: () => Promise<ReconcileReport>,
  ours: (e: ArmRequestLogEntry) => boolean = () => true,
): Promise<PassFigures> {
  const from = log.length;
  const startedAt = Date.now();
  const report = await pass();
  const endedAt = Date.now();
  const wallInS = (endedAt - startedAt) / 1000;
  const served = log.slice(from).filter(ours);
  // The log is in the order requests finished; `at` is when each arrived.
  const arrivals = served.map((e) => e.at).sort((a, b) => a - b);
  const readsBySubscription = new Map<string, number[]>();
  for (const e of served) {
    if (e.method !== 'GET') continue;
    const s = /^\/subscriptions\/([^/]+)/i.exec(e.path)?.[1]?.toLowerCase() ?? '?';
    const list = readsBySubscription.get(s) ?? [];
    list.push(e.at);
    readsBySubscription.set(s, list);
  }
  let peak = 0;
  for (const times of readsBySubscription.values()) {
    times.sort((a, b) => a - b);
    let lo = 0;
    for (let hi = 0; hi < times.length; hi++) {
      while ((times[hi] ?? 0) - (times[lo] ?? 0) >= 1000) lo++;
      peak = Math.max(peak, hi - lo + 1);
    }
  }
  return {
    armCalls: report.armCalls,
    wallInS,
    reads: served.filter((e) => e.method === 'GET').length,
    writes: served.filter((e) => e.method !== 'GET').length,
    throttled: served.filter((e) => e.status === 429).length,
    subscriptionsRead: readsBySubscription.size,
    maxReadsPerSubscription: Math.max(0, ...[...readsBySubscription.values()].map((t) => t.length)),
    peakReadsPerSecond: peak,
    nsgsSwept: report.nsgsSwept,
    vmsRefreshed: report.vmsRefreshed,
    budgetSpent: report.budgetSpent,
    stoppedIn: report.stoppedIn,
    halfCallsInS: ((arrivals[Math.floor((arrivals.length - 1) / 2)] ?? startedAt) - startedAt) / 1000,
    startedAt,
    endedAt,
  };
}

/** Whether every watched NSG was swept, and every VM's coverage refreshed, at or after `since`. */
async function sweptSince(deps: Deps, since: string, vms: number): Promise<boolean> {
  let nsgsBehind = 0;
  for await (const n of deps.nsgs.listWatchedNsgs()) if ((n.reconciledAt ?? '') < since) nsgsBehind++;
  let refreshed = 0;
  for await (const c of deps.nsgs.listCoverage()) if (c.refreshedAt >= since) refreshed++;
  return nsgsBehind === 0 && refreshed >= vms;
}

/**
 * Opens a grant, runs `meanwhile` once it is open, and returns how long after its expiry its rule was gone (the port
 * closed) and its request said `expired` (what its user and the audit see).
 */
async function closeLag(
  host: ChildHost,
  watch: RuleWatch,
  sandbox: Sandbox,
  vm: BenchVm,
  seconds: number,
  meanwhile: (expiresAt: string) => Promise<unknown>,
): Promise<CloseLag> {
  const res = await submitRequest(host.baseUrl, {
    vm: vm.id,
    ports: [22],
    duration: `PT${seconds}S`,
    sourcePrefix: BENCH_SOURCE,
  });
  if (res.status !== 202 || !res.id) throw new Error(`POST answered ${res.status}: ${res.detail}`);
  const rule = `jit-${res.id.toLowerCase()}`;
  const id = res.id;
  const stuck = async (what: string): Promise<never> => {
    await sleep(600_000);
    const r = await fetch(`${host.baseUrl}/api/requests/${id}`, {
      headers: { 'x-jit-dev-user': 'bench@example.com' },
    });
    throw new Error(`${rule} not ${what} after 10 minutes: ${(await r.text()).slice(0, 500)}`);
  };
  await Promise.race([watch.present(vm.nsgIds, rule), stuck('in place')]);
  const row = await sandbox.table(TABLES.requests).getEntity<{ expiresAt?: string }>(res.id, 'request');
  let expiresAt = row.expiresAt;
  while (!expiresAt) {
    await sleep(200);
    expiresAt = (await sandbox.table(TABLES.requests).getEntity<{ expiresAt?: string }>(res.id, 'request'))
      .expiresAt;
  }
  const [gone] = await Promise.all([
    Promise.race([watch.gone(vm.nsgIds, rule), stuck('gone')]),
    meanwhile(expiresAt),
  ]);
  const endedAt = async (): Promise<string> => {
    for (;;) {
      const row = await sandbox.table(TABLES.requests).getEntity<{ endedAt?: string }>(id, 'request');
      if (row.endedAt) return row.endedAt;
      await sleep(100);
    }
  };
  return {
    expiresAt,
    goneInMs: gone.all - Date.parse(expiresAt),
    expiredInMs: Date.parse(await endedAt()) - Date.parse(expiresAt),
  };
}

/** ARM requests of a grant being opened or closed (its own rule, operation polls), as opposed to a sweep's reads. */
const isGrantCall = (e: ArmRequestLogEntry) =>
  /\/securityRules\/jit-|\/locations\/[^/]+\/operation(s|Results)\//i.test(e.path);

/**
 * Closes a grant with nothing else running, then another (on the next VM of the same subnet NSG) while a full sweep
 * runs: every watched NSG and every VM due again (`coverageRefreshInSeconds: 0`, and NSGs last swept before the
 * sweep started; it runs on the real clock, so the grant is not overdue to it), started `leadInS` before the expiry.
 */
async function expiryDuringSweep(
  base: Deps,
  host: ChildHost,
  watch: RuleWatch,
  sandbox: Sandbox,
  vms: BenchVm[],
  grantSeconds: number,
  leadInS: number,
): Promise<ExpiryFigures> {
  const control = await closeLag(host, watch, sandbox, vms[0]!, grantSeconds, async () => undefined);
  let sweep: PassFigures | undefined;
  const during = await closeLag(host, watch, sandbox, vms[1]!, grantSeconds, async (expiresAt) => {
    await sleep(Math.max(0, Date.parse(expiresAt) - Date.now() - leadInS * 1000));
    sweep = await measure(
      sandbox.arm.log,
      () => reconcile(base, { maxArmCalls: 100_000, coverageRefreshInSeconds: 0 }),
      (e) => !isGrantCall(e),
    );
  });
  if (!sweep) throw new Error('the sweep did not run');
  const expiresAt = Date.parse(during.expiresAt);
  const goneAt = expiresAt + during.goneInMs;
  const { startedAt, endedAt } = sweep;
  const calls = sandbox.arm.log.filter((e) => e.at >= startedAt && e.at <= endedAt && !isGrantCall(e));
  return {
    control,
    duringSweep: during,
    sweep,
    overlapped: startedAt < expiresAt && goneAt < endedAt,
    sweepStartInMs: startedAt - expiresAt,
    sweepEndInMs: endedAt - expiresAt,
    sweepCalls: {
      beforeExpiry: calls.filter((e) => e.at < expiresAt).length,
      untilGone: calls.filter((e) => e.at >= expiresAt && e.at < goneAt).length,
      afterGone: calls.filter((e) => e.at >= goneAt).length,
    },
    loadAverage: ratio(loadavg()[0] ?? NaN),
  };
}
