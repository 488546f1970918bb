/**
 * `jit login --browser` as a person does it: the real `jit`, in a process of its own, asks the system to open the
 * sign-in page (@azure/identity opens it with xdg-open, which on a machine without a desktop hands it to
 * `$BROWSER`); the person signs in there — Chromium, at the sandbox's OpenID Connect provider standing in for
 * Entra ID — and the provider sends the browser back to the loopback address MSAL listens on. The CLI keeps the
 * account, and a later command calls the API (behind App Service Authentication, `easyauth`) as that person.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { findDemoUser } from '../../dev/auth/directory';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { EXIT } from '../../cli/exitCodes';
import { browserSkip, launchBrowser } from '../support/browser';
import { sandboxSignInProfile } from '../support/cli';
import { startSandbox, waitFor } from '../support/sandbox';

const JIT = join(PROJECT_ROOT, 'dist', 'cli', 'jit.js');
const ADMIN = findDemoUser('admin@example.com')!;

describe(
  'jit login --browser against the sandbox identity provider (easyauth)',
  { skip: browserSkip },
  () => {
    let sandbox: Sandbox;
    let home: string;
    let opened: string;
    let env: NodeJS.ProcessEnv;
    let closeBrowser: (() => Promise<void>) | undefined;

    function jit(args: string[]): Promise<{ code: number; out: string; err: string }> {
      return new Promise((resolve, reject) => {
        const child = spawn(process.execPath, [JIT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        let err = '';
        child.stdout.on('data', (b: Buffer) => (out += b.toString()));
        child.stderr.on('data', (b: Buffer) => (err += b.toString()));
        child.on('error', reject);
        child.on('close', (code) => resolve({ code: code ?? -1, out: out.trim(), err: err.trim() }));
      });
    }

    before(async () => {
      sandbox = await startSandbox({ auth: 'easyauth' });
      home = mkdtempSync(join(tmpdir(), 'jit-browser-signin-'));
      const ca = join(home, 'sandbox-identity-ca.pem');
      writeFileSync(ca, sandbox.identity.provider!.caPem);
      // The person's browser, as xdg-open finds it without a desktop: $BROWSER. This one tells the test the address.
      opened = join(home, 'opened-url');
      const browser = join(home, 'browser');
      writeFileSync(browser, `#!/bin/sh\nprintf '%s\\n' "$1" > '${opened}'\n`);
      chmodSync(browser, 0o755);
      env = {
        PATH: '/usr/bin:/bin',
        HOME: home,
        XDG_CONFIG_HOME: join(home, 'config'),
        NODE_EXTRA_CA_CERTS: ca,
        BROWSER: browser,
      };
      for (const [name, value] of sandboxSignInProfile(sandbox)) {
        const set = await jit(['config', 'set', name, value]);
        assert.equal(set.code, EXIT.ok, set.err);
      }
    });
    after(async () => {
      await closeBrowser?.();
      await sandbox?.stop();
      if (home) rmSync(home, { recursive: true, force: true });
    });

    test('jit opens the sign-in page, the person signs in, jit keeps the account; later commands use it', async () => {
      const login = jit(['login', '--browser']);
      const url = await waitFor('jit to open the sign-in page', () =>
        existsSync(opened) ? readFileSync(opened, 'utf8').trim() || undefined : undefined,
      );
      assert.equal(new URL(url).origin, sandbox.identity.provider!.authorityHost, 'the configured authority');

      const { browser, close } = await launchBrowser();
      closeBrowser = close;
      const page = await browser.newPage();
      await page.goto(url);
      await page.fill('input[name="login"]', ADMIN.login);
      await page.fill('input[name="password"]', 'any password');
      await Promise.all([page.waitForURL(/^http:\/\/localhost:\d+\//), page.click('button[type="submit"]')]);

      const done = await login;
      assert.equal(done.code, EXIT.ok, done.err);
      assert.match(
        done.out,
        /^Signed in as admin@example\.com \(browser\) for http:\/\/127\.0\.0\.1:\d+\/api/,
      );
      const saved = JSON.parse(readFileSync(join(home, 'config', 'jit', 'config.json'), 'utf8')) as {
        profiles: { default: { auth: string; account: string } };
      };
      assert.equal(saved.profiles.default.auth, 'browser');
      assert.equal(
        (JSON.parse(saved.profiles.default.account) as { username: string }).username,
        ADMIN.login,
      );

      // Nothing is opened again: the admin's token, with the app role the API reads, from the cache.
      rmSync(opened);
      const who = await jit(['whoami', '-o', 'json']);
      assert.equal(who.code, EXIT.ok, who.err);
      const me = JSON.parse(who.out) as { via: string; user: string; roles: string[]; accepted: boolean };
      assert.deepEqual(
        { via: me.via, user: me.user, roles: me.roles, accepted: me.accepted },
        { via: 'browser', user: ADMIN.login, roles: ['Jit.Admin'], accepted: true },
      );
      const policies = await jit(['policy', 'list', '-o', 'json']);
      assert.equal(policies.code, EXIT.ok, `an admin's call: ${policies.err}`);
      assert.equal(existsSync(opened), false, 'no browser opened by a later command');
    });
  },
);
