/**
 * `jit config`, `jit login` and `jit whoami` as a person uses them: profiles saved per user, flags over
 * environment variables over the profile, and sign-in through the Azure CLI (a stand-in `az` on PATH that
 * answers `az account get-access-token` as the real one does).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cliEnv, runJit } from '../../support/cli';

const SUB = '00000000-0000-0000-0000-0000000000c1';
const OTHER = '00000000-0000-0000-0000-0000000000c2';

test('settings: a flag beats its environment variable, which beats the profile', async () => {
  const env = cliEnv();
  assert.equal((await runJit(['config', 'set', 'subscription', SUB], env)).code, 0);
  const saved = await runJit(['config', 'get', 'subscription'], env);
  assert.equal(saved.out, SUB);
  const fromEnv = await runJit(['config', 'get', 'subscription'], { ...env, JIT_SUBSCRIPTION_ID: OTHER });
  assert.equal(fromEnv.out, OTHER);
  const fromFlag = await runJit(['--subscription', SUB, 'config', 'get', 'subscription'], {
    ...env,
    JIT_SUBSCRIPTION_ID: OTHER,
  });
  assert.equal(fromFlag.out, SUB);

  const list = await runJit(['-o', 'json', 'config', 'list'], {
    ...env,
    JIT_API_URL: 'https://jit.example.com/api',
  });
  const doc = JSON.parse(list.out);
  assert.equal(doc.values.api, 'https://jit.example.com/api');
  assert.deepEqual(
    { api: doc.sources.api, subscription: doc.sources.subscription, output: doc.sources.output },
    { api: 'env', subscription: 'profile', output: 'flag' },
  );
  const file = join(env.XDG_CONFIG_HOME!, 'jit', 'config.json');
  assert.equal(doc.file, file);
  assert.equal(statSync(file).mode & 0o777, 0o600, "the file is its owner's alone");
});

test('named profiles: one per deployment, chosen by --profile, JIT_PROFILE or jit config use', async () => {
  const env = cliEnv();
  await runJit(['config', 'set', 'api', 'https://prod.example.com/api'], env);
  await runJit(['--profile', 'sandbox', 'config', 'set', 'user', 'alice@example.com'], env);
  assert.equal((await runJit(['config', 'get', 'api'], env)).out, 'https://prod.example.com/api');
  assert.equal(
    (await runJit(['--profile', 'sandbox', 'config', 'get', 'api'], env)).out,
    'http://127.0.0.1:7071/api',
  );
  assert.equal(
    (await runJit(['config', 'get', 'user'], { ...env, JIT_PROFILE: 'sandbox' })).out,
    'alice@example.com',
  );
  assert.equal((await runJit(['config', 'use', 'sandbox'], env)).code, 0);
  assert.equal((await runJit(['config', 'get', 'user'], env)).out, 'alice@example.com');
  const saved = JSON.parse(readFileSync(join(env.XDG_CONFIG_HOME!, 'jit', 'config.json'), 'utf8'));
  assert.equal(saved.currentProfile, 'sandbox');
  assert.deepEqual(Object.keys(saved.profiles).sort(), ['default', 'sandbox']);
});

test('a bad value is refused where it is set, and named where it is read', async () => {
  const env = cliEnv();
  const bad = await runJit(['config', 'set', 'subscription', 'prod'], env);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /^jit: subscription "prod" is not valid: it must be a GUID$/);
  const fromEnv = await runJit(['config', 'get', 'api'], { ...env, JIT_SUBSCRIPTION_ID: 'prod' });
  assert.equal(fromEnv.code, 2);
  assert.match(fromEnv.err, /subscription "prod" is not valid/);
  mkdirSync(join(env.XDG_CONFIG_HOME!, 'jit'));
  writeFileSync(
    join(env.XDG_CONFIG_HOME!, 'jit', 'config.json'),
    '{"profiles":{"default":{"output":"yaml"}}}',
  );
  const broken = await runJit(['config', 'list'], env);
  assert.equal(broken.code, 2);
  assert.match(broken.err, /config\.json: profiles\.default\.output: .*\nhint: fix it/);
});

describe('jit login and whoami through the Azure CLI', () => {
  const token = [
    Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url'),
    Buffer.from(
      JSON.stringify({
        upn: 'carol@contoso.com',
        name: 'Carol',
        tid: 'tenant-1',
        roles: ['Jit.Auditor'],
        exp: 4102444800,
      }),
    ).toString('base64url'),
    'sig',
  ].join('.');
  let server: Server;
  let api = '';
  const seen: string[] = [];
  const bin = mkdtempSync(join(tmpdir(), 'jit-az-'));
  const path = process.env.PATH;
  let azSignedIn = true;

  before(async () => {
    // The Azure CLI's answer to `az account get-access-token --output json --resource <app id uri>`.
    writeFileSync(
      join(bin, 'az'),
      `#!/bin/sh\nif [ -f "${bin}/signed-out" ]; then echo "Please run 'az login' to setup account." >&2; exit 1; fi\n` +
        `echo '{"accessToken":"${token}","expiresOn":"2099-12-31 00:00:00.000000","expires_on":4102358400,"tokenType":"Bearer"}'\n`,
    );
    chmodSync(join(bin, 'az'), 0o755);
    process.env.PATH = `${bin}:${path}`;
    server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"items":[]}');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    api = `http://127.0.0.1:${(server.address() as AddressInfo).port}/api`;
  });
  after(() => {
    process.env.PATH = path;
    server.close();
  });

  test('login remembers the method, whoami says who and that the API accepts it', async () => {
    assert.ok(azSignedIn);
    const env = cliEnv();
    await runJit(['config', 'set', 'api', api], env);
    const noScope = await runJit(['login'], env);
    assert.equal(noScope.code, 2);
    assert.match(noScope.err, /sandbox needs no sign-in/);
    await runJit(['config', 'set', 'scope', 'api://jit-test/.default'], env);
    const login = await runJit(['login'], env);
    assert.equal(login.code, 0, login.err);
    assert.match(
      login.out,
      /^Signed in as carol@contoso\.com \(azure-cli\) for http:\/\/127\.0\.0\.1:\d+\/api, profile default\.$/,
    );
    const saved = JSON.parse(readFileSync(join(env.XDG_CONFIG_HOME!, 'jit', 'config.json'), 'utf8'));
    assert.equal(saved.profiles.default.auth, 'azure-cli');

    const who = await runJit(['whoami'], env);
    assert.equal(who.code, 0, who.err);
    assert.match(
      who.out,
      /^carol@contoso\.com \(Carol\)\n {2}via {6}azure-cli, tenant tenant-1\n {2}roles {4}Jit\.Auditor/,
    );
    assert.match(who.out, /accepts it/);
    assert.ok(seen.includes(`GET /api/requests?limit=1 Bearer ${token}`), seen.join('\n'));
  });

  test('signed out of the Azure CLI: login says to run az login', async () => {
    writeFileSync(join(bin, 'signed-out'), '');
    azSignedIn = false;
    const env = cliEnv({ JIT_API_URL: api, JIT_API_SCOPE: 'api://jit-test/.default' });
    const login = await runJit(['login'], env);
    assert.equal(login.code, 2);
    assert.match(login.err, /^jit: sign-in failed: .*\nhint: sign in to the Azure CLI first \(az login\)/);
    const list = await runJit(['list'], env);
    assert.equal(list.code, 2);
    assert.match(list.err, /could not get a token .*\nhint: sign in: jit login/);
  });
});
