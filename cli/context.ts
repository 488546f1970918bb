import type { Command } from 'commander';
import { ApiClient } from './client';

export type OutputFormat = 'text' | 'json' | 'table' | 'csv';

/** Global options every command sees. */
export interface GlobalOptions {
  api: string;
  user?: string;
  roles?: string;
  scope?: string;
  output: OutputFormat;
}

/** What a command needs: its client, the output format, and a writer (tests capture it). */
export interface CliContext {
  client: ApiClient;
  options: GlobalOptions;
  out: (text: string) => void;
  err: (text: string) => void;
}

export function contextFor(
  command: Command,
  io: { out: (t: string) => void; err: (t: string) => void },
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
  };
}
