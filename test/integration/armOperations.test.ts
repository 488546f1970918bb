/**
 * ARM's long-running operations, busy answers and throttling as Network RP gives them (dev/arm/), and what the
 * service makes of them: only a rule ARM shows `Succeeded` counts as in place, a `Failed` one is written again or
 * removed, a busy NSG is retried as soon as it is free, and a grant that took longer to open than it lasts still
 * closes (its expiry message, due before the grant is recorded active, waits for it: scheduledMessages.ts).
 */
import { after, before, describe, test } from 'node:test';
import type { TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { NetworkManagementClient } from '@azure/arm-network';
import type { TokenCredential } from '@azure/core-auth';
import { ArmEmulator, DEMO, JIT_ROLE_ACTIONS } from '../../dev/arm/emulator';
import type { ArmEmulatorOptions } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { ids } from '../../dev/arm/resource-ids';
import { ArmNetworkGateway } from '../../shared/adapters/armNetwork';
import { TransientFailure } from '../../shared/domain/errors';
import { reconcile } from '../../shared/usecases/reconcile';
import { collect } from '../../shared/usecases/baseline';
import { AUTO_POLICIES, startSandbox, waitFor } from '../support/sandbox';
import { appDeps, ask, auditEvents, grantRule, jitRules, requestIn, requestStatus } from '../support/network';
import { odata } from '@azure/data-tables';
import { aPolicy } from '../support/builders';

const credential: TokenCredential = {
  getToken: async () => ({ token: 'test', expiresOnTimestamp: Date.now() + 3600_000 }),
};

/** A VM of its own in the demo resource group, behind a subnet NSG and a NIC NSG named after it. */
function addVm(sandbox: Sandbox, name: string, octet: number): { vm: string; nsgs: string[] } {
  sandbox.arm.addVm({
    resourceGroup: DEMO.resourceGroup,
    name,
    nics: [
      {
        name: `${name}-nic`,
        nsg: `${name}-nic-nsg`,
        ipConfigurations: [
          {
            privateIpAddress: `10.0.${octet}.4`,
            subnet: {
              vnet: 'demo-vnet',
              name,
              addressPrefix: `10.0.${octet}.0/24`,
              nsg: `${name}-subnet-nsg`,
            },
          },
        ],
      },
    ],
  });
  const s = DEMO.subscriptionId;
  return {
    vm: ids.vm(s, DEMO.resourceGroup, name),
    nsgs: [
      ids.nsg(s, DEMO.resourceGroup, `${name}-subnet-nsg`),
      ids.nsg(s, DEMO.resourceGroup, `${name}-nic-nsg`),
    ],
  };
}

async function activeRequest(sandbox: Sandbox, id: string) {
  return waitFor(
    `request ${id} to be active`,
    async () => {
      const s = await requestStatus(sandbox, id);
      if (s.status === 'failed') throw new Error(`request failed: ${s.statusReason}`);
      return s.status === 'active' ? s : undefined;
    },
    30_000,
    200,
  );
}

describe('rule operations that end Failed', () => {
  let sandbox: Sandbox;
  before(async () => {
    // The reconciler runs when a test says so.
    sandbox = await startSandbox({
      policiesFile: AUTO_POLICIES,
      grantSettings: { maxArmAttempts: 5 },
      settings: { JIT_EXPIRY_GRACE: 'PT2S', JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a rule left Failed is written again: the grant goes active only over Succeeded rules', async () => {
    const { vm, nsgs } = addVm(sandbox, 'failop-vm', 20);
    // ARM accepts the first write to the NIC NSG and ends it Failed, leaving the rule there in that state.
    sandbox.arm.faults.failNextOperations({ pathIncludes: 'failop-vm-nic-nsg/securityRules/jit-', times: 1 });
    const id = await ask(sandbox, { vm, sourcePrefix: '203.0.113.20', duration: 'PT10M' });
    const status = await activeRequest(sandbox, id);
    for (const nsgId of nsgs)
      assert.equal(grantRule(sandbox, nsgId, id)?.properties.provisioningState, 'Succeeded', nsgId);
    assert.ok(status.rules.every((r) => r.state === 'applied'));
    const puts = sandbox.arm.log.filter(
      (e) =>
        e.method === 'PUT' &&
        e.path.toLowerCase().includes(`failop-vm-nic-nsg/securityrules/jit-${id.toLowerCase()}`),
    );
    assert.equal(puts.length, 2, 'the Failed write and the one that recovered it');
  });

  test('writes that keep ending Failed: the request fails, and its Failed rule is removed once ARM recovers', async () => {
    const { vm, nsgs } = addVm(sandbox, 'failing-vm', 21);
    // Every operation on the NIC NSG's JIT rules ends Failed, deletes included.
    sandbox.arm.faults.failNextOperations({
      pathIncludes: 'failing-vm-nic-nsg/securityRules/jit-',
      times: 1000,
    });
    try {
      const id = await ask(sandbox, { vm, sourcePrefix: '203.0.113.21', duration: 'PT10M' });
      const failed = await requestIn(sandbox, id, ['failed']);
      assert.match(failed.statusReason ?? '', /gave up writing rule jit-/);
      // The NIC NSG still shows the rule, Failed: ARM may be enforcing it, so it must not be forgotten.
      assert.equal(grantRule(sandbox, nsgs[1]!, id)?.properties.provisioningState, 'Failed');
      sandbox.arm.faults.clear();
      await reconcile(appDeps());
      await waitFor(
        'no rule of the failed grant left',
        () => nsgs.every((n) => !grantRule(sandbox, n, id)),
        20_000,
      );
      await waitFor('its rows to say removed', async () =>
        (await requestStatus(sandbox, id)).rules.every((r) => r.state === 'removed'),
      );
    } finally {
      sandbox.arm.faults.clear();
    }
  });

  test("the reconciler writes again a live grant's rule that ARM shows Failed", async () => {
    const { vm, nsgs } = addVm(sandbox, 'refail-vm', 22);
    const id = await ask(sandbox, { vm, sourcePrefix: '203.0.113.22', duration: 'PT10M' });
    await activeRequest(sandbox, id);
    const nicNsg = nsgs[1]!;
    const before = grantRule(sandbox, nicNsg, id)!;
    // Another write of the same rule (ARM's own maintenance, an operator's re-apply) whose operation ends Failed.
    sandbox.arm.faults.failNextOperations({ pathIncludes: `securityRules/${before.name}`, times: 1 });
    const client = new NetworkManagementClient(credential, DEMO.subscriptionId, {
      endpoint: sandbox.arm.endpoint,
      tlsOptions: { ca: sandbox.arm.caPem },
    });
    await assert.rejects(
      client.securityRules.beginCreateOrUpdateAndWait(DEMO.resourceGroup, 'refail-vm-nic-nsg', before.name, {
        ...before.properties,
      }),
      /has failed/,
    );
    assert.equal(grantRule(sandbox, nicNsg, id)?.properties.provisioningState, 'Failed');

    await reconcile(appDeps());
    const after = grantRule(sandbox, nicNsg, id);
    assert.equal(after?.properties.provisioningState, 'Succeeded');
    assert.equal(after?.properties.priority, before.properties.priority, 'at the priority it held');
    assert.equal(after?.properties.sourceAddressPrefix, '203.0.113.22/32');
    const rewritten = await auditEvents(
      sandbox,
      odata`requestId eq ${id} and action eq 'grant.rule-applied' and actor eq 'system:reconciler'`,
    );
    assert.equal(rewritten.length, 1);
  });
});

describe('the reconciler at scale', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({
      policiesFile: AUTO_POLICIES,
      settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test("reads a subscription's VM paths from three listings, not three reads per VM", async () => {
    const sub = '00000000-0000-0000-0000-0000000000b1';
    // The JIT role on the policy's scope, as a deployment assigns it (docs/deploy.md).
    sandbox.arm.roles.assign({
      principalId: DEMO.identity.objectId,
      scope: `/subscriptions/${sub}`,
      actions: [...JIT_ROLE_ACTIONS],
    });
    const vms = [0, 1, 2, 3].map((i) => {
      sandbox.arm.addVm({
        subscriptionId: sub,
        resourceGroup: 'bulk-rg',
        name: `bulk-vm-${i}`,
        nics: [
          {
            name: `bulk-vm-${i}-nic`,
            ipConfigurations: [
              {
                privateIpAddress: `10.5.0.${4 + i}`,
                subnet: { vnet: 'bulk-vnet', name: 'default', addressPrefix: '10.5.0.0/24', nsg: 'bulk-nsg' },
              },
            ],
          },
        ],
      });
      return ids.vm(sub, 'bulk-rg', `bulk-vm-${i}`).toLowerCase();
    });
    await appDeps().policies.upsert(
      aPolicy({ scope: `/subscriptions/${sub}`, allowedSourcePrefixes: ['203.0.113.0/24'] }),
    );
    const from = sandbox.arm.log.length;
    const report = await reconcile(appDeps());
    assert.equal(report.errors, 0);
    const coverage = (await collect(appDeps().nsgs.listCoverage())).filter((c) => vms.includes(c.vmId));
    assert.equal(coverage.length, 4, 'every VM covered');
    const bulkNsg = ids.nsg(sub, 'bulk-rg', 'bulk-nsg').toLowerCase();
    assert.ok(coverage.every((c) => c.guards.some((g) => g.nsgId === bulkNsg)));
    const reads = sandbox.arm.log.slice(from).filter((e) => e.method === 'GET' && e.path.includes(sub));
    const paths = reads.map((e) => e.path.toLowerCase());
    assert.ok(paths.includes(`/subscriptions/${sub}/providers/microsoft.network/networkinterfaces`));
    assert.ok(paths.includes(`/subscriptions/${sub}/providers/microsoft.network/virtualnetworks`));
    assert.deepEqual(
      paths.filter(
        (p) =>
          p.includes('/virtualmachines/') || p.includes('/networkinterfaces/') || p.includes('/subnets/'),
      ),
      [],
      'no VM, NIC or subnet read one by one',
    );
  });

  test('a run whose budget cannot reach every watched NSG still covers a new VM under an enforcing policy', async () => {
    const deps = appDeps();
    // Thirty watched NSGs that have never been swept: today's order would spend the whole budget on them.
    for (let i = 0; i < 30; i++) {
      const { nsgs } = addVm(sandbox, `watched-${i}`, 100 + i);
      await deps.nsgs.watchNsg(nsgs[1]!, { ports: [22], addresses: [`10.0.${100 + i}.4`] });
    }
    const { vm, nsgs } = addVm(sandbox, 'new-enforced-vm', 99);
    await deps.policies.upsert(
      aPolicy({ scope: vm, allowedSourcePrefixes: ['203.0.113.0/24'], enforce: true }),
    );
    const report = await reconcile(deps, { maxArmCalls: 30 });
    assert.equal(report.budgetSpent, true, 'the budget was the limit');
    for (const nsgId of nsgs)
      assert.ok(
        jitRules(sandbox, nsgId).some((r) => r.name.startsWith('jit-baseline-')),
        `a baseline deny rule in ${nsgId}`,
      );
  });
});

describe('a grant that takes longer to open than it lasts', () => {
  let sandbox: Sandbox;
  before(async () => {
    // Every rule operation takes 2.5 s: a grant of 2 s is over before its rules are in place.
    sandbox = await startSandbox({
      policiesFile: AUTO_POLICIES,
      arm: { operationLatencyInMs: 2500 },
      settings: { JIT_EXPIRY_GRACE: 'PT5M', JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('still closes: its expiry message, due before the grant went active, is not lost', async () => {
    const id = await ask(sandbox, { vm: DEMO.linuxVm.id, sourcePrefix: '203.0.113.30', duration: 'PT2S' });
    const s = await requestIn(sandbox, id, ['expired', 'failed'], 30_000, 200);
    assert.equal(s.status, 'expired');
    for (const nsgId of DEMO.linuxVm.nsgIds) assert.equal(grantRule(sandbox, nsgId, id), undefined, nsgId);
  });
});

/** An ARM emulator with `options`, stopped after the test, and the adapter polling its operations every 50 ms. */
async function gatewayAgainst(t: TestContext, options: ArmEmulatorOptions) {
  const arm = new ArmEmulator(options);
  await arm.start();
  t.after(() => arm.stop());
  const gateway = new ArmNetworkGateway(credential, {
    endpoint: arm.endpoint,
    caPem: arm.caPem,
    pollIntervalInMs: 50,
  });
  return { arm, gateway };
}

/** One of our rules: port 22 of demo-vm from a documentation address. */
const rule = (name: string, priority: number) => ({
  name,
  priority,
  protocol: 'Tcp' as const,
  sourceAddressPrefix: '203.0.113.7/32',
  destinationAddressPrefixes: [DEMO.linuxVm.privateIp],
  destinationPortRanges: ['22'],
  description: 'test',
});

describe('the ARM adapter against busy and throttled answers', () => {
  test('a busy NSG answered 429 RetryableError is handed back at once, not after the SDK waited out Retry-After', async (t) => {
    const { arm, gateway } = await gatewayAgainst(t, {
      operationLatencyInMs: 3000,
      operationRetryAfterInSeconds: 10,
      busyAnswer: 'RetryableError',
    });
    const first = gateway.putRule(DEMO.linuxVm.nicNsgId, rule('jit-first', 1000));
    await waitFor('the first operation to run', () =>
      arm.getNsg(DEMO.linuxVm.nicNsgId)?.securityRules.some((r) => r.name === 'jit-first'),
    );
    const busy = await gateway.putRule(DEMO.linuxVm.nicNsgId, rule('jit-second', 1001)).then(
      () => undefined,
      (err: unknown) => err,
    );
    assert.ok(busy instanceof TransientFailure, String(busy));
    assert.match(busy.message, /429 RetryableError/);
    assert.equal(busy.retryAfterInMs, undefined, 'the use case backs off on its own scale');
    const seconds = arm.log.filter((e) => e.method === 'PUT' && e.path.endsWith('/jit-second'));
    assert.deepEqual(
      seconds.map((e) => e.status),
      [429],
      'one attempt: the SDK did not sleep 10 s and try again',
    );
    await first;
  });

  test("ARM's throttling 429: the SDK waits out Retry-After and the write goes through", async (t) => {
    const { arm, gateway } = await gatewayAgainst(t, {
      throttling: {
        read: { size: 100, refillPerSecond: 100 },
        write: { size: 1, refillPerSecond: 1 },
        delete: { size: 100, refillPerSecond: 100 },
        globalFactor: 15,
      },
    });
    await gateway.putRule(DEMO.linuxVm.nicNsgId, rule('jit-a', 1000));
    await gateway.putRule(DEMO.linuxVm.nicNsgId, rule('jit-b', 1001));
    assert.deepEqual(
      arm.log.filter((e) => e.method === 'PUT').map((e) => e.status),
      [201, 429, 201],
    );
    const names = arm.getNsg(DEMO.linuxVm.nicNsgId)?.securityRules.map((r) => r.name);
    assert.ok(names?.includes('jit-a') && names.includes('jit-b'));
  });

  test("operation polls: fast while the subscription has reads to spare, at ARM's Retry-After once fewer than 50 are left", async (t) => {
    /** Polls of one rule write that runs 1.5 s with `Retry-After: 1`, under a read bucket of `readBucket` tokens. */
    const pollsOfOneWrite = async (readBucket: number): Promise<number> => {
      const { arm, gateway } = await gatewayAgainst(t, {
        operationLatencyInMs: 1500,
        operationRetryAfterInSeconds: 1,
        throttling: {
          // Refilled as fast as it is spent: the bucket never runs dry, so what differs is only what is reported left.
          read: { size: readBucket, refillPerSecond: readBucket },
          write: { size: 100, refillPerSecond: 100 },
          delete: { size: 100, refillPerSecond: 100 },
          globalFactor: 15,
        },
      });
      await gateway.putRule(DEMO.linuxVm.nicNsgId, rule('jit-polled', 1000));
      assert.equal(
        arm.getNsg(DEMO.linuxVm.nicNsgId)?.securityRules.find((r) => r.name === 'jit-polled')?.properties
          .provisioningState,
        'Succeeded',
      );
      assert.ok(!arm.log.some((e) => e.status === 429), 'nothing was throttled');
      return arm.log.filter((e) => e.method === 'GET' && e.path.includes('/operations/')).length;
    };
    // 1,000 reads left: every 50 ms for 1.5 s, some 30 polls.
    const plenty = await pollsOfOneWrite(1000);
    // 30 left (below 50): the first poll (the PUT reports writes, not reads), then one a second as ARM asks.
    const few = await pollsOfOneWrite(30);
    assert.ok(plenty >= 10, `${plenty} polls with reads to spare`);
    assert.ok(few <= 3, `${few} polls with few reads left`);
  });
});
