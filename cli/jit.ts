#!/usr/bin/env node
/**
 * `jit`: the command line for engineers and scripts. Every command talks to the HTTP API; `--output json` gives
 * machine-readable output, and exit codes are stable (cli/exitCodes.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { UsageError } from './args';
import { ApiError } from './client';
import { contextFor } from './context';
import type { CliContext } from './context';
import { EXIT, exitCodeForProblem } from './exitCodes';
import * as audit from './commands/audit';
import * as extend from './commands/extend';
import * as list from './commands/list';
import * as policy from './commands/policy';
import * as request from './commands/request';
import * as revoke from './commands/revoke';
import * as status from './commands/status';

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

/** Builds the program. Separate from `main` so tests run commands in-process and read what they print. */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('jit')
    .description('Just-in-time network access to Azure VMs')
    .addOption(
      new Option('--api <url>', 'API base URL').env('JIT_API_URL').default('http://127.0.0.1:7071/api'),
    )
    .addOption(new Option('--user <name>', 'sandbox only: act as this user').env('JIT_DEV_USER'))
    .addOption(
      new Option('--roles <roles>', 'sandbox only: act with these app roles, e.g. Jit.Admin').env(
        'JIT_DEV_ROLES',
      ),
    )
    .addOption(
      new Option('--scope <scope>', 'Azure: the API scope, e.g. api://<app id>/.default').env(
        'JIT_API_SCOPE',
      ),
    )
    .addOption(
      new Option('--subscription <id>', 'default subscription for VMs given as <resource group>/<name>').env(
        'JIT_SUBSCRIPTION_ID',
      ),
    )
    .addOption(
      new Option('-o, --output <format>', 'output format (json: one document on stdout, for scripts)')
        .choices(['text', 'json', 'table', 'csv'])
        .default('text'),
    )
    .addHelpText(
      'after',
      `
Examples:
  export JIT_API_URL=https://<app>.azurewebsites.net/api JIT_API_SCOPE=api://<app id>/.default
  export JIT_SUBSCRIPTION_ID=<subscription id>
  jit request demo-rg/demo-vm --port 22 --for 1h --wait     # waits, then prints the ssh line
  jit list --status active
  jit extend <id> --for 30m
  jit revoke <id>                                          # done early

Exit codes: 0 ok, 1 error (API unreachable, 5xx), 2 usage or invalid input, 3 not allowed or not found,
4 denied, 5 failed, 6 access already ended, 7 timed out waiting. See docs/cli.md.`,
    )
    .showHelpAfterError()
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });

  const run = async (cmd: Command, action: (ctx: CliContext) => Promise<number>) => {
    try {
      setExitCode(await action(contextFor(cmd, io)));
    } catch (err) {
      if (err instanceof ApiError) {
        io.err(`jit: ${err.message}`);
        setExitCode(err.status ? exitCodeForProblem(err.status, err.problem?.type) : EXIT.error);
        return;
      }
      if (err instanceof UsageError) {
        io.err(`jit: ${err.message}`);
        setExitCode(EXIT.usage);
        return;
      }
      io.err(`jit: ${(err as Error).message}`);
      setExitCode(EXIT.error);
    }
  };
  request.register(program, run);
  status.register(program, run);
  list.register(program, run);
  extend.register(program, run);
  revoke.register(program, run);
  policy.register(program, run);
  audit.register(program, run);
  return program;
}

/** Runs `jit` with arguments (without `node jit`), returning the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end "successfully"; everything else commander refuses is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    throw err;
  }
  return code;
}

if (require.main === module) {
  runCli(process.argv.slice(2), {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    env: process.env,
  }).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(EXIT.error);
    },
  );
}
