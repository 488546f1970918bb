/**
 * `npm run bench [-- name ...]`: runs the named benchmark modules (all when none is named) one after another,
 * each on its own fresh sandbox, prints their tables, and writes every figure with the machine it was measured
 * on to bench/results.json (git-ignored). `npm run bench -- --list` lists them.
 *
 * Figures from a shared 2-core machine are noisy: compare runs made under the same conditions, and read the
 * ratios (ours against the same machine's raw storage or ARM time) before the absolute numbers.
 */
import { writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../dev/sandbox';
import type { Benchmark } from './support/benchmark';
import { describeMachine } from './support/stats';
import { latency, latencyAzure } from './latency';
import { intake } from './intake';
import { contention } from './contention';
import { auditBench } from './audit';
import { reconcileBench } from './reconcile';

/** Every benchmark, in the order a full run takes them. Add a module here to make it runnable. */
const BENCHMARKS: Benchmark[] = [latency, latencyAzure, intake, contention, auditBench, reconcileBench];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const b of BENCHMARKS) console.log(`${b.name.padEnd(12)} ${b.summary}`);
    return;
  }
  const unknown = args.filter((a) => !BENCHMARKS.some((b) => b.name === a));
  if (unknown.length) throw new Error(`unknown benchmark(s): ${unknown.join(', ')} (see --list)`);
  const chosen = args.length ? BENCHMARKS.filter((b) => args.includes(b.name)) : BENCHMARKS;

  const results: Record<string, unknown> = {};
  const out = {
    machine: describeMachine(),
    startedAt: new Date().toISOString(),
    results,
    loadAverageAtEnd: [] as number[],
  };
  console.log(`Machine: ${JSON.stringify(out.machine)}`);
  for (const b of chosen) {
    console.log(`\n== ${b.name}: ${b.summary}`);
    const started = Date.now();
    results[b.name] = await b.run();
    console.log(
      `  (${Math.round((Date.now() - started) / 1000)} s, load average ${loadavg()[0]?.toFixed(2)})`,
    );
  }
  out.loadAverageAtEnd = loadavg().map((l) => Math.round(l * 100) / 100);
  const file = join(PROJECT_ROOT, 'bench', 'results.json');
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
  console.log(`\nFigures written to ${file}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
