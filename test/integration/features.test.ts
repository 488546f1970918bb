/**
 * Revocation needs only storage, Service Bus and ARM. A host whose approval key is a Key Vault reference App Service
 * could not resolve (it then passes the reference text itself) and whose mail setting is wrong still opens
 * auto-approved grants, closes them on time, revokes and reconciles; it refuses what needs the broken features with
 * a clear 503, and GET /api/health says what is off. The host runs in a child process that reads its settings from
 * process.env, as an instance in Azure does; the sandbox around it (which seeds the policies) has sound settings. A second host, whose authentication setting is broken, shows what that
 * means: no caller can be identified, so the routes that need one answer 503 while the timer keeps working.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import { ulid } from 'ulid';
import { DEMO } from '../../dev/arm/emulator';
import type { HostProcess } from '../../dev/host/hostProcess';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { TABLES } from '../../shared/names';
import { allGrantRules, ask, auditEvents, requestStatus } from '../support/network';
import { closingBegins } from '../support/observe';
import { OpenApiChecker } from '../support/openapi';
import { api, startSandbox, waitFor } from '../support/sandbox';

const UNRESOLVED = '@Microsoft.KeyVault(SecretUri=https://x.vault.azure.net/secrets/k/)';
const BROKEN_PORT = 'twenty-five';
const ADMIN = { 'x-jit-dev-roles': 'Jit.Admin' };
/** Every answer below is also checked against openapi.yaml. */
const spec = new OpenApiChecker();
const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string })
  .version;

/** An allow rule named like a grant's, older than any writer could still be working on, that no grant owns. */
function orphanRule(sourceAddress: string) {
  return {
    name: `jit-${ulid(Date.now() - 3600_000).toLowerCase()}`,
    properties: {
      protocol: 'Tcp' as const,
      access: 'Allow' as const,
      direction: 'Inbound' as const,
      priority: 1990,
      sourcePortRange: '*',
      sourceAddressPrefix: sourceAddress,
      destinationAddressPrefix: '*',
      destinationPortRange: '22',
    },
  };
}

async function orphanRemoved(sandbox: Sandbox, name: string): Promise<void> {
  await waitFor('the reconciler to remove the orphan rule', () =>
    sandbox.arm.getNsg(DEMO.subnetNsgId)?.securityRules.every((r) => r.name !== name),
  );
  // The rule goes first, its audit event right after.
  await waitFor('the removal in the audit trail', async () =>
    (await auditEvents(sandbox, odata`action eq 'reconcile.orphan-removed'`)).some(
      (e) => e.actor === 'system:reconciler' && e.detail?.includes(name),
    ),
  );
}

