/**
 * `jit login --use-device-code` as a person does it against a deployment, with the sandbox's OpenID Connect provider
 * standing in for Entra ID and App Service Authentication in front of the app (`easyauth`): the real `jit`, in a
 * process of its own as a shell runs it, signs in through @azure/identity and MSAL; the person's side (the page
 * the device code names, the code, the sign-in form) is done with plain HTTP requests. The CLI then keeps the
 * account in its profile and its tokens in its cache, and later commands call the API as that person without
 * asking again. Without a sign-in, a command says so, with the hint docs/cli.md documents, and exits 2.
 *
 * The process trusts the provider's certificate the way a person's shell would trust a private CA:
 * NODE_EXTRA_CA_CERTS.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO } from '../../dev/arm/emulator';
import { DEMO_TENANT_ID, findDemoUser } from '../../dev/auth/directory';
import { completeDeviceCode } from '../../dev/auth/signIn';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { EXIT } from '../../cli/exitCodes';
import { rulesInAll } from '../support/observe';
import { sandboxSignInProfile } from '../support/cli';
import { startSandbox } from '../support/sandbox';

const JIT = join(PROJECT_ROOT, 'dist', 'cli', 'jit.js');
const ALICE = findDemoUser('alice@example.com')!;

interface Run {
  code: number;
  out: string;
  err: string;
}

describe('jit login --use-device-code against the sandbox identity provider (easyauth)', () => {
  let sandbox: Sandbox;
  let home: string;
  let env: NodeJS.ProcessEnv;

  /**
   * Runs `jit` as a shell would, in a process of its own; `onErr` sees stderr as it comes (the device code is
   * printed while jit waits for the person).
   */
  function jit(args: string[], onErr?: (text: string) => void): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [JIT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => {
        err += b.toString();
        onErr?.(err);
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code: code ?? -1, out: out.trim(), err: err.trim() }));
    });
  }

  /** The files jit keeps tokens in, beside its configuration (docs/cli.md: `token-cache.*.json`). */
  const tokenCaches = () =>
    readdirSync(join(home, 'config', 'jit'))
      .filter((f) => /^token-cache\..*\.json$/.test(f))
      .map((f) => join(home, 'config', 'jit', f));

  const config = () =>
    JSON.parse(readFileSync(join(home, 'config', 'jit', 'config.json'), 'utf8')) as {
      profiles: Record<string, { auth?: string; account?: string }>;
    };

  before(async () => {
    sandbox = await startSandbox({ auth: 'easyauth' });
    home = mkdtempSync(join(tmpdir(), 'jit-signin-'));
    const ca = join(home, 'sandbox-identity-ca.pem');
    writeFileSync(ca, sandbox.identity.provider!.caPem);
    // No Azure CLI on PATH: only what the sign-in under test gives.
    env = {
      PATH: '/usr/bin:/bin',
      HOME: home,
      XDG_CONFIG_HOME: join(home, 'config'),
      NODE_EXTRA_CA_CERTS: ca,
    };
    // What a person sets up once for a deployment whose sign-in is not Entra ID's public cloud (docs/cli.md).
    for (const [name, value] of [...sandboxSignInProfile(sandbox), ['subscription', DEMO.subscriptionId]]) {
      const set = await jit(['config', 'set', name!, value!]);
      assert.equal(set.code, EXIT.ok, set.err);
    }
  });
  after(async () => {
    await sandbox?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('without a sign-in, a command says to sign in and exits 2, and starts no sign-in of its own', async () => {
    const list = await jit(['list']);
    assert.equal(list.code, EXIT.usage, list.err);
    assert.match(list.err, /^jit: could not get a token for api:\/\/[^ ]+: .*\nhint: sign in: jit login/);
    const json = await jit(['list', '-o', 'json']);
    assert.equal(json.code, EXIT.usage);
    const problem = JSON.parse(json.err) as { type: string; hint: string };
    assert.match(problem.type, /docs\/cli\.md#sign-in$/);
    assert.match(problem.hint, /jit login/);
  });

  test('the CLI prints the code on stderr, the person signs in elsewhere, and the CLI keeps the account', async () => {
    let completing: Promise<void> | undefined;
    const login = await jit(['login', '--use-device-code'], (err) => {
      // Entra's own sentence, which MSAL hands over as is: the page to open and the code to enter there.
      const prompt = /open the page (https:\/\/\S+) and enter the code (\S+) to authenticate/.exec(err);
      if (prompt && !completing) completing = completeDeviceCode(prompt[1]!, prompt[2]!, ALICE.login);
    });
    assert.ok(completing, `no device code instructions on stderr: ${login.err}`);
    await completing;
    assert.equal(login.code, EXIT.ok, login.err);
    assert.match(
      login.out,
      /^Signed in as alice@example\.com \(device-code\) for http:\/\/127\.0\.0\.1:\d+\/api/,
    );
    assert.equal(login.out.includes('enter the code'), false, 'the instructions go to stderr, not stdout');

    const profile = config().profiles.default!;
    assert.equal(profile.auth, 'device-code');
    const account = JSON.parse(profile.account!) as {
      username: string;
      tenantId: string;
      homeAccountId: string;
    };
    assert.equal(account.username, ALICE.login);
    assert.equal(account.tenantId, DEMO_TENANT_ID);
    // Keyed as Entra keys an account (client_info): object id and tenant.
    assert.equal(account.homeAccountId, `${ALICE.oid}.${DEMO_TENANT_ID}`);
    const caches = tokenCaches();
    assert.ok(caches.length > 0, 'the tokens are kept for later commands');
    for (const cache of caches)
      assert.equal(statSync(cache).mode & 0o777, 0o600, "the token cache is its owner's alone");
  });

  test('later commands call the API as that person, without asking again', async () => {
    const who = await jit(['whoami', '-o', 'json']);
    assert.equal(who.code, EXIT.ok, who.err);
    assert.equal(who.err, '', 'no sign-in prompt');
    const me = JSON.parse(who.out) as {
      via: string;
      user: string;
      accepted: boolean;
      identity: { objectId: string };
    };
    assert.deepEqual(
      { via: me.via, user: me.user, accepted: me.accepted, oid: me.identity.objectId },
      { via: 'device-code', user: ALICE.login, accepted: true, oid: ALICE.oid },
    );

    // The API's own view of who asked: the person the token names, keyed by tenant and object id.
    const asked = await jit([
      'request',
      `${DEMO.resourceGroup}/${DEMO.linuxVm.name}`,
      '--port',
      '22',
      '--for',
      '15m',
      '--from',
      '203.0.113.70',
      '--wait',
      '-o',
      'json',
    ]);
    assert.equal(asked.code, EXIT.ok, asked.err);
    assert.doesNotMatch(asked.err, /enter the code/);
    const request = JSON.parse(asked.out) as {
      id: string;
      status: string;
      requester: string;
      requesterId: string;
    };
    assert.equal(request.status, 'active');
    assert.equal(request.requesterId, `${DEMO_TENANT_ID}/${ALICE.oid}`);
    assert.equal(request.requester, ALICE.login);
    assert.ok(rulesInAll(sandbox, DEMO.linuxVm.nsgIds, request.id), 'the rule exists');
  });

  test('jit logout forgets the method and deletes the tokens; then a command says to sign in, exit 2', async () => {
    const signedIn = config();
    assert.ok(tokenCaches().length > 0, 'tokens kept before');
    const logout = await jit(['logout']);
    assert.equal(logout.code, EXIT.ok, logout.err);
    assert.equal(config().profiles.default!.auth, undefined);
    assert.deepEqual(tokenCaches(), [], 'no token left on disk');
    const who = await jit(['whoami']);
    assert.equal(who.code, EXIT.usage);
    assert.match(who.err, /\nhint: sign in: jit login/);

    // The method still saved but its tokens gone (a wiped cache, a refresh token past its life): a command never
    // starts a device code sign-in on its own, it says how to sign in again.
    writeFileSync(join(home, 'config', 'jit', 'config.json'), JSON.stringify(signedIn));
    const list = await jit(['list']);
    assert.equal(list.code, EXIT.usage, list.err);
    assert.match(
      list.err,
      /^jit: could not get a token for api:\/\/[^ ]+: .*\nhint: sign in again: jit login --use-device-code$/,
    );
    assert.doesNotMatch(list.err, /enter the code/, 'no device code flow started');
  });
});
