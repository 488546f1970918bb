/**
 * Contention: N grants on VMs behind one NSG, submitted at once — how long until every rule is in place.
 * ARM runs one operation at a time per NSG, so the floor is N × the operation latency; the figure shows how far
 * above that floor one instance stays (its per-NSG queue, each write's extra reads, retries on conflicts).
 */
import { submitRequest } from './support/api';
import { hostLogFile, startBenchSandbox } from './support/benchmark';
import type { Benchmark } from './support/benchmark';
import { ChildHost } from './support/childHost';
import { envNumber, envString } from './support/env';
import { BENCH_SOURCE, addEstate, estatePolicy } from './support/estate';
import { RuleWatch } from './support/ruleWatch';
import { ms, ratio } from './support/stats';
import { printTable } from './support/table';

export const contention: Benchmark = {
  name: 'contention',
  summary: 'N grants on one NSG at once: time until all are applied, against N × ARM operation time',
  async run() {
    const operationLatencyInMs = envNumber('BENCH_ARM_OPERATION_MS', 500);
    const requestLatencyInMs = envNumber('BENCH_ARM_REQUEST_MS', 50);
    const sizes = envString('BENCH_CONTENTION_N', '10,25')
      .split(',')
      .map((s) => Number(s.trim()))
      .filter((n) => Number.isInteger(n) && n > 0);
    const groups = sizes.map((n, i) => ({ n, rg: `bench-cont${i}-rg` }));
    const warmRg = 'bench-contwarm-rg';
    // Time-compressed ARM (500 ms operations, 50 ms polls): its per-second request limits do not apply.
    const sandbox = await startBenchSandbox(
      { arm: { operationLatencyInMs, requestLatencyInMs, throttling: false } },
      [estatePolicy(warmRg), ...groups.map((g) => estatePolicy(g.rg))],
    );
    const host = await ChildHost.forSandbox(sandbox, {
      instrumentArm: true,
      logFile: hostLogFile('contention'),
    });
    const watch = new RuleWatch(sandbox.arm);
    const rows: Array<Record<string, string | number>> = [];
    const figures: Record<string, unknown> = {
      conditions: { operationLatencyInMs, requestLatencyInMs, sizes },
    };
    try {
      // Warm-up on a VM and NSGs of its own.
      const [warm] = addEstate(sandbox.arm, { resourceGroup: warmRg, subnets: 1, vmsPerSubnet: 1 });
      const w = await submitRequest(host.baseUrl, {
        vm: warm!.id,
        ports: [22],
        duration: 'PT1H',
        sourcePrefix: BENCH_SOURCE,
      });
      if (w.id) await watch.present(warm!.nsgIds, `jit-${w.id.toLowerCase()}`);

      for (const g of groups) {
        const vms = addEstate(sandbox.arm, {
          resourceGroup: g.rg,
          subnets: 1,
          vmsPerSubnet: g.n,
          nicNsg: false,
        });
        const logFrom = sandbox.arm.log.length;
        const started = Date.now();
        const submitted = await Promise.all(
          vms.map((vm) =>
            submitRequest(host.baseUrl, {
              vm: vm.id,
              ports: [22],
              duration: 'PT1H',
              sourcePrefix: BENCH_SOURCE,
            }),
          ),
        );
        const failed = submitted.filter((s) => s.status !== 202);
        if (failed.length) throw new Error(`${failed.length} POSTs failed: ${failed[0]?.detail}`);
        const applied = await Promise.all(
          submitted.map((s, k) => watch.present(vms[k]!.nsgIds, `jit-${s.id!.toLowerCase()}`)),
        );
        const allInMs = Math.max(...applied) - started;
        const firstInMs = Math.min(...applied) - started;
        const served = sandbox.arm.log.slice(logFrom);
        const conflicts = served.filter((l) => l.status === 409).length;
        const floor = g.n * operationLatencyInMs;
        rows.push({
          N: g.n,
          'first applied': ms(firstInMs),
          'all applied': ms(allInMs),
          'per grant': ms(allInMs / g.n),
          'floor N×op': floor,
          'all / floor': ratio(allInMs / floor),
          'ARM requests': served.length,
          '409s': conflicts,
        });
        figures[`n${g.n}`] = {
          firstInMs,
          allInMs,
          perGrantInMs: allInMs / g.n,
          floorInMs: floor,
          armRequests: served.length,
          conflicts,
        };
      }
    } finally {
      watch.stop();
      await host.stop();
      await sandbox.stop();
    }
    printTable(
      `Contention on one NSG (ms) — ARM operation ${operationLatencyInMs} ms, request ${requestLatencyInMs} ms`,
      rows,
    );
    return figures;
  },
};
