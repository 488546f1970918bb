/**
 * `npm run smoke` against a running sandbox, as a person runs it after `npm start`: the script is a separate process
 * that finds the sandbox by the ports `npm start` would use (moved by JIT_SANDBOX_HTTP_PORT / JIT_SANDBOX_ARM_PORT).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { DEMO } from '../../dev/arm/emulator';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { api, startSandbox } from '../support/sandbox';
import { grantRule } from '../support/network';

interface SmokeRun {
  code: number;
  lines: string[];
}

/** Runs the smoke script against `sandbox`; asynchronously, since the sandbox answers from this process. */
function runSmoke(sandbox: Sandbox, args: string[] = []): Promise<SmokeRun> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JIT_SANDBOX_HTTP_PORT: new URL(sandbox.baseUrl).port,
    JIT_SANDBOX_ARM_PORT: new URL(sandbox.arm.endpoint).port,
  };
  for (const name of [
    'JIT_API_URL',
    'JIT_API_SCOPE',
    'JIT_AUTH_CLIENT_ID',
    'JIT_SMOKE_VM',
    'JIT_ARM_ENDPOINT',
  ])
    delete env[name];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(PROJECT_ROOT, 'dist', 'deploy', 'smoke.js'), ...args],
      { env, timeout: 120_000 },
      (err, stdout) => {
        const code = err ? ((err as { code?: number }).code ?? -1) : 0;
        resolve({ code: typeof code === 'number' ? code : -1, lines: stdout.trim().split('\n') });
      },
    );
  });
}

/** Each step's status and name, e.g. `ok request`. */
const steps = (run: SmokeRun) =>
  run.lines.filter((l) => /^(ok|FAIL|note) /.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(' '));

/** The NSGs holding the request's rule (named `jit-<request id>`, lower case), as the emulator holds them. */
function nsgsWithRule(sandbox: Sandbox, requestId: string): string[] {
  const name = `jit-${requestId}`.toLowerCase();
  return sandbox.arm
    .listNsgs()
    .filter((n) => n.securityRules.some((r) => r.name.toLowerCase() === name))
    .map((n) => n.id);
}

test('npm run smoke grants, sees the rules in ARM, revokes, sees them gone and verifies the audit chain', async (t) => {
  const sandbox = await startSandbox();
  t.after(() => sandbox.stop());

  const run = await runSmoke(sandbox);
  assert.equal(run.code, 0, run.lines.join('\n'));
  assert.deepEqual(steps(run), [
    'ok health',
    'ok request',
    'ok active',
    'ok arm-path',
    'ok arm-open',
    'ok revoke',
    'ok arm-closed',
    'ok audit',
  ]);
  assert.equal(run.lines.at(-1), 'smoke passed');
  const id = /^ok\s+request\s+(\w+):/m.exec(run.lines.join('\n'))?.[1];
  assert.ok(id, 'the request line names the request');
  // Both NSGs in front of demo-vm were named, and the run left nothing open.
  const pathLine = run.lines.find((l) => l.startsWith('ok    arm-path'))!;
  for (const nsgId of DEMO.linuxVm.nsgIds) assert.ok(pathLine.includes(nsgId.split('/').pop()!), pathLine);
  assert.deepEqual(nsgsWithRule(sandbox, id), []);
  const audit = await api(
    sandbox,
    'GET',
    `audit?requestId=${id}&from=2000-01-01T00:00:00Z`,
    undefined,
    'auditor@example.com',
    {
      'x-jit-dev-roles': 'Jit.Auditor',
    },
  );
  const actions = (audit.body.items as Array<{ action: string }>).map((i) => i.action);
  assert.ok(actions.includes('grant.rule-applied') && actions.includes('grant.revoked'), actions.join(', '));
  const request = await api(sandbox, 'GET', `requests/${id}`, undefined, 'smoke@example.com');
  assert.equal(request.body.status, 'revoked');
  assert.match(request.body.sourcePrefix as string, /^203\.0\.113\.\d+\/32$/);
});

test('npm run smoke fails at arm-closed, non-zero, when ARM refuses to delete the rule: closed by Deny, and said why', async (t) => {
  const sandbox = await startSandbox();
  t.after(() => sandbox.stop());
  // The app's identity may write rules but (say, after a role change) not delete them.
  sandbox.arm.faults.inject({
    method: 'DELETE',
    pathIncludes: '/securityRules/jit-',
    status: 403,
    code: 'AuthorizationFailed',
    message: 'The client does not have authorization to perform action securityRules/delete.',
    rate: 1,
  });

  const run = await runSmoke(sandbox);
  assert.equal(run.code, 1, run.lines.join('\n'));
  assert.deepEqual(steps(run), [
    'ok health',
    'ok request',
    'ok active',
    'ok arm-path',
    'ok arm-open',
    'ok revoke',
    'FAIL arm-closed',
  ]);
  const failLine = run.lines.find((l) => l.startsWith('FAIL'))!;
  assert.match(failLine, /turned to Deny: the app could not delete it .*securityRules\/delete/);
  // Access ended (the rules let nothing in), but the deployment cannot delete rules: the run fails and says so.
  const id = /^ok\s+request\s+(\w+):/m.exec(run.lines.join('\n'))![1]!;
  assert.deepEqual(nsgsWithRule(sandbox, id).sort(), [...DEMO.linuxVm.nsgIds].sort());
  for (const nsgId of DEMO.linuxVm.nsgIds)
    assert.equal(grantRule(sandbox, nsgId, id)?.properties.access, 'Deny', `closed by Deny in ${nsgId}`);
});
