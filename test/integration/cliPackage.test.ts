/**
 * The `jit` package as people get it: packed with `npm pack`, installed into an empty folder, run from there —
 * its version, its completion script, a request against the sandbox — and carrying none of the server.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEMO } from '../../dev/arm/emulator';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { startSandbox } from '../support/sandbox';

const CLI_DIR = join(PROJECT_ROOT, 'cli');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

/** Packages that belong to the server, never to the command line. */
const SERVER_ONLY =
  /^(@azure\/(functions|arm-|data-tables|storage-|service-bus|communication-|monitor-)|azurite|nodemailer|ajv|croner|ulid|rate-limiter-flexible|escape-html|ipaddr\.js|long)/;

describe('the jit package, packed and installed', () => {
  let work: string;
  let jitBin: string;
  let tarball: string;
  let sandbox: Sandbox;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'jit-package-'));
    const packed = JSON.parse(
      execFileSync(npm, ['pack', '--json', '--pack-destination', work], { cwd: CLI_DIR, encoding: 'utf8' }),
    ) as Array<{ filename: string; files: Array<{ path: string }> }>;
    tarball = join(work, packed[0]!.filename);
    const install = join(work, 'empty');
    execFileSync('mkdir', ['-p', install]);
    writeFileSync(join(install, 'package.json'), '{"private":true}\n');
    execFileSync(npm, ['install', '--prefer-offline', '--no-audit', '--no-fund', tarball], {
      cwd: install,
      encoding: 'utf8',
    });
    jitBin = join(install, 'node_modules', '.bin', 'jit');
    sandbox = await startSandbox();
  });
  after(async () => {
    await sandbox?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** Runs the installed jit as a shell would (not synchronously: the sandbox answers from this process). */
  const jit = (args: string[]) =>
    new Promise<{ status: number; stdout: string; stderr: string }>((resolve) => {
      execFile(
        jitBin,
        args,
        {
          encoding: 'utf8',
          env: { PATH: process.env.PATH, HOME: work, XDG_CONFIG_HOME: join(work, 'config') },
        },
        (err, stdout, stderr) =>
          resolve({ status: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }),
      );
    });

  test('its package.json depends on nothing of the server, and it ships only the CLI and pure domain code', () => {
    const pkg = JSON.parse(readFileSync(join(CLI_DIR, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
      bin: Record<string, string>;
    };
    const deps = Object.keys(pkg.dependencies);
    assert.deepEqual(
      deps.filter((d) => SERVER_ONLY.test(d)),
      [],
    );
    assert.ok(deps.includes('commander') && deps.includes('@azure/identity'));
    assert.equal(pkg.bin.jit, 'dist/cli/jit.js');
    const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' }).trim().split('\n');
    const outside = files.filter(
      (f) =>
        !/^package\/(package\.json|README\.md|dist\/cli\/.*\.js|dist\/shared\/domain\/[a-zA-Z]+\.js)$/.test(
          f,
        ),
    );
    assert.deepEqual(outside, []);
    const installed = readdirSync(join(work, 'empty', 'node_modules', '@azure'));
    assert.deepEqual(
      installed.filter((d) => SERVER_ONLY.test(`@azure/${d}`)),
      [],
      'nothing of the server arrives with it',
    );
  });

  test('--version prints the package version', async () => {
    const r = await jit(['--version']);
    assert.equal(r.status, 0, r.stderr);
    const { version } = JSON.parse(readFileSync(join(CLI_DIR, 'package.json'), 'utf8')) as {
      version: string;
    };
    assert.equal(r.stdout.trim(), version);
  });

  test('completion scripts for bash, zsh, fish and PowerShell, answered by the installed jit', async () => {
    for (const shell of ['bash', 'zsh', 'fish', 'powershell']) {
      const r = await jit(['completion', shell]);
      assert.equal(r.status, 0, `${shell}: ${r.stderr}`);
      assert.match(r.stdout, /jit/, shell);
      assert.ok(r.stdout.length > 200, `${shell} prints a script`);
    }
    const words = await jit(['complete', '--', 're']);
    assert.equal(words.status, 0, words.stderr);
    assert.deepEqual(
      words.stdout
        .split('\n')
        .map((l) => l.split('\t')[0])
        .filter((w) => w && !w.startsWith(':')),
      ['request', 'revoke'],
    );
    const statuses = await jit(['complete', '--', 'list', '--status', '']);
    assert.match(statuses.stdout, /^pending-approval/m);
  });

  test('a request against the sandbox, with settings from a saved profile', async () => {
    const api = `${sandbox.baseUrl}/api`;
    for (const [k, v] of [
      ['api', api],
      ['user', 'alice@example.com'],
      ['subscription', DEMO.subscriptionId],
    ] as const) {
      const set = await jit(['config', 'set', k, v]);
      assert.equal(set.status, 0, set.stderr);
    }
    const r = await jit([
      'request',
      'demo-rg/demo-vm',
      '-p',
      '22',
      '--for',
      '5m',
      '--from',
      '203.0.113.60',
      '-o',
      'json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const created = JSON.parse(r.stdout) as { id: string; status: string };
    assert.equal(created.status, 'submitted');
    const revoked = await jit(['revoke', created.id]);
    assert.equal(revoked.status, 0, revoked.stderr);
  });
});
