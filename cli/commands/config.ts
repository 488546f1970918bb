import { Argument } from 'commander';
import type { Command } from 'commander';
import type { CliContext, Runner } from '../context';
import { UsageError } from '../errors';
import { EXIT } from '../exitCodes';
import { SETTINGS, SETTING_NAMES, checkSetting, configPath, writeConfig } from '../settings';
import type { SettingName } from '../settings';

const settingArgument = () =>
  new Argument('<setting>', `one of ${SETTING_NAMES.join(', ')}`).choices(SETTING_NAMES);

/**
 * `jit config`: named profiles of settings, saved per user (cli/settings.ts). Every subcommand works on the
 * profile in use (`--profile`, JIT_PROFILE, or the one `jit config use` chose).
 */
export function register(program: Command, run: Runner): void {
  const config = program
    .command('config')
    .description('show and save settings (API URL, scope, subscription, …) in named profiles')
    .addHelpText(
      'after',
      `
Examples:
  jit config set api https://<app>.azurewebsites.net/api
  jit config set scope api://<app id>/.default
  jit --profile sandbox config set user alice@example.com    # a second profile
  jit config use sandbox                                    # make it the one in use
  jit config list                                           # every setting, and where it comes from

Settings: ${SETTING_NAMES.map((n) => `${n} (${SETTINGS[n].env})`).join(', ')}.
A flag beats its environment variable, which beats the profile.`,
    );

  config
    .command('set')
    .description('save a setting in the profile in use')
    .addArgument(settingArgument())
    .argument('<value>')
    .action(async (name: SettingName, value: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const profile = ctx.settings.profile;
        const file = ctx.config;
        file.profiles[profile] = { ...file.profiles[profile], [name]: checkSetting(name, value) };
        const path = writeConfig(ctx.env, file);
        if (ctx.options.output !== 'json') ctx.out(`Saved ${name} in profile ${profile} (${path}).`);
        return EXIT.ok;
      }),
    );

  config
    .command('unset')
    .description('remove a setting from the profile in use')
    .addArgument(settingArgument())
    .action(async (name: SettingName, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const profile = ctx.config.profiles[ctx.settings.profile];
        if (profile) delete profile[name];
        writeConfig(ctx.env, ctx.config);
        return EXIT.ok;
      }),
    );

  config
    .command('get')
    .description(
      'print the value a setting has now (from a flag, the environment, the profile or the default)',
    )
    .addArgument(settingArgument())
    .action(async (name: SettingName, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const value = ctx.settings.values[name];
        if (value === undefined) throw new UsageError(`${name} is not set`, `jit config set ${name} <value>`);
        ctx.out(value);
        return EXIT.ok;
      }),
    );

  config
    .command('list')
    .description('every setting in use, and where each comes from')
    .action(async (_opts: unknown, cmd: Command) => run(cmd, async (ctx) => list(ctx)));

  config
    .command('use')
    .description('make a profile the one in use from now on')
    .argument('<profile>')
    .action(async (name: string, _opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const file = ctx.config;
        file.currentProfile = name;
        file.profiles[name] ??= {};
        const path = writeConfig(ctx.env, file);
        ctx.out(`Using profile ${name} (${path}).`);
        return EXIT.ok;
      }),
    );
}

function list(ctx: CliContext): number {
  const { profile, values, sources } = ctx.settings;
  const profiles = Object.keys(ctx.config.profiles);
  if (ctx.options.output === 'json') {
    ctx.out(JSON.stringify({ profile, profiles, file: configPath(ctx.env), values, sources }, null, 2));
    return EXIT.ok;
  }
  ctx.out(`profile  ${profile}${profiles.length ? `  (saved: ${profiles.join(', ')})` : ''}`);
  ctx.out(`file     ${configPath(ctx.env)}`);
  for (const name of SETTING_NAMES) {
    const source = sources[name];
    const from =
      source === 'env' ? SETTINGS[name].env : source === 'flag' ? (SETTINGS[name].flag ?? 'flag') : source;
    ctx.out(`${name.padEnd(13)}${values[name] ?? '-'}${source ? `  (${from})` : ''}`);
  }
  if (ctx.settings.auth) ctx.out(`${'sign-in'.padEnd(13)}${ctx.settings.auth}  (jit login)`);
  return EXIT.ok;
}
