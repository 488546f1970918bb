#!/usr/bin/env node
/**
 * `jit`: the command line for engineers and scripts. Every command talks to the HTTP API; `--output json` gives
 * machine-readable output, and exit codes are stable (cli/exitCodes.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import tab from '@bomb.sh/tab/commander';
import { Command, CommanderError, Option } from 'commander';
import { contextFor } from './context';
import type { CliContext, CliIo } from './context';
import { CLI_DOCS, CliError, UsageError } from './errors';
import type { ProblemDocument } from './errors';
import { EXIT } from './exitCodes';
import { OUTPUT_FORMATS, SANDBOX_API } from './settings';
import * as audit from './commands/audit';
import * as config from './commands/config';
import * as extend from './commands/extend';
import * as list from './commands/list';
import * as login from './commands/login';
import * as policy from './commands/policy';
import * as request from './commands/request';
import * as revoke from './commands/revoke';
import * as status from './commands/status';

export type { CliIo } from './context';

/**
 * The CLI package's version. Compiled, this file sits at `dist/cli/jit.js` in the CLI package (whose
 * package.json is two levels up) or in the repository's build (where it is `cli/package.json`).
 */
export const VERSION: string = (() => {
  for (const candidate of [
    join(__dirname, '..', '..', 'package.json'),
    join(__dirname, '..', '..', 'cli', 'package.json'),
  ]) {
    if (!existsSync(candidate)) continue;
    const pkg = JSON.parse(readFileSync(candidate, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === '@azure-jit-access/cli' && pkg.version) return pkg.version;
  }
  return '0.0.0';
})();

/** Builds the program. Separate from `main` so tests run commands in-process and read what they print. */
export function buildProgram(io: CliIo, setExitCode: (code: number) => void): Command {
  const program = new Command('jit')
    .description('Just-in-time network access to Azure VMs')
    .version(VERSION, '-v, --version', 'print the version of jit')
    .option('--api <url>', `the API's base URL, ending in /api (env JIT_API_URL; default ${SANDBOX_API})`)
    .option('--scope <scope>', "Azure: the API's scope, api://<app id>/.default (env JIT_API_SCOPE)")
    .option(
      '--subscription <id>',
      'default subscription for VMs given as <resource group>/<name> (env JIT_SUBSCRIPTION_ID)',
    )
    .option('--tenant <id>', 'Azure: the Entra ID tenant to sign in to (env JIT_TENANT_ID)')
    .option('--user <name>', 'sandbox only: act as this user (env JIT_DEV_USER)')
    .option('--roles <roles>', 'sandbox only: act with these app roles, e.g. Jit.Admin (env JIT_DEV_ROLES)')
    .option('--profile <name>', 'use this saved profile (env JIT_PROFILE; see jit config)')
    .addOption(
      new Option(
        '-o, --output <format>',
        'output format; json: one document on stdout, errors as JSON on stderr (env JIT_OUTPUT)',
      ).choices(OUTPUT_FORMATS),
    )
    .addHelpText(
      'after',
      `
Examples:
  jit config set api https://<app>.azurewebsites.net/api
  jit config set scope api://<app id>/.default && jit login
  jit config set subscription <subscription id>
  jit request demo-rg/demo-vm --port 22 --for 1h --wait     # waits, then prints the ssh line
  jit list --status active
  jit revoke <id>                                          # done early

Settings come from flags, then JIT_* environment variables, then the profile (jit config list shows which).
Exit codes: 0 ok, 1 error (API unreachable, 5xx), 2 usage or invalid input, 3 not allowed or not found,
4 denied, 5 failed, 6 access already ended, 7 timed out waiting, 8 audit chain broken, 130 interrupted.
See ${CLI_DOCS}`,
    )
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s.trimEnd()),
      writeErr: (s) => io.err(s.trimEnd()),
      // Commander's own refusals are reported by runCli, one line and a hint, as every other failure.
      outputError: () => undefined,
    });

  const run = async (cmd: Command, action: (ctx: CliContext) => Promise<number>) => {
    let output = outputFormatIn(cmd.optsWithGlobals<{ output?: string }>().output, io.env);
    try {
      const ctx = contextFor(cmd, io, VERSION);
      output = ctx.options.output;
      setExitCode(await action(ctx));
    } catch (err) {
      setExitCode(report(err, output, io));
    }
  };
  request.register(program, run);
  status.register(program, run);
  list.register(program, run);
  extend.register(program, run);
  revoke.register(program, run);
  policy.register(program, run);
  audit.register(program, run);
  login.register(program, run);
  config.register(program, run);
  // `jit completion bash|zsh|fish|powershell` prints the script; the shell then asks `jit complete -- <words>`.
  tab(program, { completionCommandName: 'completion' });
  return program;
}

