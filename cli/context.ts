import type { Command } from 'commander';
import type * as Auth from './auth';
import { ApiClient } from './client';
import { configDir, readConfig, resolveSettings, SETTING_NAMES } from './settings';
import type { ConfigFile, OutputFormat, Resolved, SettingName } from './settings';

/** What `jit` reads and writes: its streams and environment, and a signal that ends a wait (Ctrl-C). */
export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Aborted when the person presses Ctrl-C. */
  signal?: AbortSignal;
}

/** The settings every command sees, from flags, the environment and the profile (cli/settings.ts). */
interface GlobalOptions {
  api: string;
  user?: string;
  roles?: string;
  scope?: string;
  /** Default subscription for VMs given as `<resource group>/<name>`. */
  subscription?: string;
  tenant?: string;
  output: OutputFormat;
}

/** What a command needs: its client, the settings, and writers (tests capture them). */
export interface CliContext extends CliIo {
  client: ApiClient;
  options: GlobalOptions;
  settings: Resolved;
  config: ConfigFile;
  version: string;
}

/** The global flags given on this command line (not defaults: flags win over everything else). */
function flagsOf(command: Command): Partial<Record<SettingName | 'profile', string>> {
  const all = command.optsWithGlobals<Record<string, unknown>>();
  const flags: Partial<Record<SettingName | 'profile', string>> = {};
  for (const name of [...SETTING_NAMES, 'profile'] as const) {
    const key = name === 'client-id' ? 'clientId' : name;
    if (typeof all[key] === 'string') flags[name] = all[key];
  }
  return flags;
}

export function contextFor(command: Command, io: CliIo, version: string): CliContext {
  const config = readConfig(io.env);
  const settings = resolveSettings(flagsOf(command), io.env, config);
  const v = settings.values;
  const options: GlobalOptions = {
    api: v.api,
    user: v.user,
    roles: v.roles,
    scope: v.scope,
    subscription: v.subscription,
    tenant: v.tenant,
    output: v.output,
  };
  return {
    ...io,
    client: new ApiClient({
      apiUrl: v.api,
      devUser: v.user,
      devRoles: v.roles,
      scope: v.scope,
      userAgent: `jit/${version}`,
      // A device code or browser sign-in is never started by another command: it says how to sign in again.
      ...(settings.auth === 'device-code' || settings.auth === 'browser'
        ? {
            signInHint: `sign in again: jit login ${settings.auth === 'browser' ? '--browser' : '--use-device-code'}`,
          }
        : {}),
      credential: async () =>
        loadAuth().credentialFor({
          method: settings.auth ?? 'azure-cli',
          tenant: v.tenant,
          clientId: v['client-id'],
          authorityHost: v['authority-host'],
          account: settings.account,
          cacheDir: configDir(io.env),
          prompt: io.err,
          interactive: false,
        }),
    }),
    options,
    settings,
    config,
    version,
  };
}

/** cli/auth.ts, loaded when a command signs in: @azure/identity takes a second to load, `jit --version` should not. */
export function loadAuth(): typeof Auth {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./auth') as typeof Auth;
}

/** Runs a command's action with its context, mapping what it returns or throws to the exit code. */
export type Runner = (cmd: Command, action: (ctx: CliContext) => Promise<number>) => Promise<void>;
