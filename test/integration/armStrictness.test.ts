/**
 * ARM as it really refuses — management locks, missing permissions, full NSGs, deny rules that shadow a grant,
 * Defender for Cloud's JIT rules next door — and what the service does about each, through the real SDK clients
 * against the sandbox's emulators.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import { api, startSandbox, waitFor } from '../support/sandbox';
import { appDeps, ask, auditEvents, grantRule, requestStatus } from '../support/network';
import { reconcile } from '../../shared/usecases/reconcile';

const VM = DEMO.linuxVm.id;
const RG_ID = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}`;

interface RuleView {
  nsgId: string;
  ruleName: string;
  priority: number;
  state: string;
  effective?: boolean;
  shadowedBy?: string;
  closeBlocked?: string;
}

describe('what ARM refuses, and what JIT does about it', () => {
  let sandbox: Sandbox;
  const logs: string[] = [];
  before(async () => {
    sandbox = await startSandbox({
      policiesFile: join(PROJECT_ROOT, 'test', 'fixtures', 'arm-policies.yaml'),
      hostLog: (level, fn, message) => logs.push(`${level} ${fn}: ${message}`),
      // The reconciler runs when a test calls it, not on the sandbox's timer in the middle of a test.
      settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  const rulesOf = async (id: string) => (await requestStatus(sandbox, id)).rules as RuleView[];
  const errorLogged = (event: string, requestId: string) =>
    logs.some((l) => l.startsWith('error') && l.includes(`"${event}"`) && l.includes(requestId));

  test('a CanNotDelete lock: at expiry the rule is turned to Deny, recorded and alerted, and deleted once the lock goes', async () => {
    sandbox.arm.locks.put(RG_ID, 'platform-no-delete', { properties: { level: 'CanNotDelete' } });
    try {
      const id = await ask(sandbox, { vm: VM, sourcePrefix: '203.0.113.41', duration: 'PT6S' });
      await waitFor(
        'the grant to be active',
        async () => (await requestStatus(sandbox, id)).status === 'active',
      );
      await waitFor(
        'the grant to expire',
        async () => (await requestStatus(sandbox, id)).status === 'expired',
        30_000,
        250,
      );
      for (const nsgId of DEMO.linuxVm.nsgIds) {
        const rule = grantRule(sandbox, nsgId, id);
        assert.ok(rule, `the lock kept the rule in ${nsgId}`);
        assert.equal(
          rule.properties.access,
          'Deny',
          `and it was turned to Deny in ${nsgId}: it lets nothing in`,
        );
        assert.equal(
          rule.properties.sourceAddressPrefix,
          '203.0.113.41/32',
          'nothing broader than the grant',
        );
      }
      assert.deepEqual(
        (await rulesOf(id)).map((r) => r.state),
        ['neutralised', 'neutralised'],
      );
      const events = await auditEvents(sandbox, odata`requestId eq ${id}`);
      assert.equal(events.filter((e) => e.action === 'grant.rule-neutralised').length, 2);
      assert.match(
        events.find((e) => e.action === 'grant.rule-neutralised')?.detail ?? '',
        /lock on .*demo-rg/,
      );
      assert.ok(errorLogged('grant.rule-neutralised', id), 'an error log line operators alert on');

      // Still locked: the reconciler retries the delete, changes nothing, and does not report it again.
      await reconcile(appDeps());
      assert.equal(grantRule(sandbox, DEMO.subnetNsgId, id)?.properties.access, 'Deny');
      sandbox.arm.locks.delete(RG_ID, 'platform-no-delete');
      await reconcile(appDeps());
      for (const nsgId of DEMO.linuxVm.nsgIds) assert.equal(grantRule(sandbox, nsgId, id), undefined);
      assert.deepEqual(
        (await rulesOf(id)).map((r) => r.state),
        ['removed', 'removed'],
      );
    } finally {
      sandbox.arm.locks.delete(RG_ID, 'platform-no-delete');
    }
  });

  test('a ReadOnly lock set while access is live: the request stays active and says why, an alert fires, and it closes once lifted', async () => {
    const id = await ask(sandbox, { vm: VM, sourcePrefix: '203.0.113.42', duration: 'PT5S' });
    await waitFor(
      'the grant to be active',
      async () => (await requestStatus(sandbox, id)).status === 'active',
    );
    sandbox.arm.locks.put(DEMO.linuxVm.nicNsgId, 'frozen', { properties: { level: 'ReadOnly' } });
    try {
      const blocked = await waitFor(
        'the request to say its access could not be closed',
        async () => {
          const s = await requestStatus(sandbox, id);
          return /could not be closed/.test(s.statusReason ?? '') ? s : undefined;
        },
        30_000,
        250,
      );
      assert.equal(blocked.status, 'active', 'nothing reads as closed while the allow rule lets traffic in');
      assert.match(blocked.statusReason ?? '', /ReadOnly lock on .*demo-vm-nic-nsg/);
      const nic = (await rulesOf(id)).find((r) => r.nsgId === DEMO.linuxVm.nicNsgId.toLowerCase());
      assert.equal(nic?.state, 'applied');
      assert.match(nic?.closeBlocked ?? '', /still allows Tcp 22 from 203\.0\.113\.42\/32/);
      assert.equal(grantRule(sandbox, DEMO.linuxVm.nicNsgId, id)?.properties.access, 'Allow');
      assert.ok(
        (await auditEvents(sandbox, odata`requestId eq ${id}`)).some(
          (e) => e.action === 'grant.close-blocked',
        ),
      );
      assert.ok(errorLogged('grant.close-blocked', id));
    } finally {
      sandbox.arm.locks.delete(DEMO.linuxVm.nicNsgId, 'frozen');
    }
    // Closed by whichever comes first: a redelivery of the expiry message, or the reconciler, which closes an
    // active grant only once its expiry and the grace (5 s) have passed. (The expiry message may already be
    // dead-lettered after its ten quick refusals, and the lock may have been lifted before the grace was over, so
    // one reconciler run at once is not enough: it runs on every check, as its timer would.)
    const deps = appDeps();
    await waitFor(
      'the grant to be closed',
      async () => {
        if ((await requestStatus(sandbox, id)).status === 'expired') return true;
        await reconcile(deps);
        return false;
      },
      30_000,
      500,
    );
    // A retry that ran while the lock was being lifted may have turned the rule to Deny first; the reconciler's
    // next run deletes it.
    await reconcile(deps);
    for (const nsgId of DEMO.linuxVm.nsgIds) assert.equal(grantRule(sandbox, nsgId, id), undefined);
  });

  test('a ReadOnly lock in the path refuses a request up front, naming the lock', async () => {
    sandbox.arm.locks.put(RG_ID, 'frozen-rg', { properties: { level: 'ReadOnly' } });
    try {
      const res = await api(sandbox, 'POST', 'requests', {
        vm: VM,
        ports: [22],
        sourcePrefix: '203.0.113.43',
        duration: 'PT1M',
      });
      assert.equal(res.status, 422, JSON.stringify(res.body));
      assert.match(
        res.body.detail,
        /ReadOnly lock 'frozen-rg' on .*demo-rg: JIT could neither open nor close/,
      );
    } finally {
      sandbox.arm.locks.delete(RG_ID, 'frozen-rg');
    }
  });

  test('a VM whose subnet lives in a hub resource group the role does not cover: 422 naming the permission and scope', async () => {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.spokeVm.id,
      ports: [22],
      sourcePrefix: '203.0.113.44',
      duration: 'PT1M',
    });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.body.type.endsWith('#networkpermissionmissing'), true, res.body.type);
    assert.equal(res.body.permission, 'Microsoft.Network/virtualNetworks/subnets/read');
    assert.equal(res.body.scope, DEMO.spokeVm.subnetId);
    assert.match(res.body.detail, /docs\/deploy\.md/);
  });

  test("jit policy apply and explain warn where the deployment cannot reach a policy's VMs (a hub resource group)", async () => {
    const asAdmin = { 'x-jit-dev-roles': 'Jit.Admin', 'content-type': 'application/yaml' };
    const fixture = readFileSync(join(PROJECT_ROOT, 'test', 'fixtures', 'arm-policies.yaml'), 'utf8');
    // The landing-zone policy changes (a longer SSH maximum), so it is checked again.
    const changed = fixture.replace(
      /(spoke-app-rg\n {4}ports:\n {6}- \{ port: 22, protocol: Tcp, maxDuration: )PT3H/,
      '$1PT4H',
    );
    assert.notEqual(changed, fixture);
    const dry = await api(sandbox, 'PUT', 'policies?dryRun=true', changed, 'admin@example.com', asAdmin);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    const warning = (dry.body.warnings as string[]).find((w) => w.includes(DEMO.spokeVm.id));
    assert.ok(warning, JSON.stringify(dry.body.warnings));
    assert.match(warning, /lacks Microsoft\.Network\/virtualNetworks\/subnets\/read on .*hub-network-rg/);
    // The demo VMs, reachable, draw no warning.
    assert.ok(!(dry.body.warnings as string[]).some((w) => w.includes('demo-rg')));

    const explained = await api(
      sandbox,
      'GET',
      `policies/explain?vm=${encodeURIComponent(DEMO.spokeVm.id)}`,
      undefined,
      'admin@example.com',
      { 'x-jit-dev-roles': 'Jit.Admin' },
    );
    assert.equal(explained.status, 200, JSON.stringify(explained.body));
    assert.match((explained.body.warnings as string[])[0] ?? '', /subnets\/read on .*hub-network-rg/);
    const fine = await api(
      sandbox,
      'GET',
      `policies/explain?vm=${encodeURIComponent(VM)}`,
      undefined,
      'admin@example.com',
      {
        'x-jit-dev-roles': 'Jit.Admin',
      },
    );
    assert.equal(fine.body.warnings, undefined);
  });

  test('a full NSG second in the path: the grant fails at once and writes nothing in the first', async () => {
    // A VM of its own, so that the filler rules disturb no other test.
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'full-vm',
      nics: [
        {
          name: 'full-vm-nic',
          nsg: 'full-vm-nic-nsg',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.8.4',
              subnet: {
                vnet: 'demo-vnet',
                name: 'full',
                addressPrefix: '10.0.8.0/24',
                nsg: 'full-subnet-nsg',
              },
            },
          ],
        },
      ],
    });
    const nsgOf = (name: string) =>
      `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}/providers/Microsoft.Network/networkSecurityGroups/${name}`;
    const startAt = new Date(Date.now() + 4000).toISOString();
    const submitted = await api(sandbox, 'POST', 'requests', {
      vm: `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}/providers/Microsoft.Compute/virtualMachines/full-vm`,
      ports: [22],
      sourcePrefix: '203.0.113.45',
      duration: 'PT1M',
      startAt,
    });
    assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
    const id = submitted.body.id as string;
    // Filled after the request was accepted and before it starts: 1,000 rules, Azure's limit.
    for (let i = 0; i < 1000; i++) {
      sandbox.arm.putRuleDirect(nsgOf('full-vm-nic-nsg'), {
        name: `operator-${i}`,
        properties: {
          protocol: 'Tcp',
          access: 'Deny',
          direction: 'Inbound',
          priority: 3000 + i,
          sourcePortRange: '*',
          sourceAddressPrefix: `198.18.${Math.floor(i / 256)}.${i % 256}`,
          destinationAddressPrefix: '*',
          destinationPortRange: '9999',
        },
      });
    }
    const writesBefore = sandbox.arm.log.filter((l) => l.method === 'PUT').length;
    const failed = await waitFor(
      'the grant to fail',
      async () => {
        const s = await requestStatus(sandbox, id);
        return s.status === 'failed' ? s : undefined;
      },
      30_000,
      250,
    );
    assert.match(
      failed.statusReason ?? '',
      /full-vm-nic-nsg is full: it holds 1000 rules and Azure allows 1000/,
    );
    assert.equal(grantRule(sandbox, nsgOf('full-subnet-nsg'), id), undefined);
    assert.equal(
      sandbox.arm.log.filter((l) => l.method === 'PUT').length,
      writesBefore,
      'not one rule was written anywhere',
    );
  });

  test('a policy with cutSessions turns on flushConnection on every NSG in the path before opening', async () => {
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'flush-vm',
      nics: [
        {
          name: 'flush-vm-nic',
          nsg: 'flush-vm-nic-nsg',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.9.4',
              subnet: {
                vnet: 'demo-vnet',
                name: 'flush',
                addressPrefix: '10.0.9.0/24',
                nsg: 'flush-subnet-nsg',
              },
            },
          ],
        },
      ],
    });
    const nsgIds = ['flush-subnet-nsg', 'flush-vm-nic-nsg'].map(
      (n) =>
        `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}/providers/Microsoft.Network/networkSecurityGroups/${n}`,
    );
    for (const nsgId of nsgIds) assert.equal(sandbox.arm.getNsg(nsgId)?.flushConnection, false);
    const id = await ask(sandbox, {
      vm: `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}/providers/Microsoft.Compute/virtualMachines/flush-vm`,
      sourcePrefix: '203.0.113.47',
      duration: 'PT1M',
    });
    await waitFor(
      'the grant to be active',
      async () => (await requestStatus(sandbox, id)).status === 'active',
    );
    for (const nsgId of nsgIds) {
      const nsg = sandbox.arm.getNsg(nsgId);
      assert.equal(nsg?.flushConnection, true, `flushConnection on ${nsgId}`);
      assert.ok(grantRule(sandbox, nsgId, id), `the rule in ${nsgId}`);
    }
    const before = nsgIds.map((n) => sandbox.arm.getNsg(n)?.flowReevaluations ?? 0);
    await api(sandbox, 'POST', `requests/${id}/revoke`, {});
    // Removing the rule re-evaluated each NSG's flows: the sessions it let in are cut.
    nsgIds.forEach((n, i) => assert.equal(sandbox.arm.getNsg(n)?.flowReevaluations, (before[i] ?? 0) + 1, n));
  });

  test('"internet" opens from the Internet service tag, not from *', async () => {
    const id = await ask(sandbox, { vm: VM, sourcePrefix: 'internet', duration: 'PT1M' });
    await waitFor(
      'the grant to be active',
      async () => (await requestStatus(sandbox, id)).status === 'active',
    );
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      assert.equal(grantRule(sandbox, nsgId, id)?.properties.sourceAddressPrefix, 'Internet');
    }
    await api(sandbox, 'POST', `requests/${id}/revoke`, {});
  });

  test('Defender for Cloud next door: a grant goes right above its deny rule and lets traffic in; its rules are never touched', async () => {
    // Their content (the NSG's shared etag changes with any rule written beside them).
    const defenderRules = () =>
      JSON.stringify(
        sandbox.arm
          .getNsg(DEMO.defenderVm.nicNsgId)
          ?.securityRules.filter((r) => r.name.startsWith('SecurityCenter-'))
          .map((r) => [r.name, r.properties]),
      );
    const before = defenderRules();
    const id = await ask(sandbox, { vm: DEMO.defenderVm.id, sourcePrefix: '203.0.113.46', duration: 'PT1M' });
    const active = await waitFor('the grant to be active', async () => {
      const s = await requestStatus(sandbox, id);
      return s.status === 'active' ? s : undefined;
    });
    const rules = active.rules as RuleView[];
    const nic = rules.find((r) => r.nsgId === DEMO.defenderVm.nicNsgId.toLowerCase());
    // The default band (1000-1999) starts at Defender's deny rule (1000): the grant goes into 900-999 instead.
    assert.deepEqual([nic?.priority, nic?.effective, nic?.shadowedBy], [900, true, undefined]);
    assert.equal(grantRule(sandbox, DEMO.defenderVm.nicNsgId, id)?.properties.priority, 900, 'so in the NSG');
    const subnet = rules.find((r) => r.nsgId === DEMO.defenderVm.subnetNsgId.toLowerCase());
    assert.equal(subnet?.effective, true);
    // The reconciler sweeps that NSG (it is watched now) and leaves Defender's rules exactly as they were.
    await reconcile(appDeps());
    assert.equal(defenderRules(), before);
    await api(sandbox, 'POST', `requests/${id}/revoke`, {});
  });
});