/** The output format before the settings are read: the flag, else JIT_OUTPUT, else text. */
function outputFormatIn(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  return flag ?? env.JIT_OUTPUT ?? 'text';
}

/** Prints a failure — `jit: …` and `hint: …` lines, or the problem document with `-o json` — and says the code. */
export function report(err: unknown, output: string, io: CliIo): number {
  const failure =
    err instanceof CliError
      ? err
      : new CliError((err as Error)?.message ?? String(err), EXIT.error, undefined, {
          type: `${CLI_DOCS}#exit-codes`,
          title: 'Unexpected error',
          detail: (err as Error)?.message ?? String(err),
        } satisfies ProblemDocument);
  if (output === 'json') {
    io.err(JSON.stringify(failure.problem()));
  } else {
    for (const line of failure.message.split('\n')) io.err(`jit: ${line}`);
    if (failure.hint) io.err(`hint: ${failure.hint}`);
  }
  return failure.exitCode;
}

/** The command a command line names (`policy apply`), for the hint after a usage error. */
function commandFor(program: Command, argv: string[]): Command {
  let current = program;
  for (const word of argv) {
    if (word === '--') break;
    const sub = current.commands.find((c) => c.name() === word || c.aliases().includes(word));
    if (sub) current = sub;
  }
  return current;
}

function pathOf(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/**
 * Commander's refusal as one line and a hint: `jit: --for: "1mo" is not a duration: write e.g. …` and the
 * command's usage, instead of pages of help.
 */
function usageError(err: CommanderError, command: Command): UsageError {
  const [first = '', ...rest] = err.message.replace(/^error: /, '').split('\n');
  const invalid = /^option '(\S+)[^']*' argument '(.*)' is invalid\. ?(.*)$/.exec(first);
  const message = invalid ? `${invalid[1]}: "${invalid[2]}" ${invalid[3]}` : first;
  const path = pathOf(command);
  const suggestion = rest.join(' ').trim();
  return new UsageError(
    message,
    `${suggestion ? `${suggestion} ` : ''}usage: ${path} ${command.usage()} (see ${path} --help)`,
  );
}

/** Runs `jit` with arguments (without `node jit`), returning the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(io, (c) => (code = c));
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (!(err instanceof CommanderError)) throw err;
    // --help and --version end "successfully"; everything else commander refuses is a usage error.
    if (err.exitCode === 0) return EXIT.ok;
    const output = argv.some((a, i) => /^(-o|--output)$/.test(a) && argv[i + 1] === 'json')
      ? 'json'
      : outputFormatIn(argv.find((a) => /^(--output=|-o)json$/.test(a)) && 'json', io.env);
    return report(usageError(err, commandFor(program, argv)), output, io);
  }
  return code;
}

if (require.main === module) {
  const interrupt = new AbortController();
  process.once('SIGINT', () => {
    // A wait says at once how to cancel what it waited for (cli/wait.ts); then jit stops, whatever it was doing.
    interrupt.abort();
    setTimeout(() => process.exit(EXIT.interrupted), 200).unref();
  });
  runCli(process.argv.slice(2), {
    out: (t) => console.log(t),
    err: (t) => console.error(t),
    env: process.env,
    signal: interrupt.signal,
  }).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err);
      process.exit(EXIT.error);
    },
  );
}
