/** Running `jit` in-process as a test: what it prints on each stream, its exit code, and a config of its own. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../cli/jit';

export interface JitRun {
  code: number;
  out: string;
  err: string;
}

/** An environment whose config folder is new and empty, so nobody's ~/.config/jit changes what a test sees. */
export function cliEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { XDG_CONFIG_HOME: mkdtempSync(join(tmpdir(), 'jit-config-')), USER: 'azureuser', ...extra };
}

export async function runJit(
  args: string[],
  env: NodeJS.ProcessEnv = cliEnv(),
  signal?: AbortSignal,
): Promise<JitRun> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runCli(args, { out: (t) => out.push(t), err: (t) => err.push(t), env, signal });
  return { code, out: out.join('\n'), err: err.join('\n') };
}
