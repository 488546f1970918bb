/**
 * What `jit` is pointed at and how it signs in, like `gh` and `az` keep it: named profiles in one file per user
 * (`$XDG_CONFIG_HOME/jit/config.json`, by default `~/.config/jit/config.json`; `%APPDATA%\jit\config.json` on
 * Windows), each value overridden by an environment variable, and that by a flag.
 */
import { chmodSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { UsageError } from './errors';

/** The sandbox's API, where `npm start` serves it: the default when nothing else is set. */
export const SANDBOX_API = 'http://127.0.0.1:7071/api';

export const OUTPUT_FORMATS = ['text', 'json', 'table', 'csv'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

const AUTH_METHODS = ['azure-cli', 'device-code', 'browser'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** Every setting a profile holds, the flag and environment variable that override it, and what it means. */
export const SETTINGS = {
  api: {
    flag: '--api',
    env: 'JIT_API_URL',
    help: `the API's base URL, ending in /api (default ${SANDBOX_API})`,
  },
  scope: { flag: '--scope', env: 'JIT_API_SCOPE', help: "Azure: the API's scope, api://<app id>/.default" },
  subscription: {
    flag: '--subscription',
    env: 'JIT_SUBSCRIPTION_ID',
    help: 'default subscription, so a VM can be named <resource group>/<name>',
  },
  tenant: { flag: '--tenant', env: 'JIT_TENANT_ID', help: 'Azure: the Entra ID tenant to sign in to' },
  'client-id': {
    flag: undefined,
    env: 'JIT_CLIENT_ID',
    help: 'Azure, device code or browser sign-in: the public client application to sign in with',
  },
  'authority-host': {
    flag: undefined,
    env: 'JIT_AUTHORITY_HOST',
    help: 'device code or browser sign-in: where to sign in (default https://login.microsoftonline.com)',
  },
  user: { flag: '--user', env: 'JIT_DEV_USER', help: 'sandbox only: the user to act as' },
  roles: {
    flag: '--roles',
    env: 'JIT_DEV_ROLES',
    help: 'sandbox only: app roles to act with, e.g. Jit.Admin',
  },
  output: { flag: '--output', env: 'JIT_OUTPUT', help: 'text (default), json, table or csv' },
} as const;

export type SettingName = keyof typeof SETTINGS;
export const SETTING_NAMES = Object.keys(SETTINGS) as SettingName[];

const profileSchema = z.strictObject({
  api: z.url().optional(),
  scope: z.string().optional(),
  subscription: z.guid().optional(),
  tenant: z.string().optional(),
  'client-id': z.guid().optional(),
  'authority-host': z.url({ protocol: /^https$/ }).optional(),
  user: z.string().optional(),
  roles: z.string().optional(),
  output: z.enum(OUTPUT_FORMATS).optional(),
  /** How `jit login` signed in; absent means the Azure CLI. */
  auth: z.enum(AUTH_METHODS).optional(),
  /** The account a device code or browser sign-in chose (@azure/identity's AuthenticationRecord): no secret. */
  account: z.string().optional(),
});

const fileSchema = z.strictObject({
  currentProfile: z.string().optional(),
  profiles: z.record(z.string(), profileSchema).default({}),
});
export type ConfigFile = z.infer<typeof fileSchema>;

/** The folder `jit` keeps its configuration (and token cache) in. */
export function configDir(env: NodeJS.ProcessEnv): string {
  if (env.XDG_CONFIG_HOME) return join(env.XDG_CONFIG_HOME, 'jit');
  if (process.platform === 'win32' && env.APPDATA) return join(env.APPDATA, 'jit');
  return join(env.HOME || homedir(), '.config', 'jit');
}

export function configPath(env: NodeJS.ProcessEnv): string {
  return join(configDir(env), 'config.json');
}

/** Where device code and browser sign-ins keep the tokens of one MSAL cache (`name`, as @azure/identity asks). */
export function tokenCachePath(dir: string, name: string): string {
  return join(dir, `token-cache.${name}.json`);
}

/** Every token cache file in `dir`, whatever caches @azure/identity asked for: what `jit logout` deletes. */
export function tokenCacheFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => /^token-cache\..+\.json$/.test(n)).map((n) => join(dir, n));
}

/** Checks one value as a profile would hold it; throws a UsageError naming the setting. */
export function checkSetting(name: SettingName, value: string): string {
  const r = profileSchema.shape[name].safeParse(value);
  if (!r.success) {
    const want =
      name === 'output'
        ? OUTPUT_FORMATS.join(', ')
        : name === 'api'
          ? 'a URL such as https://<app>.azurewebsites.net/api'
          : name === 'authority-host'
            ? 'an https URL such as https://login.microsoftonline.us'
            : 'a GUID';
    throw new UsageError(`${name} "${value}" is not valid: it must be ${want}`);
  }
  return value;
}

export function readConfig(env: NodeJS.ProcessEnv): ConfigFile {
  const path = configPath(env);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { profiles: {} };
    throw err;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`${path} is not JSON (${(err as Error).message})`, 'fix or delete it');
  }
  const r = fileSchema.safeParse(parsed);
  if (!r.success) {
    const first = r.error.issues[0];
    throw new UsageError(
      `${path}: ${first?.path.join('.') || '(file)'}: ${first?.message ?? 'not valid'}`,
      'fix it, or set the value again with jit config set',
    );
  }
  return r.data;
}

