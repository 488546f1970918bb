/**
 * Intake: how many `POST /api/requests` per second one local host sustains with p99 latency under 200 ms,
 * beside the raw rate of the storage work underneath (one table write plus one enqueue) on the same machine.
 *
 * The policy asks for approval, so each accepted request also runs evaluateRequest in the same host (one more
 * hop of table work) but no ARM: the figure is the instance's intake, not the network's. autocannon sends at
 * a fixed rate (`overallRate`, latencies corrected for coordinated omission), stepping up until p99 passes
 * 200 ms or the rate is no longer met. The host runs in a child process; autocannon and the raw baseline run
 * here; Azurite is its own process — all on the same cores.
 */
import { performance } from 'node:perf_hooks';
import autocannon from 'autocannon';
import { QueueClient } from '@azure/storage-queue';
import { ulid } from 'ulid';
import { DEMO } from '../dev/arm/emulator';
import { startBenchSandbox } from './support/benchmark';
import type { Benchmark } from './support/benchmark';
import { ChildHost } from './support/childHost';
import { envNumber } from './support/env';
import { BENCH_SOURCE, estatePolicy } from './support/estate';
import { ms, ratio, summarize } from './support/stats';
import { printTable } from './support/table';

const P99_LIMIT_IN_MS = 200;

export const intake: Benchmark = {
  name: 'intake',
  summary: 'POST /api/requests per second at p99 < 200 ms, against raw table write + enqueue',
  async run() {
    const o = {
      connections: envNumber('BENCH_INTAKE_CONNECTIONS', 50),
      stepSeconds: envNumber('BENCH_INTAKE_STEP_S', 10),
      firstRate: envNumber('BENCH_INTAKE_FIRST_RATE', 25),
      growth: envNumber('BENCH_INTAKE_GROWTH', 1.3),
      rawConcurrency: envNumber('BENCH_RAW_CONCURRENCY', 16),
      rawSeconds: envNumber('BENCH_RAW_S', 10),
    };
    const rg = 'bench-intake-rg';
    const sandbox = await startBenchSandbox({}, [estatePolicy(rg, 'manual')]);
    const host = await ChildHost.forSandbox(sandbox);
    const vm = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute/virtualMachines/intake-vm`;
    const body = JSON.stringify({ vm, ports: [22], duration: 'PT1H', sourcePrefix: BENCH_SOURCE });
    const shoot = (rate: number, seconds: number) =>
      autocannon({
        url: `${host.baseUrl}/api/requests`,
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-jit-dev-user': 'bench@example.com' },
        body,
        connections: o.connections,
        overallRate: rate,
        duration: seconds,
        timeout: 10,
      });

    const steps: Array<Record<string, string | number>> = [];
    let sustained: { rate: number; achieved: number; p50: number; p99: number } | undefined;
    let raw: { opsPerSecond: number; p50: number; p99: number };
    let hostStats;
    try {
      // The raw baseline first, on an idle machine, as the intake is measured.
      raw = await rawStorageRate(sandbox.settings.AzureWebJobsStorage!, o.rawConcurrency, o.rawSeconds);
      await shoot(20, 3); // warm-up: JIT compilation, connection pools
      for (let rate = o.firstRate; ; rate = Math.round(rate * o.growth)) {
        const r = await shoot(rate, o.stepSeconds);
        const achieved = r.requests.total / r.duration;
        const ok =
          r.latency.p99 < P99_LIMIT_IN_MS &&
          r.non2xx === 0 &&
          r.errors === 0 &&
          r.timeouts === 0 &&
          achieved >= 0.95 * rate;
        steps.push({
          'target/s': rate,
          'achieved/s': Math.round(achieved),
          p50: r.latency.p50,
          p99: r.latency.p99,
          max: r.latency.max,
          non2xx: r.non2xx,
          errors: r.errors + r.timeouts,
          within: ok ? 'yes' : 'no',
        });
        if (!ok) break;
        sustained = { rate, achieved, p50: r.latency.p50, p99: r.latency.p99 };
        if (rate > 5000) break;
      }
      hostStats = await host.stats();
    } finally {
      await host.stop();
      await sandbox.stop();
    }
    printTable(`Intake steps (${o.connections} connections, ${o.stepSeconds} s each; latency ms)`, steps);
    const figures = {
      conditions: o,
      steps,
      sustained,
      raw,
      ratioToRaw: sustained ? sustained.achieved / raw.opsPerSecond : 0,
      hostPeakRssInMiB: Math.round(hostStats.maxRssInKiB / 1024),
      hostCpuInS: Math.round(hostStats.cpuInMs / 100) / 10,
    };
    printTable('Intake', [
      {
        what: `POST /api/requests, p99 < ${P99_LIMIT_IN_MS} ms`,
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
      `  intake / raw = ${ratio(figures.ratioToRaw)}; host peak RSS ${figures.hostPeakRssInMiB} MiB`,
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
  const s = summarize(latencies);
  return { opsPerSecond: latencies.length / ((performance.now() - started) / 1000), p50: s.p50, p99: s.p99 };
}
