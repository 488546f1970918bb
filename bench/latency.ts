/**
 * The two clocks a JIT system is judged by, on the auto-approval path:
 * - open latency: request accepted (202) → the rule in place (its ARM operation finished) in every NSG of the
 *   VM's path; beside it the time applyGrant spent inside ARM calls, their difference (our overhead) and ratio;
 * - close lag: expiresAt → the rule gone (from the first NSG: the port is closed; from all: nothing left).
 *
 * Two phases: "quiet" (one request at a time, seconds apart: an engineer on an idle system, the queue pollers
 * backed off) and "busy" (Poisson arrivals over many VMs). The host runs in a child process; the emulators, the
 * load and the rule watch run here. The ARM emulator gets a per-operation and per-request latency so ARM time
 * is realistic rather than zero.
 */
import { parseDurationToSeconds } from '../shared/domain/duration';
import { closingBeginsAt } from '../shared/domain/lifecycle';
import { TABLES } from '../shared/names';
import { submitRequest } from './support/api';
import { hostLogFile, startBenchSandbox } from './support/benchmark';
import type { Benchmark } from './support/benchmark';
import { ChildHost } from './support/childHost';
import type { ChildStats } from './support/childHost';
import { envNumber, envString } from './support/env';
import { BENCH_SOURCE, addEstate, estatePolicy } from './support/estate';
import type { BenchVm } from './support/estate';
import { RuleWatch } from './support/ruleWatch';
import { exponentialGap, ms, ratio, seededRandom, sleep, summarize } from './support/stats';
import type { Summary } from './support/stats';
import { printTable } from './support/table';

interface Sample {
  phase: 'quiet' | 'busy';
  id?: string;
  status: number;
  submitInMs: number;
  openInMs?: number;
  activeInMs?: number;
  /** From expiresAt (negative: the port was shut before it). */
  closedFirstLagInMs?: number;
  closedAllLagInMs?: number;
  /** From when closing began (JIT_CLOSE_LEAD ahead of expiresAt): the close itself. */
  closedFirstFromStartInMs?: number;
  error?: string;
}

const within = <T>(p: Promise<T>, timeoutInMs: number, what: string): Promise<T> =>
  Promise.race([
    p,
    sleep(timeoutInMs).then(() => {
      throw new Error(`timed out after ${timeoutInMs} ms waiting for ${what}`);
    }),
  ]);

/**
 * The ARM the host talks to:
 * - `fast`: rule operations of 500 ms (BENCH_ARM_OPERATION_MS) with `Retry-After: 0`, and the host polling every
 *   50 ms as the sandbox does. ARM's request limits are off: this is a time-compressed ARM, and 50 ms polls against
 *   a real one would be throttled.
 * - `azure`: what Network RP does — operations of 3 s, `Retry-After: 10` while they run, ARM's token-bucket
 *   throttling — and the host with its production settings (no sandbox polling override).
 */
type Profile = 'fast' | 'azure';

export const latency: Benchmark = latencyBenchmark('fast');
export const latencyAzure: Benchmark = latencyBenchmark('azure');

function latencyBenchmark(profile: Profile): Benchmark {
  const azure = profile === 'azure';
  return {
    name: azure ? 'latency-azure' : 'latency',
    summary: azure
      ? 'the same against an Azure-like ARM: 3 s operations, Retry-After 10 s, ARM throttling; reads per grant'
      : 'open latency (accepted → rule in place) vs ARM time, and close lag (expiresAt → rule gone)',
    run: () => runLatency(profile),
  };
}

