/**
 * Intake: how many `POST /api/requests` per second one local host sustains with p99 latency under 200 ms,
 * beside the raw rate of the storage work underneath (one table write plus one enqueue) on the same machine.
 *
 * The policy asks for approval, so each accepted request also runs evaluateRequest in the same host (one more
 * hop of table work) but no ARM: the figure is the instance's intake, not the network's. autocannon runs
 * closed loops of 1, 2, 4, ... callers until p99 passes 200 ms; the sustained rate is the best one within it.
 * The raw baseline is the same storage's rate for one entity write plus one enqueue, with 16 loops. The host
 * runs in a child process; autocannon and the raw baseline run here; Azurite is its own process — all on the
 * same cores, and Azurite is single-threaded: it is usually what runs out first.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { QueueClient } from '@azure/storage-queue';
import { ulid } from 'ulid';
import type { Sandbox } from '../dev/sandbox';
import { hostLogFile, startBenchSandbox } from './support/benchmark';
import type { Benchmark } from './support/benchmark';
import { ChildHost } from './support/childHost';
import { envNumber } from './support/env';
import { BENCH_SOURCE, addEstate, estatePolicy } from './support/estate';
import type { BenchVm } from './support/estate';
import { ms, ratio, summarize } from './support/stats';
import { printTable } from './support/table';

const P99_LIMIT_IN_MS = 200;

export const intake: Benchmark = {
  name: 'intake',
  summary: 'POST /api/requests per second at p99 < 200 ms, against raw table write + enqueue',
  async run() {
    const o = {
      maxConnections: envNumber('BENCH_INTAKE_MAX_CALLERS', 64),
      stepSeconds: envNumber('BENCH_INTAKE_STEP_S', 10),
      rawConcurrency: envNumber('BENCH_RAW_CONCURRENCY', 16),
      rawSeconds: envNumber('BENCH_RAW_S', 10),
    };
    const rg = 'bench-intake-rg';
    // One VM: intake reads its network path from ARM (a request that could never be applied is refused at once).
    let vm = '';
    const body = () => JSON.stringify({ vm, ports: [22], duration: 'PT1H', sourcePrefix: BENCH_SOURCE });
    // Every step gets a fresh sandbox: Azurite's queue service sweeps its message store every 60 s, and after a
    // few thousand messages the sweep holds it for seconds, which would be measured as our latency. The
    // reconciler runs at start-up only: it walks every open request, and this run leaves thousands pending
    // approval, as no real system would.
    const fresh = async <T>(work: (host: ChildHost, sandbox: Sandbox) => Promise<T>): Promise<T> => {
      // ARM's request limits off: a submission reads the VM's path, and intake is measured, not ARM.
      const sandbox = await startBenchSandbox(
        { arm: { throttling: false }, settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 * * *' } },
        [estatePolicy(rg, 'manual')],
      );
      [{ id: vm }] = addEstate(sandbox.arm, { resourceGroup: rg, subnets: 1, vmsPerSubnet: 1 }) as [BenchVm];
      const host = await ChildHost.forSandbox(sandbox, { logFile: hostLogFile('intake') });
      try {
        return await work(host, sandbox);
      } finally {
        await host.stop();
        await sandbox.stop();
      }
    };
    const shoot = (host: ChildHost, connections: number, seconds: number) =>
      autocannon({
        url: `${host.baseUrl}/api/requests`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-jit-dev-user': 'bench@example.com' },
        body: body(),
        connections,
        duration: seconds,
        timeout: 10,
      });

    const steps: Array<Record<string, string | number>> = [];
    let sustained: { connections: number; achieved: number; p50: number; p99: number } | undefined;
    let peakRssInKiB = 0;
    const raw = await fresh((_, sandbox) =>
      rawStorageRate(sandbox.settings.AzureWebJobsStorage!, o.rawConcurrency, o.rawSeconds),
    );
    // Closed loop: `c` callers each sending their next request when the last is answered; more callers, more
    // throughput, until the latency limit. (autocannon's fixed-rate mode fires each second's requests in one
    // burst and back-fills latencies at 1 ms intervals, which measures autocannon.) A step that misses the
    // limit is run once more: at these sample sizes one pause of a shared machine decides p99.
    for (let c = 1; c <= o.maxConnections; c *= 2) {
      let ok = false;
      for (let attempt = 1; attempt <= 2 && !ok; attempt++) {
        const r = await fresh(async (host) => {
          await shoot(host, c, 3); // warm-up: JIT compilation, connection pools
          const result = await shoot(host, c, o.stepSeconds);
          peakRssInKiB = Math.max(peakRssInKiB, (await host.stats()).maxRssInKiB);
          return result;
        });
        // Refusals are a broken setup, not a slow host: say so rather than report a rate of zero.
        if (r.non2xx > r.requests.total / 2)
          throw new Error(
            `the host refused ${r.non2xx} of ${r.requests.total} POSTs; see ${hostLogFile('intake')}`,
          );
        const achieved = r.requests.total / r.duration;
        ok = r.latency.p99 < P99_LIMIT_IN_MS && r.non2xx === 0 && r.errors === 0 && r.timeouts === 0;
        steps.push({
          callers: c,
          'per second': Math.round(achieved),
          p50: r.latency.p50,
          p99: r.latency.p99,
          max: r.latency.max,
          non2xx: r.non2xx,
          errors: r.errors + r.timeouts,
          within: ok ? 'yes' : 'no',
        });
        if (ok && achieved > (sustained?.achieved ?? 0))
          sustained = { connections: c, achieved, p50: r.latency.p50, p99: r.latency.p99 };
      }
      if (!ok) break;
    }
    printTable(`Intake steps (closed loop, ${o.stepSeconds} s each; latency ms)`, steps);
    const figures = {
      conditions: o,
      steps,
      sustained,
      raw,
      ratioToRaw: sustained ? sustained.achieved / raw.opsPerSecond : 0,
      /** Most POSTs per second seen in any step, whatever the latency. */
      capacity: Math.max(...steps.map((x) => Number(x['per second']))),
      hostPeakRssInMiB: Math.round(peakRssInKiB / 1024),
    };
    printTable('Intake', [
      {
        what: `POST /api/requests, p99 < ${P99_LIMIT_IN_MS} ms (${sustained?.connections ?? 0} callers)`,
        'per second': sustained ? Math.round(sustained.achieved) : 0,
        p50: sustained ? ms(sustained.p50) : '',
        p99: sustained ? ms(sustained.p99) : '',
      },
      {
        what: `raw table write + enqueue (${o.rawConcurrency} at once)`,
        'per second': Math.round(raw.opsPerSecond),
        p50: ms(raw.p50),
        p99: ms(raw.p99),
      },
    ]);
    console.log(
      `  sustained / raw = ${ratio(figures.ratioToRaw)}; most POSTs/s in any step ${figures.capacity}; ` +
        `host peak RSS ${figures.hostPeakRssInMiB} MiB`,
    );
    return figures;
  },
};