/** Writes the file whole (a crash leaves the old or the new one), readable by its owner only. */
export function writeConfig(env: NodeJS.ProcessEnv, config: ConfigFile): string {
  const path = configPath(env);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const temp = `${path}.${process.pid}.tmp`;
  writeFileSync(temp, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
  renameSync(temp, path);
  chmodSync(path, 0o600);
  return path;
}

/** The profile in use: `--profile`, else JIT_PROFILE, else the one `jit config use` chose, else `default`. */
function profileName(flag: string | undefined, env: NodeJS.ProcessEnv, config: ConfigFile): string {
  return flag ?? (env.JIT_PROFILE || undefined) ?? config.currentProfile ?? 'default';
}

/** Where a value came from, as `jit config list` says it. */
type Source = 'flag' | 'env' | 'profile' | 'default';

export interface Resolved {
  profile: string;
  values: Partial<Record<SettingName, string>> & { api: string; output: OutputFormat };
  sources: Partial<Record<SettingName, Source>>;
  auth?: AuthMethod;
  account?: string;
}

/**
 * Each setting from the first that has it: the flag, its environment variable, the profile, the default. Values
 * from the environment are checked like those saved in a profile, so a typo there is named, not obeyed.
 */
export function resolveSettings(
  flags: Partial<Record<SettingName | 'profile', string>>,
  env: NodeJS.ProcessEnv,
  config: ConfigFile,
): Resolved {
  const profile = profileName(flags.profile, env, config);
  const saved = config.profiles[profile] ?? {};
  const values: Partial<Record<SettingName, string>> = {};
  const sources: Partial<Record<SettingName, Source>> = {};
  for (const name of SETTING_NAMES) {
    const fromEnv = env[SETTINGS[name].env];
    if (flags[name] !== undefined) {
      values[name] = checkSetting(name, flags[name]);
      sources[name] = 'flag';
    } else if (fromEnv) {
      values[name] = checkSetting(name, fromEnv);
      sources[name] = 'env';
    } else if (saved[name] !== undefined) {
      values[name] = saved[name];
      sources[name] = 'profile';
    }
  }
  if (values.api === undefined) {
    values.api = SANDBOX_API;
    sources.api = 'default';
  }
  if (values.output === undefined) {
    values.output = 'text';
    sources.output = 'default';
  }
  return {
    profile,
    values: values as Resolved['values'],
    sources,
    auth: saved.auth,
    account: saved.account,
  };
}
