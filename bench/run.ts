/**
 * `npm run bench`: runs every benchmark below in order, prints each one's figures, and merges them into
 * bench/results.json (not committed: figures belong to the machine that made them).
 * Add a benchmark by exporting a `Bench` from a file here and listing it in BENCHES.
 * `npm run bench -- audit` runs only the named ones.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { auditBench } from './audit';

export interface Bench {
  name: string;
  /** Runs the benchmark, prints what a person reads, and returns the figures to keep. */
  run(): Promise<Record<string, unknown>>;
}

const BENCHES: Bench[] = [auditBench];

const RESULTS = join(__dirname, '..', '..', 'bench', 'results.json');

async function main(): Promise<void> {
  const only = process.argv.slice(2);
  const unknown = only.filter((n) => !BENCHES.some((b) => b.name === n));
  if (unknown.length) throw new Error(`no benchmark named ${unknown.join(', ')}`);
  const previous = existsSync(RESULTS)
    ? (JSON.parse(readFileSync(RESULTS, 'utf8')) as { benches?: Record<string, unknown> })
    : {};
  const benches: Record<string, unknown> = { ...previous.benches };
  for (const bench of BENCHES) {
    if (only.length && !only.includes(bench.name)) continue;
    console.log(`\n== ${bench.name} ==`);
    const started = Date.now();
    const figures = await bench.run();
    benches[bench.name] = {
      at: new Date().toISOString(),
      durationInSeconds: Math.round((Date.now() - started) / 1000),
      ...figures,
    };
  }
  writeFileSync(
    RESULTS,
    `${JSON.stringify({ node: process.version, cpus: cpus().length, benches }, null, 2)}\n`,
  );
  console.log(`\nwritten to bench/results.json`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
