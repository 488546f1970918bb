/**
 * NSG mutation under contention and failure, and the reconciler that guarantees nothing stays open — through
 * the real Azure SDK clients against the sandbox's emulators.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { ulid } from 'ulid';
import { odata } from '@azure/data-tables';
import { AUTO_POLICIES, api, sleep, startSandbox, waitFor } from '../support/sandbox';
import {
  allGrantRules,
  appDeps,
  ask,
  auditActions,
  auditEvents,
  grantRule,
  jitRules,
  requestIn,
  requestStatus,
} from '../support/network';
import { SERVICE_BUS_QUEUES, TABLES } from '../../shared/names';
import { reconcile } from '../../shared/usecases/reconcile';
import { ensureBaselineDeny, removeBaselineDeny } from '../../shared/usecases/baseline';
import { applyPolicies } from '../../shared/usecases/policies';
import { PROJECT_ROOT } from '../../dev/sandbox';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { closingBegins } from '../support/observe';
import { person } from '../support/principals';
import { aPolicy } from '../support/builders';

const VM = DEMO.linuxVm.id;
const BAND = { min: 1000, max: 1999 };

describe('NSG rules under contention and failure', () => {
  let sandbox: Sandbox;
  before(async () => {
    // Five attempts per write: the bound is reached quickly where a test wants it reached.
    sandbox = await startSandbox({ grantSettings: { maxArmAttempts: 5 }, policiesFile: AUTO_POLICIES });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('fifty grants racing for one VM: fifty distinct priorities in each NSG, all applied, all closed', async () => {
    const started = Date.now();
    const ids = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        ask(sandbox, { vm: VM, sourcePrefix: `203.0.113.${i + 1}`, duration: 'PT45S' }),
      ),
    );
    // Watch the NSGs (the emulator's memory, free to read) rather than load the API with polls.
    await waitFor(
      'every rule in both NSGs',
      () => DEMO.linuxVm.nsgIds.every((nsgId) => ids.every((id) => grantRule(sandbox, nsgId, id))),
      60_000,
      100,
    );
    const writtenInMs = Date.now() - started;
    const statuses = await waitFor(
      'all fifty to be active',
      async () => {
        const all = await Promise.all(ids.map((id) => requestStatus(sandbox, id)));
        const bad = all.find((s) => s.status !== 'active' && s.status !== 'approved');
        if (bad) throw new Error(`request ${bad.id} is ${bad.status}: ${bad.statusReason}`);
        return all.every((s) => s.status === 'active') ? all : undefined;
      },
      20_000,
      500,
    );
    const appliedInMs = Date.now() - started;
    console.log(`# 50 concurrent grants on one VM: 100 rules in 2 NSGs written in ${writtenInMs} ms`);
    console.log(`# ... and all 50 requests active in ${appliedInMs} ms`);
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      const rules = ids.map((id) => grantRule(sandbox, nsgId, id));
      assert.ok(rules.every(Boolean), `every grant has its rule in ${nsgId}`);
      const priorities = rules.map((r) => r!.properties.priority);
      assert.equal(new Set(priorities).size, 50, `50 distinct priorities in ${nsgId}`);
      assert.ok(priorities.every((p) => p >= BAND.min && p <= BAND.max));
      // Each rule opens its own source, nothing shared.
      assert.deepEqual(
        rules.map((r) => r!.properties.sourceAddressPrefix).sort(),
        ids.map((_, i) => `203.0.113.${i + 1}/32`).sort(),
      );
    }
    assert.ok(statuses.every((s) => s.rules.length === 2 && s.rules.every((r) => r.state === 'applied')));

    // All fifty are the same VM and port, expiring in the order they went live: the first one closing must leave
    // every later one open (one rule per grant, never shared).
    const byExpiry = [...statuses].sort((a, b) => Date.parse(a.expiresAt!) - Date.parse(b.expiresAt!));
    const first = byExpiry[0]!;
    await waitFor(
      'the first grant to close',
      () => DEMO.linuxVm.nsgIds.every((n) => !grantRule(sandbox, n, first.id)),
      60_000,
      50,
    );
    const later = byExpiry.filter((s) => closingBegins(s) > Date.now() + 1500);
    assert.ok(later.length > 0, 'some grants expire later');
    for (const s of later)
      for (const nsgId of DEMO.linuxVm.nsgIds)
        assert.ok(grantRule(sandbox, nsgId, s.id), `${s.id} still open in ${nsgId}`);
    await waitFor(
      'every rule to be gone',
      () => DEMO.linuxVm.nsgIds.every((nsgId) => ids.every((id) => !grantRule(sandbox, nsgId, id))),
      60_000,
      200,
    );
    await waitFor(
      'all fifty to be expired',
      async () =>
        (await Promise.all(ids.map((id) => requestStatus(sandbox, id)))).every((s) => s.status === 'expired'),
      20_000,
      1000,
    );
    console.log(`# ... and all expired ${Date.now() - started} ms after the first request`);
    for (const nsgId of DEMO.linuxVm.nsgIds)
      assert.deepEqual(jitRules(sandbox, nsgId), [], `no jit- rule in ${nsgId}`);
    assert.deepEqual(allGrantRules(sandbox), []);
    // The operator's rule never moved.
    for (const nsgId of DEMO.linuxVm.nsgIds)
      assert.ok(sandbox.arm.getNsg(nsgId)?.securityRules.some((r) => r.name === DEMO.baselineRule.name));
  });

  test('a dual-stack VM: each grant opens only its source family, in every NSG in the path', async () => {
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'dual-vm',
      nics: [
        {
          name: 'dual-vm-nic',
          nsg: 'dual-vm-nic-nsg',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.6.4',
              subnet: {
                vnet: 'demo-vnet',
                name: 'dual',
                addressPrefix: '10.0.6.0/24',
                nsg: 'dual-subnet-nsg',
              },
            },
            {
              privateIpAddress: 'fd00:db8:0:6::4',
              subnet: { vnet: 'demo-vnet', name: 'dual', addressPrefix: 'fd00:db8:0:6::/64' },
            },
          ],
        },
      ],
    });
    const vm = VM.replace('demo-vm', 'dual-vm');
    const nsgs = ['dual-subnet-nsg', 'dual-vm-nic-nsg'].map(
      (n) => `${DEMO.subnetNsgId.replace('demo-subnet-nsg', n)}`,
    );
    const v6 = await ask(sandbox, { vm, sourcePrefix: '2001:db8::7', duration: 'PT1M' });
    const v4 = await ask(sandbox, { vm, sourcePrefix: '203.0.113.77', duration: 'PT1M' });
    await waitFor('both grants active', async () =>
      (await Promise.all([v6, v4].map((id) => requestStatus(sandbox, id)))).every(
        (s) => s.status === 'active',
      ),
    );
    for (const nsgId of nsgs) {
      const r6 = grantRule(sandbox, nsgId, v6)!.properties;
      assert.equal(r6.sourceAddressPrefix, '2001:db8::7/128');
      assert.deepEqual(r6.destinationAddressPrefixes, ['fd00:db8:0:6::4']);
      const r4 = grantRule(sandbox, nsgId, v4)!.properties;
      assert.equal(r4.sourceAddressPrefix, '203.0.113.77/32');
      assert.deepEqual(r4.destinationAddressPrefixes, ['10.0.6.4']);
    }
  });

  test('a VM with no NSG in its path is refused at once (422), and nothing is written', async () => {
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'bare-vm',
      nics: [
        {
          name: 'bare-vm-nic',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.7.4',
              subnet: { vnet: 'demo-vnet', name: 'bare', addressPrefix: '10.0.7.0/24' },
            },
          ],
        },
      ],
    });
    const res = await api(sandbox, 'POST', 'requests', {
      vm: VM.replace('demo-vm', 'bare-vm'),
      ports: [22],
      sourcePrefix: '203.0.113.8',
      duration: 'PT1M',
    });
    assert.equal(res.status, 422, JSON.stringify(res.body));
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
    assert.match(res.body.detail, /no network security group in its path/);
    // An IPv6 source for a VM without IPv6 says so too.
    const v6 = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      sourcePrefix: '2001:db8::9',
      duration: 'PT1M',
    });
    assert.equal(v6.status, 422);
    assert.match(v6.body.detail, /no private IPv6 address/);
  });

  test('ARM answering 409, 429, 5xx and failed operations at a rate: every grant ends expired or failed, nothing left', async () => {
    const jit = '/securityRules/jit-';
    const f = sandbox.arm.faults;
    f.inject({
      method: 'PUT',
      pathIncludes: jit,
      status: 409,
      code: 'AnotherOperationInProgress',
      rate: 0.2,
    });
    // A 429 makes the SDK itself wait its Retry-After (1 s): rarer, to keep the test short.
    f.inject({ method: 'PUT', pathIncludes: jit, status: 429, code: 'TooManyRequests', rate: 0.05 });
    f.inject({ method: 'PUT', pathIncludes: jit, status: 503, code: 'ServiceUnavailable', rate: 0.1 });
    f.inject({
      method: 'DELETE',
      pathIncludes: jit,
      status: 409,
      code: 'AnotherOperationInProgress',
      rate: 0.2,
    });
    f.inject({ method: 'DELETE', pathIncludes: jit, status: 500, code: 'InternalServerError', rate: 0.1 });
    f.inject({
      method: 'GET',
      pathIncludes: '/securityRules',
      status: 503,
      code: 'ServiceUnavailable',
      rate: 0.05,
    });
    f.failNextOperations({ pathIncludes: jit, times: 4 });
    const logFrom = sandbox.arm.log.length;
    try {
      const ids = await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          ask(sandbox, {
            vm: i % 2 ? VM : DEMO.windowsVm.id,
            ports: i % 2 ? [22] : [3389],
            sourcePrefix: `198.51.100.${100 + i}`,
            duration: 'PT5S',
          }),
        ),
      );
      const final = await waitFor(
        'every grant to end',
        async () => {
          const all = await Promise.all(ids.map((id) => requestStatus(sandbox, id)));
          return all.every((s) => s.status === 'expired' || s.status === 'failed') ? all : undefined;
        },
        90_000,
        1000,
      );
      for (const s of final.filter((x) => x.status === 'failed')) console.log(`# failed: ${s.statusReason}`);
      for (const s of final) {
        const actions = await auditActions(sandbox, s.id);
        if (s.status === 'expired')
          assert.ok(actions.includes('grant.activated'), `${s.id} was active first`);
      }
      // A failure is recorded first and its rules removed right after (so a retry can never re-open them).
      await waitFor(
        'every rule of these grants to be gone',
        () => allGrantRules(sandbox).every((r) => !ids.some((id) => r.name === `jit-${id.toLowerCase()}`)),
        15_000,
      );
      await waitFor('every row to say removed', async () =>
        (await Promise.all(ids.map((id) => requestStatus(sandbox, id)))).every((s) =>
          s.rules.every((r) => r.state === 'removed'),
        ),
      );
      const served = sandbox.arm.log.slice(logFrom).filter((l) => l.status === 409 || l.status >= 500);
      assert.ok(served.length >= 5, `faults were served (${served.length})`);
      console.log(
        `# faults: ${final.filter((s) => s.status === 'expired').length} expired, ` +
          `${final.filter((s) => s.status === 'failed').length} failed, ${served.length} faulted ARM answers`,
      );
    } finally {
      f.clear();
    }
  });

  test('a write that fails past the bound: the request fails with the reason and nothing it wrote stays', async () => {
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'fragile-vm',
      nics: [
        {
          name: 'fragile-vm-nic',
          nsg: 'fragile-nic-nsg',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.8.4',
              subnet: {
                vnet: 'demo-vnet',
                name: 'fragile',
                addressPrefix: '10.0.8.0/24',
                nsg: 'fragile-subnet-nsg',
              },
            },
          ],
        },
      ],
    });
    const nsgs = ['fragile-subnet-nsg', 'fragile-nic-nsg'].map((n) =>
      DEMO.subnetNsgId.replace('demo-subnet-nsg', n),
    );
    // The subnet NSG takes the rule; the NIC NSG stays busy for good.
    sandbox.arm.faults.inject({
      method: 'PUT',
      pathIncludes: 'fragile-nic-nsg/securityRules/jit-',
      status: 409,
      code: 'AnotherOperationInProgress',
      rate: 1,
    });
    try {
      const id = await ask(sandbox, {
        vm: VM.replace('demo-vm', 'fragile-vm'),
        sourcePrefix: '203.0.113.99',
        duration: 'PT2M',
      });
      await waitFor('the subnet rule to be written', () => grantRule(sandbox, nsgs[0]!, id));
      const s = await requestIn(sandbox, id, ['failed'], 60_000, 500);
      assert.match(
        s.statusReason ?? '',
        /gave up writing rule jit-.* after \d+ attempts: .*AnotherOperationInProgress/,
      );
      // Recorded first, removed right after (so a retry can never re-open what was given up).
      await waitFor('nothing left', () => nsgs.every((nsgId) => !grantRule(sandbox, nsgId, id)), 15_000);
      await waitFor('every row removed', async () =>
        (await requestStatus(sandbox, id)).rules.every((r) => r.state === 'removed'),
      );
      assert.deepEqual((await auditActions(sandbox, id)).slice(-1), ['grant.failed']);
    } finally {
      sandbox.arm.faults.clear();
    }
  });
});

describe('the reconciler', () => {
  let sandbox: Sandbox;
  before(async () => {
    // The timer's schedule is once a year: these tests decide when the reconciler runs (and assert what it did).
    sandbox = await startSandbox({
      policiesFile: AUTO_POLICIES,
      settings: { JIT_EXPIRY_GRACE: 'PT2S', JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('expiry messages lost by Service Bus: the reconciler closes those grants', async () => {
    const lost = new Set<string>();
    sandbox.serviceBus.faults.dropScheduled(SERVICE_BUS_QUEUES.expirations, (body) =>
      lost.has((body as { requestId: string }).requestId),
    );
    const ids = await Promise.all(
      [1, 2, 3].map((i) =>
        ask(sandbox, {
          vm: DEMO.windowsVm.id,
          ports: [3389],
          sourcePrefix: `198.51.100.${i}`,
          // Long enough to go live before it ends: one that does not is closed as it goes live (applyGrant).
          duration: 'PT8S',
        }),
      ),
    );
    ids.forEach((id) => lost.add(id));
    const active = await waitFor('all active', async () => {
      const all = await Promise.all(ids.map((id) => requestStatus(sandbox, id)));
      return all.every((s) => s.status === 'active') ? all : undefined;
    });
    // Past the expiry and the grace (2 s here): the messages were dropped, the rules are still there.
    const due = Math.max(...active.map((s) => Date.parse(s.expiresAt!))) + 2_000;
    await sleep(Math.max(0, due - Date.now()) + 200);
    for (const id of ids) assert.ok(grantRule(sandbox, DEMO.subnetNsgId, id), 'still open: no message came');
    await reconcile(appDeps());
    for (const id of ids) {
      assert.equal((await requestStatus(sandbox, id)).status, 'expired');
      assert.equal(grantRule(sandbox, DEMO.subnetNsgId, id), undefined);
      const expired = await auditEvents(sandbox, odata`requestId eq ${id} and action eq 'grant.expired'`);
      assert.equal(expired[0]?.actor, 'system:reconciler');
    }
    sandbox.serviceBus.faults.clear();
  });

  test('an orphan jit- rule is removed; a foreign rule is never touched; drift is audited once', async () => {
    const nsg = DEMO.subnetNsgId;
    const orphan = `jit-${ulid(Date.now() - 3600_000).toLowerCase()}`;
    const young = `jit-${ulid().toLowerCase()}`;
    const allow = (name: string, priority: number, source: string) => ({
      name,
      properties: {
        protocol: 'Tcp' as const,
        access: 'Allow' as const,
        direction: 'Inbound' as const,
        priority,
        sourcePortRange: '*',
        sourceAddressPrefix: source,
        destinationAddressPrefix: '*',
        destinationPortRange: '22',
      },
    });
    sandbox.arm.putRuleDirect(nsg, allow(orphan, 1990, '198.51.100.9'));
    // Too young to judge: its writer may be between steps.
    sandbox.arm.putRuleDirect(nsg, allow(young, 1991, '198.51.100.10'));
    sandbox.arm.putRuleDirect(nsg, allow('jit-notes', 1992, '198.51.100.11'));
    sandbox.arm.putRuleDirect(nsg, allow('allow-ssh-anywhere', 3000, '*'));
    const names = () => (sandbox.arm.getNsg(nsg)?.securityRules ?? []).map((r) => r.name);

    await reconcile(appDeps());
    assert.ok(!names().includes(orphan), 'the orphan is gone');
    assert.ok(names().includes(young), 'the young one stays');
    assert.ok(names().includes('jit-notes'), 'a foreign jit-something rule stays');
    assert.ok(names().includes('allow-ssh-anywhere'), "someone's broad allow stays");
    assert.ok(names().includes(DEMO.baselineRule.name));
    const removed = await auditEvents(sandbox, odata`action eq 'reconcile.orphan-removed'`);
    assert.ok(removed.some((e) => e.detail?.includes(orphan)));
    const drift = () => auditEvents(sandbox, odata`action eq 'drift.detected'`);
    const reported = (await drift()).filter((e) => e.detail?.includes('allow-ssh-anywhere'));
    assert.equal(reported.length, 1, 'drift audited');
    assert.match(reported[0]!.detail!, /allows Tcp 22 from \* to \* at priority 3000/);
    assert.ok(!(await drift()).some((e) => e.detail?.includes('jit-notes')), 'narrow sources are not drift');

    await reconcile(appDeps());
    assert.equal(
      (await drift()).filter((e) => e.detail?.includes('allow-ssh-anywhere')).length,
      1,
      'audited once',
    );
    for (const n of [young, 'jit-notes', 'allow-ssh-anywhere']) sandbox.arm.deleteRuleDirect(nsg, n);
  });

  test('the ARM call budget bounds a run; what is left is reported and the next run finishes it', async () => {
    // A policy whose resource group was deleted must not hold up the rest.
    await appDeps().policies.upsert(
      aPolicy({ scope: `/subscriptions/${DEMO.subscriptionId}/resourcegroups/deleted-rg`, enforce: true }),
    );
    const tight = await reconcile(appDeps(), { maxArmCalls: 2 });
    assert.equal(tight.budgetSpent, true);
    assert.ok(tight.armCalls <= 2);
    assert.ok(tight.stoppedIn);
    if (tight.stoppedIn === 'nsgs') assert.ok(tight.remaining.nsgs > 0, JSON.stringify(tight.remaining));
    const full = await reconcile(appDeps());
    assert.equal(full.budgetSpent, false);
    assert.equal(full.errors, 0);
  });

  test('enforcement: baseline deny rules for the VMs a policy covers, restored, drift, released', async () => {
    const rg = 'enforced-rg';
    const subnet = { vnet: 'enf-vnet', name: 'default', addressPrefix: '10.1.1.0/24', nsg: 'enf-subnet-nsg' };
    sandbox.arm.addVm({
      resourceGroup: rg,
      name: 'enf-a',
      nics: [
        {
          name: 'enf-a-nic',
          nsg: 'enf-a-nic-nsg',
          ipConfigurations: [{ privateIpAddress: '10.1.1.4', subnet }],
        },
      ],
    });
    sandbox.arm.addVm({
      resourceGroup: rg,
      name: 'enf-b',
      nics: [{ name: 'enf-b-nic', ipConfigurations: [{ privateIpAddress: '10.1.1.5', subnet }] }],
    });
    // A neighbour in another resource group on the same subnet: no policy covers it, so no rule may touch it.
    sandbox.arm.addVm({
      resourceGroup: 'other-rg',
      name: 'neighbour',
      nics: [
        {
          name: 'neighbour-nic',
          ipConfigurations: [{ privateIpAddress: '10.1.1.9', subnet: { ...subnet, resourceGroup: rg } }],
        },
      ],
    });
    const rgId = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${rg}`;
    const nsgId = (name: string) => `${rgId}/providers/Microsoft.Network/networkSecurityGroups/${name}`;
    const subnetNsg = nsgId('enf-subnet-nsg');
    const nicNsg = nsgId('enf-a-nic-nsg');
    const policy = aPolicy({ scope: rgId, allowedSourcePrefixes: ['203.0.113.0/24'], enforce: true });
    const deps = appDeps();
    await deps.policies.upsert(policy);
    const baselines = (id: string) =>
      (sandbox.arm.getNsg(id)?.securityRules ?? []).filter((r) => r.name.startsWith('jit-baseline-'));

    const first = await ensureBaselineDeny(deps, policy);
    // The subnet NSG's rule written for enf-a, then rewritten with enf-b's address too; the NIC NSG's for enf-a.
    assert.equal(first.rulesWritten, 3, JSON.stringify(first));
    // One rule per NSG for the port set and family, not one per VM (an NSG holds at most 1,000 rules).
    assert.deepEqual(
      baselines(subnetNsg).map((r) => r.properties.destinationAddressPrefixes),
      [['10.1.1.4', '10.1.1.5']],
    );
    assert.deepEqual(
      baselines(nicNsg).map((r) => r.properties.destinationAddressPrefixes),
      [['10.1.1.4']],
    );
    for (const r of [...baselines(subnetNsg), ...baselines(nicNsg)]) {
      assert.equal(r.properties.access, 'Deny');
      assert.equal(r.properties.sourceAddressPrefix, '*');
      assert.deepEqual(r.properties.destinationPortRanges, ['22']);
      assert.ok(r.properties.priority >= 2000 && r.properties.priority <= 2999, `${r.properties.priority}`);
    }
    assert.equal((await ensureBaselineDeny(deps, policy)).rulesWritten, 0, 'a second call changes nothing');

    // A grant sits above the baseline, so it opens what the baseline closes.
    const id = await ask(sandbox, {
      vm: `${rgId}/providers/Microsoft.Compute/virtualMachines/enf-a`,
      sourcePrefix: '203.0.113.5',
      duration: 'PT1M',
    });
    await waitFor('the grant', () => grantRule(sandbox, subnetNsg, id) && grantRule(sandbox, nicNsg, id));
    assert.ok(grantRule(sandbox, subnetNsg, id)!.properties.priority < 2000);

    // Someone deletes a baseline rule and opens SSH to everyone above it; another VM appears.
    const gone = baselines(subnetNsg)[0]!;
    sandbox.arm.deleteRuleDirect(subnetNsg, gone.name);
    sandbox.arm.putRuleDirect(subnetNsg, {
      name: 'open-ssh',
      properties: {
        protocol: 'Tcp',
        access: 'Allow',
        direction: 'Inbound',
        priority: 500,
        sourcePortRange: '*',
        sourceAddressPrefix: 'Internet',
        destinationAddressPrefix: '10.1.1.0/24',
        destinationPortRange: '22',
      },
    });
    sandbox.arm.addVm({
      resourceGroup: rg,
      name: 'enf-c',
      nics: [{ name: 'enf-c-nic', ipConfigurations: [{ privateIpAddress: '10.1.1.6', subnet }] }],
    });
    // Two runs at once (two instances, or the timer and a start-up run): same outcome, no errors.
    const runs = await Promise.all([reconcile(deps), reconcile(deps)]);
    assert.deepEqual(
      runs.map((r) => r.errors),
      [0, 0],
    );
    assert.ok(
      baselines(subnetNsg).some((r) => r.name === gone.name),
      'the deleted baseline rule is back',
    );
    const restored = await auditEvents(sandbox, odata`action eq 'baseline.restored'`);
    assert.equal(
      restored.filter((e) => e.detail?.includes(gone.name)).length,
      1,
      'restored once, audited once',
    );
    assert.deepEqual(
      baselines(subnetNsg).map((r) => [...r.properties.destinationAddressPrefixes].sort()),
      [['10.1.1.4', '10.1.1.5', '10.1.1.6']],
      'the new VM is covered, the neighbour is not',
    );
    const drift = (await auditEvents(sandbox, odata`action eq 'drift.detected'`)).filter((e) =>
      e.detail?.includes('open-ssh'),
    );
    assert.equal(drift.length, 1);
    assert.match(drift[0]!.detail!, /above the JIT baseline deny rule/);
    assert.ok(
      sandbox.arm.getNsg(subnetNsg)?.securityRules.some((r) => r.name === 'open-ssh'),
      'never touched',
    );

    // The policy stops enforcing: its rules go, and the reconciler does not bring them back.
    const relaxed = { ...policy, enforce: false };
    await deps.policies.upsert(relaxed);
    const removed = await removeBaselineDeny(deps, policy.scope);
    // The NIC NSG's rule, and the subnet NSG's once its last VM is released (narrowed before that).
    assert.equal(removed.rulesRemoved, 2);
    await reconcile(deps);
    assert.deepEqual(baselines(subnetNsg), []);
    assert.deepEqual(baselines(nicNsg), []);
    assert.ok(grantRule(sandbox, subnetNsg, id), "the grant's rule is not a baseline rule");
    assert.ok(sandbox.arm.getNsg(subnetNsg)?.securityRules.some((r) => r.name === 'open-ssh'));
    sandbox.arm.deleteRuleDirect(subnetNsg, 'open-ssh');
  });

  test('grants whose request ended with rules still recorded are cleaned up', async () => {
    const id = await ask(sandbox, { vm: VM, sourcePrefix: '203.0.113.200', duration: 'PT5M' });
    await waitFor('active', async () => (await requestStatus(sandbox, id)).status === 'active');
    // The request ends but the clean-up never ran (a crash between the two): only the live index knows.
    const requests = sandbox.table(TABLES.requests);
    // Conditional, so the write does not undo another: the activation's audit event is cleared from the row
    // just after the status shows `active`, which changes its ETag under a read made in between.
    await waitFor('the request row to be marked revoked behind the app', async () => {
      const row = await requests.getEntity<{ status: string }>(id, 'request');
      await requests.updateEntity({ partitionKey: id, rowKey: 'request', status: 'revoked' }, 'Merge', {
        etag: row.etag,
      });
      return true;
    });
    await requests.deleteEntity('open', id);
    for (const nsgId of DEMO.linuxVm.nsgIds) assert.ok(grantRule(sandbox, nsgId, id));
    const report = await reconcile(appDeps());
    assert.ok(report.leftoversRemoved >= 1 || DEMO.linuxVm.nsgIds.every((n) => !grantRule(sandbox, n, id)));
    for (const nsgId of DEMO.linuxVm.nsgIds) assert.equal(grantRule(sandbox, nsgId, id), undefined);
  });

  test('a policy document with enforce: true puts the baseline in place through the policies use case', async () => {
    sandbox.arm.addVm({
      resourceGroup: 'hook-rg',
      name: 'hook-vm',
      nics: [
        {
          name: 'hook-vm-nic',
          nsg: 'hook-nic-nsg',
          ipConfigurations: [
            { privateIpAddress: '10.2.1.4', subnet: { vnet: 'hook-vnet', name: 'default' } },
          ],
        },
      ],
    });
    const nsg = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/hook-rg/providers/Microsoft.Network/networkSecurityGroups/hook-nic-nsg`;
    const baselines = () =>
      (sandbox.arm.getNsg(nsg)?.securityRules ?? []).filter((r) => r.name.startsWith('jit-baseline-'));
    const admin = person('admin@example.com', [], ['Jit.Admin']);
    const base = readFileSync(join(PROJECT_ROOT, 'dev', 'policies.yaml'), 'utf8');
    const enforced = `${base}
  - scope: /subscriptions/${DEMO.subscriptionId}/resourceGroups/hook-rg
    ports:
      - { port: 22, protocol: Tcp, maxDuration: PT1H }
    allowedSourcePrefixes: [my-ip]
    requesters: ['*']
    approval: { mode: auto }
    enforce: true
`;
    const on = await applyPolicies(appDeps(), admin, { text: enforced, source: 'test.yaml' });
    assert.deepEqual(on.warnings, []);
    assert.deepEqual(
      baselines().map((r) => [r.properties.access, r.properties.destinationAddressPrefixes]),
      [['Deny', ['10.2.1.4']]],
    );
    const off = await applyPolicies(appDeps(), admin, { text: base, source: 'dev/policies.yaml' });
    assert.deepEqual(off.warnings, []);
    assert.deepEqual(baselines(), []);
  });
});