async function runLatency(profile: Profile): Promise<Record<string, unknown>> {
  const azure = profile === 'azure';
  const o = {
    profile,
    operationLatencyInMs: envNumber('BENCH_ARM_OPERATION_MS', azure ? 3000 : 500),
    operationRetryAfterInSeconds: azure ? 10 : 0,
    requestLatencyInMs: envNumber('BENCH_ARM_REQUEST_MS', 50),
    quietRequests: envNumber('BENCH_QUIET_REQUESTS', azure ? 10 : 20),
    quietGapInMs: [envNumber('BENCH_QUIET_GAP_MIN_MS', 2000), envNumber('BENCH_QUIET_GAP_MAX_MS', 5000)],
    busyRequests: envNumber('BENCH_BUSY_REQUESTS', azure ? 60 : 240),
    busyRatePerSecond: envNumber('BENCH_BUSY_RATE', azure ? 0.5 : 2),
    durationInSeconds: envNumber('BENCH_DURATION_S', azure ? 30 : 20),
    // The host's JIT_CLOSE_LEAD (the deployed default unless set; PT0S closes at expiresAt, as before it existed).
    closeLead: envString('BENCH_CLOSE_LEAD', 'PT10S'),
    subnets: envNumber('BENCH_SUBNETS', 10),
    vmsPerSubnet: envNumber('BENCH_VMS_PER_SUBNET', 5),
    seed: envNumber('BENCH_SEED', 9),
  };
  // An operation that waits out 10 s polls behind others on the same NSG takes minutes, not seconds.
  const waitInMs = azure ? 900_000 : 120_000;
  const rg = 'bench-rg';
  const sandbox = await startBenchSandbox(
    {
      arm: azure
        ? {
            profile: 'azure',
            operationLatencyInMs: o.operationLatencyInMs,
            requestLatencyInMs: o.requestLatencyInMs,
          }
        : {
            operationLatencyInMs: o.operationLatencyInMs,
            requestLatencyInMs: o.requestLatencyInMs,
            throttling: false,
          },
    },
    [estatePolicy(rg)],
  );
  const vms = addEstate(sandbox.arm, {
    resourceGroup: rg,
    subnets: o.subnets,
    vmsPerSubnet: o.vmsPerSubnet,
  });
  const host = await ChildHost.forSandbox(sandbox, {
    instrumentArm: true,
    logFile: hostLogFile(azure ? 'latency-azure' : 'latency'),
    // `azure`: the ARM adapter as deployed, not the sandbox's 50 ms polls.
    ...(azure ? { armPollIntervalInMs: 'default' as const } : {}),
    settings: { JIT_CLOSE_LEAD: o.closeLead },
  });
  const closeLeadInSeconds = parseDurationToSeconds(o.closeLead, { zero: true });
  const watch = new RuleWatch(sandbox.arm);
  const requests = sandbox.table(TABLES.requests);
  const random = seededRandom(o.seed);
  const pick = () => vms[Math.floor(random() * vms.length)] as BenchVm;

  /** One request: resolves `opened` when the port is open, `done` when it has closed again. */
  const one = (vm: BenchVm, phase: Sample['phase'], duration = `PT${o.durationInSeconds}S`) => {
    const sample: Sample = { phase, status: 0, submitInMs: 0 };
    let markOpened: () => void = () => undefined;
    const opened = new Promise<void>((r) => (markOpened = r));
    const done = (async () => {
      const sent = Date.now();
      const res = await submitRequest(host.baseUrl, {
        vm: vm.id,
        ports: [22],
        duration,
        sourcePrefix: BENCH_SOURCE,
      });
      const accepted = Date.now();
      sample.status = res.status;
      sample.submitInMs = accepted - sent;
      if (res.status !== 202 || !res.id) throw new Error(`POST answered ${res.status}: ${res.detail}`);
      sample.id = res.id;
      const rule = `jit-${res.id.toLowerCase()}`;
      const openAt = await within(watch.present(vm.nsgIds, rule), waitInMs, `${rule} in place`);
      sample.openInMs = openAt - accepted;
      markOpened();
      const gone = await within(
        watch.gone(vm.nsgIds, rule),
        o.durationInSeconds * 1000 + waitInMs,
        `${rule} removed`,
      );
      const row = await requests.getEntity<{
        expiresAt: string;
        durationInSeconds: number;
        createdAt: string;
        activatedAt: string;
      }>(res.id, 'request');
      sample.activeInMs = Date.parse(row.activatedAt) - Date.parse(row.createdAt);
      sample.closedFirstLagInMs = gone.first - Date.parse(row.expiresAt);
      sample.closedAllLagInMs = gone.all - Date.parse(row.expiresAt);
      sample.closedFirstFromStartInMs = gone.first - Date.parse(closingBeginsAt(row, closeLeadInSeconds));
    })()
      .catch((err: unknown) => {
        sample.error = String((err as Error)?.message ?? err);
        markOpened();
      })
      .then(() => sample);
    return { opened, done };
  };

  const all: Array<Promise<Sample>> = [];
  let stats: ChildStats;
  let armRequests: number;
  let armReads: number;
  let armThrottled: number;
  const started = Date.now();
  try {
    // Warm-up: compile paths, open connections. Not counted.
    for (const vm of vms.slice(0, 3)) await one(vm, 'quiet', 'PT2S').done;

    console.log(
      `  quiet phase: ${o.quietRequests} requests, one at a time, ${o.quietGapInMs.join('-')} ms apart`,
    );
    for (let i = 0; i < o.quietRequests; i++) {
      const gap = o.quietGapInMs[0]! + random() * (o.quietGapInMs[1]! - o.quietGapInMs[0]!);
      await sleep(gap);
      const r = one(pick(), 'quiet');
      all.push(r.done);
      await r.opened;
    }
    console.log(`  busy phase: ${o.busyRequests} requests, Poisson at ${o.busyRatePerSecond}/s`);
    for (let i = 0; i < o.busyRequests; i++) {
      all.push(one(pick(), 'busy').done);
      await sleep(exponentialGap(random, 1000 / o.busyRatePerSecond));
    }
    await Promise.all(all);
    // The last revokes are still writing their final rows when their rules are seen gone.
    await sleep(1000);
    stats = await host.stats();
    armRequests = sandbox.arm.log.length;
    armReads = sandbox.arm.log.filter((e) => e.method === 'GET').length;
    armThrottled = sandbox.arm.log.filter((e) => e.status === 429).length;
  } finally {
    watch.stop();
    await host.stop();
    await sandbox.stop();
  }
  const samples = await Promise.all(all);
  const elapsedInS = (Date.now() - started) / 1000;

  const figures: Record<string, unknown> = { conditions: { ...o, vms: vms.length, elapsedInS } };
  const rows: Array<Record<string, string | number>> = [];
  const row = (phase: string, metric: string, s: Summary, fmt = ms) =>
    rows.push({
      phase,
      metric,
      n: s.n,
      p50: fmt(s.p50),
      p95: fmt(s.p95),
      p99: fmt(s.p99),
      max: fmt(s.max),
    });
  for (const phase of ['quiet', 'busy'] as const) {
    const ok = samples.filter((s) => s.phase === phase && !s.error && s.id);
    const arm = (s: Sample) => stats.arm[`applyGrant:${s.id}`];
    const opened = ok.filter((s) => s.openInMs !== undefined && arm(s));
    const open = summarize(opened.map((s) => s.openInMs!));
    const armTime = summarize(opened.map((s) => arm(s)!.armInMs));
    const overhead = summarize(opened.map((s) => s.openInMs! - arm(s)!.armInMs));
    const perRequestRatio = summarize(opened.map((s) => s.openInMs! / arm(s)!.armInMs));
    const active = summarize(ok.map((s) => s.activeInMs!).filter(Number.isFinite));
    const submit = summarize(ok.map((s) => s.submitInMs));
    const closedFirst = summarize(ok.map((s) => s.closedFirstLagInMs!).filter(Number.isFinite));
    const closedAll = summarize(ok.map((s) => s.closedAllLagInMs!).filter(Number.isFinite));
    const closedFromStart = summarize(ok.map((s) => s.closedFirstFromStartInMs!).filter(Number.isFinite));
    const revokeArm = summarize(
      ok.map((s) => stats.arm[`expirations:${s.id}`]?.armInMs ?? NaN).filter(Number.isFinite),
    );
    row(phase, 'open: accepted → rule in place', open);
    row(phase, 'ARM time in applyGrant', armTime);
    row(phase, 'our overhead (open − ARM)', overhead);
    row(phase, 'ratio open / ARM', perRequestRatio, ratio);
    row(phase, 'accepted → status active', active);
    row(phase, 'POST → 202', submit);
    row(phase, 'close: expiresAt → port closed', closedFirst);
    row(phase, 'close: expiresAt → all rules gone', closedAll);
    row(phase, 'close: closing began → port closed', closedFromStart);
    row(phase, 'ARM time in expirations', revokeArm);
    const calls: Record<string, number> = {};
    for (const s of opened)
      for (const [k, n] of Object.entries(arm(s)!.calls)) calls[k] = (calls[k] ?? 0) + n / opened.length;
    figures[phase] = {
      failures: samples.filter((s) => s.phase === phase && s.error).map((s) => s.error),
      open,
      armTime,
      overhead,
      perRequestRatio,
      ratioOfMedians: open.p50 / armTime.p50,
      active,
      submit,
      closedFirst,
      closedAll,
      closedFromStart,
      revokeArm,
      armCallsPerGrant: Object.fromEntries(Object.entries(calls).map(([k, v]) => [k, ratio(v)])),
    };
  }
  figures.hostPeakRssInMiB = Math.round(stats.maxRssInKiB / 1024);
  // CPU the host spent per request (open and close, all four functions), to tell a CPU-bound run.
  figures.hostCpuPerRequestInMs = ms(stats.cpuInMs / samples.length);
  // Every ARM HTTP request served (GETs, PUTs, DELETEs, operation polls), per request opened and closed.
  figures.armHttpRequestsPerRequest = ratio(armRequests / samples.length);
  // ARM reads (GETs: path, listings, operation polls, final GETs) per grant opened and closed, against ARM's
  // read limit (25 a second per subscription and principal, after a burst of 250: docs/performance.md).
  figures.armReadsPerRequest = ratio(armReads / samples.length);
  figures.armThrottled = armThrottled;
  printTable(
    `Latency (ms) — ${profile} profile: ARM operation ${o.operationLatencyInMs} ms, ` +
      `Retry-After ${o.operationRetryAfterInSeconds} s, request ${o.requestLatencyInMs} ms, ` +
      `${vms.length} VMs in ${o.subnets} subnets, grants of ${o.durationInSeconds} s`,
    rows,
  );
  for (const phase of ['quiet', 'busy'] as const) {
    const f = figures[phase] as {
      ratioOfMedians: number;
      armCallsPerGrant: Record<string, number>;
      failures: string[];
    };
    console.log(
      `  ${phase}: p50(open)/p50(ARM) = ${ratio(f.ratioOfMedians)}; ARM calls per grant ` +
        JSON.stringify(f.armCallsPerGrant) +
        (f.failures.length ? `; ${f.failures.length} failed: ${f.failures.slice(0, 3).join(' | ')}` : ''),
    );
  }
  console.log(
    `  ARM HTTP requests per request (open + close, polls included): ${String(figures.armHttpRequestsPerRequest)}, ` +
      `of which reads ${String(figures.armReadsPerRequest)}; ${armThrottled} answered 429; ` +
      `host peak RSS ${String(figures.hostPeakRssInMiB)} MiB, CPU ${String(figures.hostCpuPerRequestInMs)} ms per request; ` +
      `${ms(elapsedInS)} s`,
  );
  return figures;
}
