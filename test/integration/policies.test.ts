/**
 * Policies as code on the sandbox, through the HTTP API and the `jit` command: admins replace the set with a
 * document, mistakes come back with line and column, every change is audited, and the most specific policy
 * decides each request.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { runCli } from '../../cli/jit';
import { cliEnv } from '../support/cli';
import { DEMO } from '../../dev/arm/emulator';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { TABLES } from '../../shared/names';
import { api, startSandbox, waitFor } from '../support/sandbox';
import { isDayPartition } from '../../shared/domain/auditChain';

const ADMIN = 'admin@example.com';
const asAdmin = { 'x-jit-dev-roles': 'Jit.Admin' };
const YAML = { 'content-type': 'application/yaml' };
const RG_SCOPE = `/subscriptions/${DEMO.subscriptionId}/resourcegroups/${DEMO.resourceGroup}`;
const VM_SCOPE = DEMO.linuxVm.id.toLowerCase();
const WIN_SCOPE = DEMO.windowsVm.id.toLowerCase();
const DEV_POLICIES = readFileSync(join(PROJECT_ROOT, 'dev', 'policies.yaml'), 'utf8');

/** dev/policies.yaml plus a policy of demo-vm's own: SSH only, for alice only, for at most an hour. */
const WITH_VM_POLICY = `${DEV_POLICIES}
  - scope: ${DEMO.linuxVm.id}
    ports: [{ port: 22, maxDuration: PT1H }]
    allowedSourcePrefixes: [203.0.113.0/24]
    requesters: [user:alice@example.com]
`;

/** Only demo-win's policy: demo-vm is covered by nothing. */
const ONLY_WIN = `policies:
  - scope: ${DEMO.windowsVm.id}
    ports: [{ port: 3389, maxDuration: PT1H }]
    allowedSourcePrefixes: [my-ip]
    requesters: ['*']
`;

const putPolicies = (sandbox: Sandbox, text: string, query = '', user = ADMIN, roles = asAdmin) =>
  api(sandbox, 'PUT', `policies${query}`, text, user, { ...YAML, ...roles });

async function policyAuditEvents(sandbox: Sandbox): Promise<Array<{ action: string; detail: string }>> {
  // Events live in day partitions (index partitions hold copies, and each day has a head row); oldest first.
  const out: Array<{ time: string; seq: number; action: string; detail: string }> = [];
  const rows = sandbox
    .table(TABLES.audit)
    .listEntities<{ action?: string; detail: string; time: string; seq: number }>();
  for await (const e of rows) {
    if (!isDayPartition(e.partitionKey as string) || !e.action?.startsWith('policy.')) continue;
    out.push({ time: e.time, seq: e.seq, action: e.action, detail: e.detail });
  }
  return out
    .sort((a, b) => a.time.localeCompare(b.time) || a.seq - b.seq)
    .map(({ action, detail }) => ({ action, detail }));
}

async function requestStatus(sandbox: Sandbox, id: string): Promise<string> {
  return (await api(sandbox, 'GET', `requests/${id}`)).body.status as string;
}

