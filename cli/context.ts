import type { Command } from 'commander';
import { ApiClient } from './client';

export type OutputFormat = 'text' | 'json' | 'table' | 'csv';

/** Global options every command sees. */
export interface GlobalOptions {
  api: string;
  user?: string;
  roles?: string;
  scope?: string;
  /** Default subscription for VMs given as `<resource group>/<name>`. */
  subscription?: string;
  output: OutputFormat;
}

/** What a command needs: its client, the output format, and a writer (tests capture it). */
export interface CliContext {
  client: ApiClient;
  options: GlobalOptions;
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
}

export function contextFor(
  command: Command,
  io: { out: (t: string) => void; err: (t: string) => void; env: NodeJS.ProcessEnv },
): CliContext {
  const options = command.optsWithGlobals<GlobalOptions>();
  return {
    client: new ApiClient({
      apiUrl: options.api,
      devUser: options.user,
      devRoles: options.roles,
      scope: options.scope,
    }),
    options,
    out: io.out,
    err: io.err,
    env: io.env,
  };
}

/** Runs a command's action with its context, mapping what it returns or throws to the exit code. */
export type Runner = (cmd: Command, action: (ctx: CliContext) => Promise<number>) => Promise<void>;
