#!/usr/bin/env node
/**
 * `jit`: the command line for engineers and scripts. Every command talks to the HTTP API; `--output json` gives
 * machine-readable output, and exit codes are stable (cli/exitCodes.ts).
 */
import { Command, CommanderError, Option } from 'commander';
import { ApiError } from './client';
import { contextFor } from './context';
import type { CliContext } from './context';
import { EXIT, exitCodeForStatus } from './exitCodes';
import * as audit from './commands/audit';
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
      new Option('--roles <roles>', 'sandbox only: act with these app roles, e.g. Jit.Auditor').env(
        'JIT_DEV_ROLES',
      ),
    )
    .addOption(
      new Option('--scope <scope>', 'Azure: the API scope, e.g. api://<app id>/.default').env(
        'JIT_API_SCOPE',
      ),
    )
    .addOption(
      new Option('-o, --output <format>', 'output format')
        .choices(['text', 'json', 'table', 'csv'])
        .default('text'),
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
        setExitCode(err.status ? exitCodeForStatus(err.status) : EXIT.error);
        return;
      }
      io.err(`jit: ${(err as Error).message}`);
      setExitCode(EXIT.error);
    }
  };
  status.register(program, run);
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