describe('policies as code on the sandbox', () => {
  let sandbox: Sandbox;
  let dir: string;
  before(async () => {
    sandbox = await startSandbox();
    dir = mkdtempSync(join(tmpdir(), 'jit-policies-'));
  });
  after(async () => {
    await sandbox?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the policy routes are for Jit.Admin only', async () => {
    const calls = [
      api(sandbox, 'GET', 'policies'),
      api(sandbox, 'GET', `policies?scope=${encodeURIComponent(RG_SCOPE)}`),
      api(sandbox, 'PUT', 'policies', ONLY_WIN, 'alice@example.com', YAML),
      api(sandbox, 'PUT', 'policies?dryRun=true', ONLY_WIN, 'alice@example.com', YAML),
      api(sandbox, 'DELETE', `policies?scope=${encodeURIComponent(RG_SCOPE)}`),
      api(sandbox, 'GET', 'policies', undefined, 'auditor@example.com', { 'x-jit-dev-roles': 'Jit.Auditor' }),
    ];
    for (const res of await Promise.all(calls)) {
      assert.equal(res.status, 403);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      assert.equal(res.body.detail, 'This needs the Jit.Admin app role');
    }
    assert.equal((await api(sandbox, 'GET', 'policies', undefined, null)).status, 401);
    // The refused calls changed nothing: demo-rg's policy still decides for demo-vm.
    const still = await api(
      sandbox,
      'GET',
      `policies?scope=${encodeURIComponent(RG_SCOPE)}`,
      undefined,
      ADMIN,
      asAdmin,
    );
    assert.equal(still.status, 200);
  });

  test('GET gives the set as the document PUT takes back; the same document again changes nothing', async () => {
    const json = await api(sandbox, 'GET', 'policies', undefined, ADMIN, asAdmin);
    assert.equal(json.status, 200);
    assert.deepEqual(
      json.body.policies.map((p: { scope: string }) => p.scope),
      [RG_SCOPE, WIN_SCOPE],
    );
    assert.deepEqual(json.body.policies[0].ports, [
      { port: 22, protocol: 'Tcp', maxDuration: 'PT3H' },
      { port: 3389, protocol: 'Tcp', maxDuration: 'PT1H' },
    ]);
    const yaml = await api(sandbox, 'GET', 'policies', undefined, ADMIN, {
      ...asAdmin,
      accept: 'application/yaml',
    });
    assert.equal(yaml.status, 200);
    assert.match(yaml.headers.get('content-type') ?? '', /^application\/yaml/);
    assert.deepEqual(parseYaml(yaml.body as string), json.body);

    const audited = (await policyAuditEvents(sandbox)).length;
    for (const [text, type] of [
      [yaml.body as string, 'application/yaml'],
      [DEV_POLICIES, 'application/yaml'],
      [JSON.stringify(json.body), 'application/json'],
    ] as const) {
      const res = await api(sandbox, 'PUT', 'policies', text, ADMIN, { ...asAdmin, 'content-type': type });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.deepEqual(
        [res.body.added, res.body.changed, res.body.removed, res.body.unchanged],
        [[], [], [], 2],
      );
    }
    assert.equal((await policyAuditEvents(sandbox)).length, audited, 'no audit event without a change');
  });

  test('a document with mistakes is refused with line, column and rule, and applies nothing', async () => {
    const broken = WITH_VM_POLICY.replace(
      'ports: [{ port: 22, maxDuration: PT1H }]',
      'ports: [{ port: 22, maxDuration: P2D }]',
    );
    const res = await putPolicies(sandbox, broken);
    assert.equal(res.status, 400);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.deepEqual(res.body.errors, [
      {
        source: '(body)',
        line: broken.split('\n').findIndex((l) => l.includes('P2D')) + 1,
        column: 38,
        field: 'policies[2].ports[0].maxDuration',
        reason: "P2D is longer than the system's maximum, 1d (the JIT_MAX_DURATION setting)",
        rule: 'max-duration-over-cap',
      },
    ]);
    const unsupported = await api(sandbox, 'PUT', 'policies', ONLY_WIN, ADMIN, {
      ...asAdmin,
      'content-type': 'text/plain',
    });
    assert.equal(unsupported.status, 400);
    const now = await api(sandbox, 'GET', 'policies', undefined, ADMIN, asAdmin);
    assert.equal(now.body.policies.length, 2);
  });

  test('a dry run returns the diff and changes nothing', async () => {
    const audited = (await policyAuditEvents(sandbox)).length;
    const res = await putPolicies(sandbox, ONLY_WIN, '?dryRun=true');
    assert.equal(res.status, 200);
    assert.equal(res.body.dryRun, true);
    assert.deepEqual(
      res.body.removed.map((e: { scope: string }) => e.scope),
      [RG_SCOPE],
    );
    assert.deepEqual(
      res.body.changed.map((c: { scope: string; fields: Array<{ field: string }> }) => [
        c.scope,
        c.fields.map((f) => f.field),
      ]),
      [
        [
          WIN_SCOPE,
          [
            'description',
            'allowedSourcePrefixes',
            'approval.mode',
            'approval.approvers',
            'approval.required',
            'approval.timeout',
            'justification.required',
          ],
        ],
      ],
    );
    const now = await api(sandbox, 'GET', 'policies', undefined, ADMIN, asAdmin);
    assert.equal(now.body.policies.length, 2);
    assert.equal(now.body.policies[1].approval.mode, 'manual');
    assert.equal((await policyAuditEvents(sandbox)).length, audited);
    const ask = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [3389],
      duration: 'PT1M',
      sourcePrefix: '198.51.100.7',
    });
    assert.equal(ask.status, 202, 'demo-rg still allows RDP to demo-vm');
  });

  test('the most specific policy decides, the request shows which, and explain says why', async () => {
    const res = await putPolicies(sandbox, WITH_VM_POLICY);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.deepEqual(
      res.body.added.map((e: { scope: string }) => e.scope),
      [VM_SCOPE],
    );
    const events = await policyAuditEvents(sandbox);
    assert.equal(events.at(-1)?.action, 'policy.added');
    assert.deepEqual(JSON.parse(events.at(-1)!.detail).after.requesters, ['user:alice@example.com']);

    // demo-rg allows RDP, but demo-vm's own policy decides, and it allows only SSH.
    const rdp = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [3389],
      duration: 'PT1M',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(rdp.status, 403);
    assert.equal(rdp.body.detail, 'port 3389/Tcp is not allowed by the policy; it allows 22/Tcp up to 1h');
    const bob = await api(
      sandbox,
      'POST',
      'requests',
      { vm: DEMO.linuxVm.id, ports: [22], duration: 'PT1M', sourcePrefix: '203.0.113.7' },
      'bob@example.com',
    );
    assert.equal(bob.status, 403, 'demo-rg lets anyone in, demo-vm only alice');
    const ssh = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [22],
      duration: 'PT1M',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(ssh.status, 202);
    const shown = await api(sandbox, 'GET', `requests/${ssh.body.id}`);
    assert.equal(shown.body.policyScope, VM_SCOPE);
    const win = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.windowsVm.id,
      ports: [3389],
      duration: 'PT1M',
      sourcePrefix: '203.0.113.7',
      justification: 'demo-win asks for one',
    });
    assert.equal(win.status, 202, JSON.stringify(win.body));
    assert.equal((await api(sandbox, 'GET', `requests/${win.body.id}`)).body.policyScope, WIN_SCOPE);

    const explain = await api(
      sandbox,
      'GET',
      `policies/explain?vm=${encodeURIComponent(DEMO.linuxVm.id)}&port=3389`,
    );
    assert.equal(explain.status, 200);
    assert.deepEqual(
      explain.body.checked.map((c: { level: string; hasPolicy: boolean; decides: boolean }) => [
        c.level,
        c.hasPolicy,
        c.decides,
      ]),
      [
        ['vm', true, true],
        ['resourceGroup', true, false],
        ['subscription', false, false],
      ],
    );
    assert.deepEqual(explain.body.port, { port: 3389, protocol: 'Tcp', allowed: false });
    const notYours = await api(
      sandbox,
      'GET',
      `policies/explain?vm=${encodeURIComponent(DEMO.linuxVm.id)}`,
      undefined,
      'bob@example.com',
    );
    assert.equal(notYours.status, 403);
    assert.equal(notYours.body.detail, 'No policy allows this request.');
  });

  test('a removed policy stops new requests, while a live grant under it expires normally', async () => {
    const live = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [22],
      duration: 'PT5S',
      sourcePrefix: '203.0.113.50',
    });
    assert.equal(live.status, 202);
    const id = live.body.id as string;
    await waitFor('the grant to be active', async () => (await requestStatus(sandbox, id)) === 'active');

    const res = await putPolicies(sandbox, ONLY_WIN);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.removed.map((e: { scope: string }) => e.scope),
      [RG_SCOPE, VM_SCOPE],
    );
    const refused = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [22],
      duration: 'PT1M',
      sourcePrefix: '203.0.113.51',
    });
    assert.equal(refused.status, 403);

    assert.equal(
      await requestStatus(sandbox, id),
      'active',
      'removing the policy does not cut the live grant',
    );
    await waitFor(
      'the grant to expire',
      async () => (await requestStatus(sandbox, id)) === 'expired',
      15_000,
    );
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      const rules = sandbox.arm.getNsg(nsgId)?.securityRules ?? [];
      assert.ok(!rules.some((r) => r.name === `jit-${id.toLowerCase()}`), `rule closed in ${nsgId}`);
    }
  });

  test('DELETE removes one policy and is audited; a scope without one is 404', async () => {
    const q = `policies?scope=${encodeURIComponent(DEMO.windowsVm.id)}`;
    const res = await api(sandbox, 'DELETE', q, undefined, ADMIN, asAdmin);
    assert.equal(res.status, 200);
    assert.deepEqual(
      res.body.removed.map((e: { scope: string }) => e.scope),
      [WIN_SCOPE],
    );
    assert.equal((await policyAuditEvents(sandbox)).at(-1)?.action, 'policy.removed');
    const again = await api(sandbox, 'DELETE', q, undefined, ADMIN, asAdmin);
    assert.equal(again.status, 404);
    assert.equal(again.headers.get('content-type'), 'application/problem+json');
  });

  test('jit policy apply, list, show and explain', async () => {
    const run = async (...args: string[]) => {
      const out: string[] = [];
      const err: string[] = [];
      const code = await runCli(
        ['--api', `${sandbox.baseUrl}/api`, '--user', ADMIN, '--roles', 'Jit.Admin', ...args],
        {
          out: (t) => out.push(t),
          err: (t) => err.push(t),
          env: cliEnv(),
        },
      );
      return { code, out: out.join('\n'), err: err.join('\n') };
    };
    const file = join(dir, 'policies.yaml');
    writeFileSync(file, ONLY_WIN);
    const first = await run('policy', 'apply', '-f', file);
    assert.equal(first.out, `+ added    ${WIN_SCOPE}\n1 added, 0 changed, 0 removed, 0 unchanged`);
    writeFileSync(file, WITH_VM_POLICY);

    const dry = await run('policy', 'apply', '-f', file, '--dry-run');
    assert.equal(dry.code, 0, dry.err);
    assert.equal(
      dry.out,
      [
        `+ added    ${RG_SCOPE}`,
        `+ added    ${VM_SCOPE}`,
        `~ changed  ${WIN_SCOPE}`,
        '    description: (none) -> RDP to the Windows demo VM, approved by a demo approver.',
        '    allowedSourcePrefixes: [my-ip] -> [my-ip, 203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32]',
        '    approval.mode: auto -> manual',
        '    approval.approvers: (none) -> [user:approver@example.com, user:approver2@example.com]',
        '    approval.required: (none) -> 1',
        '    approval.timeout: (none) -> PT1H',
        '    justification.required: false -> true',
        '2 added, 1 changed, 0 removed, 0 unchanged (dry run: nothing applied)',
      ].join('\n'),
    );
    const applied = await run('policy', 'apply', '-f', file);
    assert.equal(applied.code, 0, applied.err);
    assert.match(applied.out, /^2 added, 1 changed, 0 removed, 0 unchanged$/m);
    assert.equal(
      (await run('policy', 'apply', '-f', file)).out,
      '0 added, 0 changed, 0 removed, 3 unchanged',
    );

    const list = await run('policy', 'list');
    assert.equal(list.code, 0);
    assert.deepEqual(
      parseYaml(list.out).policies.map((p: { scope: string }) => p.scope),
      [RG_SCOPE, VM_SCOPE, WIN_SCOPE],
    );
    const show = await run('--output', 'json', 'policy', 'show', DEMO.linuxVm.id);
    assert.deepEqual(JSON.parse(show.out).requesters, ['user:alice@example.com']);

    // The VM as people write it in every command: <resource group>/<name> in the chosen subscription.
    const explain = await run(
      '--subscription',
      DEMO.subscriptionId,
      'policy',
      'explain',
      `${DEMO.resourceGroup}/${DEMO.linuxVm.name}`,
      '--port',
      '3389',
    );
    assert.equal(explain.code, 0, explain.err);
    assert.match(explain.out, new RegExp(`VM +${VM_SCOPE.replace(/[.]/g, '\\.')}  \\(policy, decides\\)`));
    assert.match(
      explain.out,
      /port 3389\/Tcp: not allowed by this policy \(broader policies do not add ports to it\)/,
    );

    const badText = WITH_VM_POLICY.replace('requesters: [user:alice@example.com]', 'requesters: [alice]');
    writeFileSync(file, badText);
    const badLine = badText.split('\n').findIndex((l) => l.includes('requesters: [alice]')) + 1;
    const bad = await run('policy', 'apply', '-f', file);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.err,
      [
        `${file}:${badLine}:18: policies[2].requesters[0]: "alice" must be *, user:<object id or UPN>, group:<group object id> or app:<client id (a GUID)> [bad-principal]`,
        `jit: ${file}: 1 problem; nothing was applied`,
      ].join('\n'),
    );
    const notAdmin = await runCli(
      ['--api', `${sandbox.baseUrl}/api`, '--user', 'alice@example.com', 'policy', 'list'],
      {
        out: () => undefined,
        err: () => undefined,
        env: cliEnv(),
      },
    );
    assert.equal(notAdmin, 3);
  });
});
