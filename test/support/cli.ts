/** Running `jit` in-process as a test: what it prints on each stream, its exit code, and a config of its own. */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../cli/jit';
import { API_APP, CLI_APP, DEMO_TENANT_ID } from '../../dev/auth/directory';
import type { Sandbox } from '../../dev/sandbox';

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

/**
 * The profile a person sets up once for a deployment whose sign-in is not Entra ID's public cloud (docs/cli.md),
 * pointed at the sandbox: its API, the API's scope, the demo tenant and CLI app, and the sandbox provider.
 */
export function sandboxSignInProfile(sandbox: Sandbox): Array<[string, string]> {
  return [
    ['api', `${sandbox.baseUrl}/api`],
    ['scope', `api://${API_APP.clientId}/.default`],
    ['tenant', DEMO_TENANT_ID],
    ['client-id', CLI_APP.clientId],
    ['authority-host', sandbox.identity.provider!.authorityHost],
  ];
}
