import { rmSync } from 'node:fs';
import type { Command } from 'commander';
import type { TokenIdentity } from '../auth';
import { isLoopback } from '../client';
import { loadAuth } from '../context';
import type { CliContext, Runner } from '../context';
import { SignInError, UsageError } from '../errors';
import { EXIT } from '../exitCodes';
import { configDir, tokenCacheFiles, writeConfig } from '../settings';
import type { AuthMethod } from '../settings';

interface LoginOptions {
  useDeviceCode?: boolean;
  browser?: boolean;
  clientId?: string;
}

/** `jit login`, `jit logout`, `jit whoami`: who `jit` calls the API as. */
export function register(program: Command, run: Runner): void {
  program
    .command('login')
    .description("sign in for the API's scope: with the Azure CLI (az login), a device code, or the browser")
    .option('--use-device-code', 'sign in with a code on another device (tokens kept for later commands)')
    .option('--browser', 'sign in in the browser (tokens kept for later commands)')
    .option('--client-id <id>', 'device code or browser: the public client application to sign in with')
    .addHelpText(
      'after',
      `
Examples:
  jit config set scope api://<app id>/.default
  az login && jit login          # use the Azure CLI's sign-in (the default)
  jit login --use-device-code    # no Azure CLI, or a machine without a browser

The method is saved in the profile; later commands sign in the same way without asking.
The sandbox needs no sign-in: jit config set user alice@example.com`,
    )
    .action(async (opts: LoginOptions, cmd: Command) => run(cmd, async (ctx) => login(ctx, opts)));

  program
    .command('logout')
    .description(
      'forget the sign-in method and the tokens jit keeps (the Azure CLI keeps its own: az logout)',
    )
    .action(async (_opts: unknown, cmd: Command) =>
      run(cmd, async (ctx) => {
        const profile = ctx.config.profiles[ctx.settings.profile];
        if (profile) {
          delete profile.auth;
          delete profile.account;
          writeConfig(ctx.env, ctx.config);
        }
        for (const file of tokenCacheFiles(configDir(ctx.env))) rmSync(file, { force: true });
        ctx.out(`Signed out of profile ${ctx.settings.profile}.`);
        return EXIT.ok;
      }),
    );

  program
    .command('whoami')
    .description('who jit calls the API as, and whether the API accepts it')
    .action(async (_opts: unknown, cmd: Command) => run(cmd, async (ctx) => whoami(ctx)));
}

async function login(ctx: CliContext, opts: LoginOptions): Promise<number> {
  if (opts.useDeviceCode && opts.browser)
    throw new UsageError('choose one of --use-device-code and --browser');
  const scope = ctx.options.scope;
  if (!scope) {
    if (isLoopback(ctx.options.api)) {
      throw new UsageError(
        'the sandbox needs no sign-in',
        'act as someone: jit config set user alice@example.com (or --user, JIT_DEV_USER)',
      );
    }
    throw new UsageError(
      "the API's scope is not set, so there is nothing to sign in for",
      'jit config set scope api://<app id>/.default',
    );
  }
  const method: AuthMethod = opts.useDeviceCode ? 'device-code' : opts.browser ? 'browser' : 'azure-cli';
  const { authenticate, credentialFor, identityOf } = loadAuth();
  const credential = credentialFor({
    method,
    tenant: ctx.options.tenant,
    clientId: opts.clientId ?? ctx.settings.values['client-id'],
    authorityHost: ctx.settings.values['authority-host'],
    cacheDir: configDir(ctx.env),
    prompt: ctx.err,
    interactive: true,
  });
  let account: string | undefined;
  let token;
  try {
    if (method !== 'azure-cli' && credential.authenticate) {
      account = await authenticate(credential, scope);
    }
    token = await credential.getToken(scope);
  } catch (err) {
    throw new SignInError(
      `sign-in failed: ${(err as Error).message.split('\n')[0]}`,
      method === 'azure-cli'
        ? 'sign in to the Azure CLI first (az login), or use jit login --use-device-code'
        : undefined,
    );
  }
  if (!token) throw new SignInError(`sign-in gave no token for ${scope}`);
  const file = ctx.config;
  const profile = { ...file.profiles[ctx.settings.profile] };
  profile.auth = method;
  if (account) profile.account = account;
  else delete profile.account;
  if (opts.clientId) profile['client-id'] = opts.clientId;
  file.profiles[ctx.settings.profile] = profile;
  writeConfig(ctx.env, file);
  const who = identityOf(token.token);
  ctx.out(
    `Signed in as ${who.user ?? who.objectId ?? 'an unnamed principal'} (${method}) for ${ctx.options.api}, profile ${ctx.settings.profile}.`,
  );
  return EXIT.ok;
}

interface WhoAmI {
  profile: string;
  api: string;
  via: 'sandbox' | AuthMethod;
  user?: string;
  roles: string[];
  identity?: TokenIdentity;
  /** Whether the API took the identity (a read of one's own requests succeeded). */
  accepted: boolean;
}

async function whoami(ctx: CliContext): Promise<number> {
  const o = ctx.options;
  const result: WhoAmI = o.user
    ? {
        profile: ctx.settings.profile,
        api: o.api,
        via: 'sandbox',
        user: o.user,
        roles: (o.roles ?? '').split(',').filter(Boolean),
        accepted: false,
      }
    : await (async () => {
        const headers = await ctx.client.identityHeaders();
        const { identityOf } = loadAuth();
        const identity = identityOf(headers.authorization?.replace(/^Bearer /, '') ?? '');
        return {
          profile: ctx.settings.profile,
          api: o.api,
          via: ctx.settings.auth ?? 'azure-cli',
          user: identity.user ?? identity.objectId,
          roles: identity.roles,
          identity,
          accepted: false,
        };
      })();
  // The same read a person would make first: it proves the API takes this identity, and costs nothing.
  await ctx.client.call('GET', 'requests?limit=1');
  result.accepted = true;
  if (o.output === 'json') {
    ctx.out(JSON.stringify(result, null, 2));
    return EXIT.ok;
  }
  ctx.out(`${result.user ?? '(unnamed)'}${result.identity?.name ? ` (${result.identity.name})` : ''}`);
  ctx.out(
    `  via      ${result.via === 'sandbox' ? 'the sandbox header (x-jit-dev-user)' : result.via}` +
      `${result.identity?.tenant ? `, tenant ${result.identity.tenant}` : ''}`,
  );
  ctx.out(`  roles    ${result.roles.length ? result.roles.join(', ') : '(none: a requester)'}`);
  ctx.out(`  api      ${result.api} (accepts it)`);
  ctx.out(`  profile  ${result.profile}`);
  return EXIT.ok;
}
