import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT, Sandbox } from '../../dev/sandbox';
import type { SandboxOptions } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import type { Policy } from '../../shared/domain/types';

/** One named benchmark: `npm run bench -- <name>` runs it alone. It prints its table and returns its figures. */
export interface Benchmark {
  name: string;
  /** One line for `npm run bench -- --list`. */
  summary: string;
  run(): Promise<Record<string, unknown>>;
}

/** A quiet sandbox whose host is started separately (in a child process, see childHost.ts). */
export async function startBenchSandbox(
  options: SandboxOptions = {},
  policies: Policy[] = [],
): Promise<Sandbox> {
  const sandbox = new Sandbox({
    quiet: true,
    startHost: false,
    ...options,
    settings: {
      // One caller sends everything in a benchmark: the per-caller limit is not what is measured.
      JIT_RATE_LIMIT_PER_MINUTE: '100000000',
      ...options.settings,
    },
  });
  await sandbox.start();
  for (const p of policies) await services().deps.policies.upsert(p);
  return sandbox;
}

/** Where a benchmark's host writes its warnings and errors: .sandbox/bench-<name>-host.log (git-ignored). */
export function hostLogFile(name: string): string {
  const dir = join(PROJECT_ROOT, '.sandbox');
  mkdirSync(dir, { recursive: true });
  return join(dir, `bench-${name}-host.log`);
}
