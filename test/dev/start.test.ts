/**
 * `npm start` prints its banner and the host's own lines, not @azure/functions' test-mode warnings; and outside
 * the local host the function files still register with app.*, as the Functions host in Azure needs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../dev/sandbox';

async function free(port = 0): Promise<number | undefined> {
  const server = createServer();
  return new Promise((resolve) => {
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const p = (server.address() as AddressInfo).port;
      server.close(() => resolve(p));
    });
  });
}

/** Three consecutive free ports (Azurite's blob, queue, table), from a random base. */
async function freeRun(): Promise<number> {
  for (;;) {
    const base = 20000 + Math.floor(Math.random() * 30000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
}

/** Runs `npm start` (dist/dev/start.js) on free ports until its banner is out or it exits; returns what it printed. */
async function startOutput(
  extraEnv: Record<string, string> = {},
): Promise<{ output: string; code: number | null }> {
  const env = {
    ...process.env,
    JIT_SANDBOX_HTTP_PORT: String(await free()),
    JIT_SANDBOX_ARM_PORT: String(await free()),
    JIT_SANDBOX_SERVICEBUS_PORT: String(await free()),
    JIT_SANDBOX_SMTP_PORT: String(await free()),
    JIT_SANDBOX_MAIL_PORT: String(await free()),
    JIT_SANDBOX_STORAGE_PORT: String(await freeRun()),
    // Not the checkout's .sandbox: a developer's own npm start may be using it.
    JIT_SANDBOX_DATA_DIR: mkdtempSync(join(tmpdir(), 'jit-start-data-')),
    ...extraEnv,
  };
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'dist', 'dev', 'start.js')], {
    cwd: mkdtempSync(join(tmpdir(), 'jit-start-')),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const running = await new Promise<boolean>((resolve) => {
    const check = setInterval(() => {
      if (output.includes('sandbox is running')) {
        clearInterval(check);
        resolve(true);
      }
    }, 100);
    void exited.then(() => {
      clearInterval(check);
      resolve(false);
    });
  });
  if (running) child.kill('SIGINT');
  const code = await exited;
  return { output, code: running ? null : code };
}

test('npm start prints the banner without "Skipping call to register function" lines', async () => {
  const { output, code } = await startOutput();
  assert.equal(code, null, `npm start exited (${code}):\n${output}`);
  const beforeBanner = output.slice(0, output.indexOf('azure-jit-access sandbox is running'));
  assert.doesNotMatch(output, /WARNING: Skipping call to register/);
  assert.doesNotMatch(output, /Switching "@azure\/functions" package to test mode/);
  assert.ok(beforeBanner.split('\n').filter(Boolean).length <= 3, `before the banner:\n${beforeBanner}`);
  assert.match(output, /profile fast: rule operations take 0 ms, Retry-After 0 s, ARM throttling off/);
});

test('JIT_SANDBOX_ARM_PROFILE=azure starts the ARM emulator Azure-like, and the banner says so', async () => {
  const { output, code } = await startOutput({ JIT_SANDBOX_ARM_PROFILE: 'azure' });
  assert.equal(code, null, `npm start exited (${code}):\n${output}`);
  assert.match(output, /profile azure: rule operations take 3000 ms, Retry-After 10 s, ARM throttling on/);
});

test('an unknown JIT_SANDBOX_ARM_PROFILE stops npm start with the choices', async () => {
  const { output, code } = await startOutput({ JIT_SANDBOX_ARM_PROFILE: 'slow' });
  assert.equal(code, 1);
  assert.match(output, /JIT_SANDBOX_ARM_PROFILE must be one of fast, azure, not "slow"/);
});

/**
 * A child node process with the one thing the Functions worker adds: the module `@azure/functions-core`, provided
 * by intercepting require as the worker does (Azure/azure-functions-nodejs-worker, src/setupCoreModule.ts). It loads
 * every function file and prints what reached the core API, and whatever else was printed.
 */
function loadFunctions(withWorker: boolean): {
  registered: string[];
  hooks: string[];
  declared: string[];
  output: string;
} {
  const script = `
    const Module = require('node:module');
    const registered = [], hooks = [];
    if (${withWorker}) {
      const core = {
        version: '4.0.0', hostVersion: '4.0.0',
        setProgrammingModel() {},
        registerFunction(metadata) { registered.push(metadata.name); return { dispose() {} }; },
        registerHook(name) { hooks.push(name); return { dispose() {} }; },
        log() {},
      };
      const load = Module._load;
      Module._load = function (request, ...rest) {
        return request === '@azure/functions-core' ? core : load.call(this, request, ...rest);
      };
    }
    const { readdirSync } = require('node:fs');
    const dir = ${JSON.stringify(join(PROJECT_ROOT, 'dist', 'functions'))};
    for (const f of readdirSync(dir).filter((f) => f.endsWith('.js'))) require(dir + '/' + f);
    const { declaredFunctions } = require(${JSON.stringify(join(PROJECT_ROOT, 'dist', 'shared', 'hosting', 'declare.js'))});
    process.stdout.write('\\n' + JSON.stringify({ registered, hooks, declared: declaredFunctions().map((d) => d.name) }));
  `;
  const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  return { ...JSON.parse(lines.pop()!), output: lines.join('\n') + r.stderr };
}

test('under the Functions worker every declaration and both host hooks register with @azure/functions', () => {
  const { registered, hooks, declared } = loadFunctions(true);
  assert.ok(declared.length > 10);
  assert.deepEqual([...registered].sort(), [...declared].sort());
  assert.deepEqual([...hooks].sort(), ['appStart', 'appTerminate']);
});

test('outside it, loading the function files declares them and prints nothing', () => {
  const { registered, declared, output } = loadFunctions(false);
  assert.ok(declared.length > 10);
  assert.deepEqual(registered, []);
  assert.doesNotMatch(output, /WARNING/);
});