/**
 * The storage work a request's intake cannot do without — one entity written, one message enqueued — with
 * `concurrency` loops for `seconds`, through the same SDKs against the same Azurite.
 */
async function rawStorageRate(
  connectionString: string,
  concurrency: number,
  seconds: number,
): Promise<{ opsPerSecond: number; p50: number; p99: number }> {
  const { TableClient } = await import('@azure/data-tables');
  const table = TableClient.fromConnectionString(connectionString, 'BenchRaw', {
    allowInsecureConnection: true,
  });
  await table.createTable();
  const queue = new QueueClient(connectionString, 'bench-raw');
  await queue.createIfNotExists();
  const latencies: number[] = [];
  const until = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < until) {
      const id = ulid();
      const t0 = performance.now();
      await table.createEntity({
        partitionKey: id,
        rowKey: 'request',
        requester: 'bench@example.com',
        status: 'submitted',
        createdAt: new Date().toISOString(),
      });
      await queue.sendMessage(JSON.stringify({ requestId: id }));
      latencies.push(performance.now() - t0);
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsedInS = (performance.now() - started) / 1000;
  // Leave nothing behind: Azurite keeps every queue's messages in one collection, and thousands of stale ones
  // slow the intake measured next.
  await queue.delete();
  await table.deleteTable();
  const s = summarize(latencies);
  return { opsPerSecond: latencies.length / elapsedInS, p50: s.p50, p99: s.p99 };
}