describe('a host whose approval key is an unresolved Key Vault reference and whose mail setting is broken', () => {
  let sandbox: Sandbox;
  let host: HostProcess;
  const output = () => host.output.join('');

  before(async () => {
    sandbox = await startSandbox({ startHost: false });
    host = await sandbox.spawnHost({
      settingsInEnvironment: true,
      settings: {
        JIT_APPROVAL_KEY: UNRESOLVED,
        JIT_SMTP_PORT: BROKEN_PORT,
        // The reconciler every five seconds, so the test sees it run; a long grace, so that it is the Service Bus
        // message, not the reconciler, that closes a grant at its expiry.
        JIT_RECONCILE_SCHEDULE: '*/5 * * * * *',
        JIT_EXPIRY_GRACE: 'PT1M',
      },
    });
  });
  after(async () => {
    await host?.stop();
    await sandbox?.stop();
  });

  test('GET /api/health: degraded and the version to anyone; the broken settings, never their values, to admins', async () => {
    const anonymous = await api(host, 'GET', 'health', undefined, null);
    spec.check('GET', '/health', anonymous);
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.body, { status: 'degraded', version: VERSION });
    assert.equal(anonymous.headers.get('cache-control'), 'no-store');
    const someone = await api(host, 'GET', 'health');
    assert.equal(someone.body.features, undefined, 'no detail without Jit.Admin');

    const admin = await api(host, 'GET', 'health', undefined, 'ops@example.com', ADMIN);
    spec.check('GET', '/health', admin);
    assert.equal(admin.status, 200);
    assert.equal(admin.body.status, 'degraded');
    const { features } = admin.body;
    assert.deepEqual(features.authentication, { ready: true });
    assert.deepEqual(features.requests, { ready: true });
    assert.equal(features.approval.ready, false);
    assert.equal(features.approval.setting, 'JIT_APPROVAL_KEY');
    assert.match(features.approval.reason, /unresolved Key Vault reference/);
    assert.equal(features.mail.ready, false);
    assert.equal(features.mail.setting, 'JIT_SMTP_PORT');
    assert.match(features.mail.reason, /must be a port number/);
    const text = JSON.stringify(admin.body);
    assert.ok(!text.includes('vault.azure.net') && !text.includes(BROKEN_PORT), 'no value is shown');

    // The host said so in its log when it built its services, with the same names and no values.
    await waitFor('the feature report in the log', () => output().includes('config.feature-unavailable'));
    const lines = output()
      .split('\n')
      .filter((l) => l.includes('config.feature-unavailable'));
    assert.ok(
      lines.some((l) => l.includes('"setting":"JIT_APPROVAL_KEY"') && l.includes('"feature":"approval"')),
    );
    assert.ok(lines.some((l) => l.includes('"setting":"JIT_SMTP_PORT"') && l.includes('"feature":"mail"')));
    assert.ok(!output().includes('vault.azure.net') && !output().includes(BROKEN_PORT));
  });

  test('a request under manual approval gets a 503 naming the feature, and nothing is stored', async () => {
    const res = await api(host, 'POST', 'requests', {
      vm: DEMO.windowsVm.id,
      ports: [3389],
      sourcePrefix: '203.0.113.20',
      duration: 'PT30M',
      justification: 'patch Tuesday',
    });
    assert.equal(res.status, 503);
    spec.check('POST', '/requests', res);
    assert.equal(res.body.feature, 'approval');
    assert.match(res.body.type, /#featureunavailable$/);
    assert.match(res.body.detail, /Manual approval/);
    // The first request of this host: the table must still be empty.
    for await (const row of sandbox.table(TABLES.requests).listEntities())
      assert.fail(`a request was stored: ${JSON.stringify(row)}`);
    // The approval pages need the signing keys too: they say so instead of failing obscurely.
    const page = await fetch(`${host.baseUrl}/api/approvals?token=x`);
    assert.equal(page.status, 503);
    assert.match(await page.text(), /switched off/);
  });

  test('an auto-approved grant opens, and its rules are removed at expiry by the Service Bus message', async () => {
    const id = await ask(host, { vm: DEMO.linuxVm.id, sourcePrefix: '203.0.113.21', duration: 'PT4S' });
    const live = await waitFor('the grant to be active', async () => {
      const s = await requestStatus(host, id);
      return s.status === 'active' ? s : undefined;
    });
    const ruleName = `jit-${id.toLowerCase()}`;
    const written = allGrantRules(sandbox).filter((r) => r.name === ruleName);
    assert.deepEqual(
      written.map((r) => r.nsgId).sort(),
      [...DEMO.linuxVm.nsgIds].sort(),
      'every NSG in the path',
    );

    await waitFor('the grant to expire', async () => (await requestStatus(host, id)).status === 'expired');
    assert.deepEqual(
      allGrantRules(sandbox).filter((r) => r.name === ruleName),
      [],
      'the rules are gone from the ARM emulator',
    );
    const expired = await auditEvents(sandbox, odata`requestId eq ${id} and action eq 'grant.expired'`);
    assert.equal(expired[0]?.actor, 'system:expiry', 'closed by its expiry message, not the reconciler');
    assert.ok(closingBegins(live) <= Date.now(), 'not before closing was due');
    // What mail would have told the requester is skipped with a log line, not an error.
    assert.ok(output().includes('notify.skipped') && output().includes(id));
    assert.deepEqual(sandbox.mail.list(), [], 'no mail went out');
  });

  test('a revoke closes a live grant at once', async () => {
    const id = await ask(host, { vm: DEMO.linuxVm.id, sourcePrefix: '203.0.113.22', duration: 'PT30M' });
    await waitFor('the grant to be active', async () => (await requestStatus(host, id)).status === 'active');
    const ruleName = `jit-${id.toLowerCase()}`;
    assert.ok(allGrantRules(sandbox).some((r) => r.name === ruleName));
    const res = await api(host, 'POST', `requests/${id}/revoke`);
    assert.equal(res.status, 200);
    assert.equal(res.body.status, 'revoked');
    assert.deepEqual(
      allGrantRules(sandbox).filter((r) => r.name === ruleName),
      [],
    );
  });

  test('the reconciler runs: an orphan jit- rule is removed', async () => {
    const orphan = orphanRule('198.51.100.30');
    sandbox.arm.putRuleDirect(DEMO.subnetNsgId, orphan);
    await orphanRemoved(sandbox, orphan.name);
  });
});

describe('a host whose authentication setting is broken', () => {
  let sandbox: Sandbox;
  let host: HostProcess;

  before(async () => {
    sandbox = await startSandbox({ startHost: false });
    host = await sandbox.spawnHost({
      settingsInEnvironment: true,
      settings: { JIT_AUTH_MODE: 'dev-please', JIT_RECONCILE_SCHEDULE: '*/5 * * * * *' },
    });
  });
  after(async () => {
    await host?.stop();
    await sandbox?.stop();
  });

  test('routes that need a caller answer 503; health and the timer keep working', async () => {
    for (const [method, path] of [
      ['GET', 'requests'],
      ['POST', 'requests'],
      ['GET', 'policies'],
    ] as const) {
      const res = await api(host, method, path, method === 'POST' ? {} : undefined, 'ops@example.com', ADMIN);
      assert.equal(res.status, 503, `${method} ${path}`);
      spec.check(method, `/${path}`, res);
      assert.equal(res.body.feature, 'authentication');
    }
    // Nobody can be recognised as an admin: everyone gets the overall status.
    const health = await api(host, 'GET', 'health', undefined, 'ops@example.com', ADMIN);
    assert.deepEqual(health.body, { status: 'degraded', version: VERSION });

    const orphan = orphanRule('198.51.100.31');
    // The reconciler sweeps the NSGs of the policies' VMs (its coverage phase); give it one to find.
    sandbox.arm.putRuleDirect(DEMO.subnetNsgId, orphan);
    await orphanRemoved(sandbox, orphan.name);
  });
});
