/**
 * The ARM emulator, exercised through the real `@azure/arm-compute` and `@azure/arm-network`
 * clients: what these tests assert is what the JIT adapters will observe.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request } from 'node:https';
import { describe, it, type TestContext } from 'node:test';
import { promisify } from 'node:util';

import { ComputeManagementClient } from '@azure/arm-compute';
import { NetworkManagementClient, type SecurityRule } from '@azure/arm-network';
import { ManagementLockClient } from '@azure/arm-locks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenCredential } from '@azure/core-auth';

import {
  ArmEmulator,
  DEMO,
  JIT_ROLE_ACTIONS,
  type ArmEmulatorOptions,
  type NsgState,
} from '../../dev/arm/emulator';
import { PROJECT_ROOT } from '../../dev/sandbox';

const execFileAsync = promisify(execFile);

/** A bearer token shaped like Entra ID's (unsigned: the emulator reads its claims, as ARM reads them after checking). */
function jwt(claims: { oid: string; appid: string }): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.`;
}

function credentialOf(token: string): TokenCredential {
  return { getToken: async () => ({ token, expiresOnTimestamp: Date.now() + 3600_000 }) };
}

/** An Owner of everything (assigned in setup): the emulator's own behaviour, apart from authorization. */
const OWNER = { oid: '0000aaaa-0000-4000-8000-000000000001', appid: '0000aaaa-0000-4000-8000-0000000000a1' };
const credential = credentialOf(jwt(OWNER));
/** The deployment's identity: an opaque token is the emulator's default principal, DEMO.identity. */
const deploymentCredential = credentialOf('sandbox-token');

const rg = DEMO.resourceGroup;
const nicNsg = 'demo-vm-nic-nsg';
const subnetNsg = 'demo-subnet-nsg';

/** Starts a fresh emulator (stopped after the test) and clients pointed at it. */
async function setup(t: TestContext, options: ArmEmulatorOptions = {}) {
  const emulator = new ArmEmulator(options);
  emulator.roles.assign({ principalId: OWNER.oid, scope: '/', actions: ['*'] });
  t.after(() => emulator.stop());
  await emulator.start();
  const clientOptions = {
    endpoint: emulator.endpoint,
    tlsOptions: { ca: emulator.caPem },
    // Keep SDK retries of 5xx fast; the throttling policy still honours Retry-After on 429.
    retryOptions: { maxRetries: 3, retryDelayInMs: 10, maxRetryDelayInMs: 50 },
  };
  return {
    emulator,
    network: new NetworkManagementClient(credential, DEMO.subscriptionId, clientOptions),
    compute: new ComputeManagementClient(credential, DEMO.subscriptionId, clientOptions),
  };
}

function jitRule(overrides: Partial<SecurityRule> = {}): SecurityRule {
  return {
    protocol: 'Tcp',
    access: 'Allow',
    direction: 'Inbound',
    priority: 200,
    sourceAddressPrefix: '203.0.113.7/32',
    sourcePortRange: '*',
    destinationAddressPrefix: DEMO.linuxVm.privateIp,
    destinationPortRange: '22',
    ...overrides,
  };
}

function ruleNames(nsg: NsgState | undefined): string[] {
  assert.ok(nsg, 'NSG exists');
  return nsg.securityRules.map((r) => r.name);
}

/** Asserts a rejection with the SDK's RestError carrying this ARM status and code. */
async function rejectsWithArm(promise: Promise<unknown>, statusCode: number, code: string): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => {
    caught = error;
    return true;
  });
  const error = caught as { name?: string; statusCode?: number; code?: string; message?: string };
  assert.equal(error.name, 'RestError', `expected a RestError, got ${String(error.message)}`);
  assert.equal(error.statusCode, statusCode, error.message);
  assert.equal(error.code, code, error.message);
  return caught as Error;
}

function lastSegment(id: string | undefined): string {
  assert.ok(id);
  return id.slice(id.lastIndexOf('/') + 1);
}

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  json: unknown;
}

/** A request outside the SDK, to see exactly what goes over the wire. */
function raw(
  emulator: ArmEmulator,
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: unknown } = {},
): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const url = new URL(path, emulator.endpoint);
    const body = options.body === undefined ? undefined : JSON.stringify(options.body);
    const req = request(
      url,
      {
        method,
        ca: emulator.caPem,
        agent: false,
        headers: { ...(body ? { 'Content-Type': 'application/json' } : {}), ...options.headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            json: text ? JSON.parse(text) : undefined,
          });
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

const bearer = { Authorization: 'Bearer dev' };

// An emulator bug that strands an operation leaves the SDK polling forever: fail instead of hanging.
const LIMIT = { timeout: 10_000 };

void describe('ARM emulator through the real Azure SDK clients', () => {
  void it('resolves a VM to the NSGs in front of it (VM → NIC → subnet → NSG)', LIMIT, async (t) => {
    const { compute, network } = await setup(t);

    const vm = await compute.virtualMachines.get(rg, DEMO.linuxVm.name);
    assert.equal(vm.id, DEMO.linuxVm.id);
    assert.equal(vm.vmId, DEMO.linuxVm.vmId);
    assert.equal(vm.storageProfile?.osDisk?.osType, 'Linux');
    const nicRefs = vm.networkProfile?.networkInterfaces ?? [];
    assert.deepEqual(
      nicRefs.map((n) => n.id),
      [DEMO.linuxVm.nicId],
    );

    const nic = await network.networkInterfaces.get(rg, lastSegment(nicRefs[0]?.id));
    assert.equal(nic.networkSecurityGroup?.id, DEMO.linuxVm.nicNsgId);
    assert.equal(nic.virtualMachine?.id, DEMO.linuxVm.id);
    const ipConfiguration = nic.ipConfigurations?.[0];
    assert.equal(ipConfiguration?.privateIPAddress, DEMO.linuxVm.privateIp);
    assert.equal(ipConfiguration?.privateIPAddressVersion, 'IPv4');
    assert.equal(ipConfiguration?.primary, true);
    assert.equal(ipConfiguration?.subnet?.id, DEMO.subnetId);

    const subnet = await network.subnets.get(rg, 'demo-vnet', 'default');
    assert.equal(subnet.addressPrefix, '10.0.1.0/24');
    assert.equal(subnet.networkSecurityGroup?.id, DEMO.subnetNsgId);
    const vnet = await network.virtualNetworks.get(rg, 'demo-vnet');
    assert.deepEqual(vnet.addressSpace?.addressPrefixes, ['10.0.0.0/16']);

    const nsg = await network.networkSecurityGroups.get(rg, lastSegment(subnet.networkSecurityGroup?.id));
    assert.equal(nsg.location, 'westeurope');
    assert.deepEqual(
      nsg.securityRules?.map((r) => [r.name, r.priority, r.access, r.destinationPortRanges]),
      [['deny-mgmt-inbound', 4000, 'Deny', ['22', '3389']]],
    );
    assert.deepEqual(
      nsg.defaultSecurityRules?.map((r) => `${r.direction} ${r.priority} ${r.name}`),
      [
        'Inbound 65000 AllowVnetInBound',
        'Inbound 65001 AllowAzureLoadBalancerInBound',
        'Inbound 65500 DenyAllInBound',
        'Outbound 65000 AllowVnetOutBound',
        'Outbound 65001 AllowInternetOutBound',
        'Outbound 65500 DenyAllOutBound',
      ],
    );

    // The Windows VM's NIC has no NSG of its own: only the subnet NSG filters it.
    const win = await compute.virtualMachines.get(rg, DEMO.windowsVm.name);
    assert.equal(win.storageProfile?.osDisk?.osType, 'Windows');
    const winNic = await network.networkInterfaces.get(
      rg,
      lastSegment(win.networkProfile?.networkInterfaces?.[0]?.id),
    );
    assert.equal(winNic.networkSecurityGroup, undefined);
    assert.equal(winNic.ipConfigurations?.[0]?.privateIPAddress, DEMO.windowsVm.privateIp);
  });

  void it('lists VMs and NSGs by resource group and subscription', LIMIT, async (t) => {
    const { compute, network } = await setup(t);
    const vms = [];
    for await (const vm of compute.virtualMachines.list(rg)) vms.push(vm.name);
    assert.deepEqual(vms.sort(), ['demo-vm', 'demo-win']);
    const inGroup = [];
    for await (const nsg of network.networkSecurityGroups.list(rg)) inGroup.push(nsg.id);
    const inSubscription = [];
    for await (const nsg of network.networkSecurityGroups.listAll()) inSubscription.push(nsg.id);
    assert.deepEqual(inGroup.sort(), [DEMO.subnetNsgId, DEMO.linuxVm.nicNsgId].sort());
    assert.deepEqual(
      inSubscription.sort(),
      [...inGroup, DEMO.defenderVm.subnetNsgId, DEMO.defenderVm.nicNsgId].sort(),
    );
  });

  void it('matches names case-insensitively and answers with canonical ids', LIMIT, async (t) => {
    const { network } = await setup(t);
    const nsg = await network.networkSecurityGroups.get('DEMO-RG', 'Demo-Subnet-NSG');
    assert.equal(nsg.id, DEMO.subnetNsgId);
    const rule = await network.securityRules.get('Demo-Rg', 'DEMO-SUBNET-NSG', 'DENY-MGMT-INBOUND');
    assert.equal(rule.name, 'deny-mgmt-inbound');
  });

  void it('creates a rule with beginCreateOrUpdateAndWait and shows it in the NSG', LIMIT, async (t) => {
    const { emulator, network } = await setup(t);
    const etagBefore = emulator.getNsg(DEMO.linuxVm.nicNsgId)?.etag;

    const created = await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-01', jitRule());
    assert.equal(created.provisioningState, 'Succeeded');
    assert.equal(created.id, `${DEMO.linuxVm.nicNsgId}/securityRules/jit-01`);
    assert.equal(created.sourceAddressPrefix, '203.0.113.7/32');
    assert.ok(created.etag && created.etag !== etagBefore, 'a fresh etag');

    const nsg = await network.networkSecurityGroups.get(rg, nicNsg);
    assert.deepEqual(
      nsg.securityRules?.map((r) => r.name),
      ['deny-mgmt-inbound', 'jit-01'],
    );
    assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound', 'jit-01']);
    assert.deepEqual(
      ruleNames(emulator.getNsg(DEMO.subnetNsgId)),
      ['deny-mgmt-inbound'],
      'other NSG untouched',
    );

    // PUT on an existing name is an update (200), with the new content and another fresh etag.
    const updated = await network.securityRules.beginCreateOrUpdateAndWait(
      rg,
      nicNsg,
      'jit-01',
      jitRule({ destinationPortRange: '3389' }),
    );
    assert.equal(updated.destinationPortRange, '3389');
    assert.notEqual(updated.etag, created.etag);
    const puts = emulator.log.filter((e) => e.method === 'PUT').map((e) => e.status);
    assert.deepEqual(puts, [201, 200]);
  });

  void it('deletes a rule, and deleting it again resolves (204)', LIMIT, async (t) => {
    const { emulator, network } = await setup(t);
    await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-02', jitRule());

    await network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-02');
    assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound']);
    await rejectsWithArm(network.securityRules.get(rg, nicNsg, 'jit-02'), 404, 'NotFound');

    await network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-02');
    const deletes = emulator.log.filter((e) => e.method === 'DELETE').map((e) => e.status);
    assert.deepEqual(deletes, [202, 204]);
  });

  void it(
    'refuses a rule with the priority and direction of another: SecurityRuleConflict',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const error = await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(
          rg,
          subnetNsg,
          'jit-03',
          jitRule({ priority: 4000 }),
        ),
        400,
        'SecurityRuleConflict',
      );
      assert.match(error.message, /deny-mgmt-inbound conflicts with rule jit-03/);
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.subnetNsgId)), ['deny-mgmt-inbound']);

      // The same priority in the other direction is a different slot.
      await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        subnetNsg,
        'jit-03',
        jitRule({ priority: 4000, direction: 'Outbound' }),
      );
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.subnetNsgId)), ['deny-mgmt-inbound', 'jit-03']);
    },
  );

  void it('validates rules as ARM does and writes nothing on refusal', LIMIT, async (t) => {
    const { emulator, network } = await setup(t);
    const put = (rule: SecurityRule) =>
      network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-04', rule);

    await rejectsWithArm(put(jitRule({ priority: 99 })), 400, 'SecurityRuleInvalidPriority');
    await rejectsWithArm(put(jitRule({ priority: 4097 })), 400, 'SecurityRuleInvalidPriority');
    await rejectsWithArm(
      put(jitRule({ sourceAddressPrefix: undefined })),
      400,
      'SecurityRuleParametersMissing',
    );
    await rejectsWithArm(
      put(jitRule({ destinationPortRange: undefined })),
      400,
      'SecurityRuleParameterMissing',
    );
    await rejectsWithArm(put(jitRule({ access: undefined })), 400, 'SecurityRuleParameterMissing');
    await rejectsWithArm(
      put(jitRule({ destinationPortRange: '70000' })),
      400,
      'SecurityRuleInvalidPortRange',
    );
    // Host bits set: Azure wants the network address.
    await rejectsWithArm(
      put(jitRule({ sourceAddressPrefix: '203.0.113.7/24' })),
      400,
      'SecurityRuleInvalidAddressPrefix',
    );
    await rejectsWithArm(
      put(jitRule({ sourceAddressPrefix: '2001:db8::7', destinationAddressPrefix: '10.0.1.4' })),
      400,
      'ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies',
    );
    await rejectsWithArm(
      put(jitRule({ sourceAddressPrefix: undefined, sourceAddressPrefixes: ['*'] })),
      400,
      'SecurityRuleParameterContainsUnsupportedValue',
    );
    await rejectsWithArm(
      network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'bad name!', jitRule()),
      400,
      'InvalidResourceName',
    );
    assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound']);

    // A service tag and a plural list of the same family are fine.
    const ok = await put(
      jitRule({ sourceAddressPrefix: undefined, sourceAddressPrefixes: ['203.0.113.0/24', '198.51.100.9'] }),
    );
    assert.deepEqual(ok.sourceAddressPrefixes, ['203.0.113.0/24', '198.51.100.9']);
    await network.securityRules.beginCreateOrUpdateAndWait(
      rg,
      nicNsg,
      'jit-05',
      jitRule({ priority: 201, sourceAddressPrefix: 'AzureCloud.WestEurope' }),
    );
  });

  void it(
    'refuses a rule name of 81 characters with InvalidResourceName and takes one of 80',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const named = (length: number) => `jit-${'a'.repeat(length - 4)}`;
      const refused = await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, named(81), jitRule()),
        400,
        'InvalidResourceName',
      );
      assert.match(refused.message, /The name can be up to 80 characters long/);
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound']);
      const kept = await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, named(80), jitRule());
      assert.equal(kept.name, named(80));
      assert.equal(kept.name?.length, 80);
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound', named(80)]);
    },
  );

  void it(
    'answers a second write to an NSG with an operation in flight with 409 AnotherOperationInProgress',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t, { operationLatencyInMs: 400 });
      const poll = { updateIntervalInMs: 25 };

      const first = await network.securityRules.beginCreateOrUpdate(rg, nicNsg, 'jit-06', jitRule(), poll);
      // While it runs, readers see the rule and its NSG as Updating.
      assert.equal((await network.securityRules.get(rg, nicNsg, 'jit-06')).provisioningState, 'Updating');
      assert.equal(emulator.getNsg(DEMO.linuxVm.nicNsgId)?.provisioningState, 'Updating');

      const second = network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-07',
        jitRule({ priority: 210 }),
        poll,
      );
      const deleteBaseline = network.securityRules.beginDeleteAndWait(rg, nicNsg, 'deny-mgmt-inbound', poll);
      // Another NSG is not locked by it.
      const otherNsg = network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        subnetNsg,
        'jit-08',
        jitRule(),
        poll,
      );

      const conflict = await rejectsWithArm(second, 409, 'AnotherOperationInProgress');
      await rejectsWithArm(deleteBaseline, 409, 'AnotherOperationInProgress');
      assert.equal((await otherNsg).provisioningState, 'Succeeded');
      assert.equal((await first.pollUntilDone()).provisioningState, 'Succeeded');

      // The message points at the operation in flight, and that URL can be polled.
      const uri = /use uri: (\S+?)\.?$/.exec(conflict.message)?.[1];
      assert.ok(uri, conflict.message);
      assert.ok(
        uri.startsWith(
          `${emulator.endpoint}/subscriptions/${DEMO.subscriptionId}/providers/Microsoft.Network/`,
        ),
      );
      const status = await raw(emulator, 'GET', uri, { headers: bearer });
      assert.equal(status.status, 200);
      assert.equal((status.json as { status: string }).status, 'Succeeded');

      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound', 'jit-06']);
      assert.equal(emulator.getNsg(DEMO.linuxVm.nicNsgId)?.provisioningState, 'Succeeded');
    },
  );

  void it(
    'runs an NSG PUT (flushConnection) as a long-running operation that holds the NSG like a rule write',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t, { operationLatencyInMs: 400 });
      const poll = { updateIntervalInMs: 25 };
      const before = await network.networkSecurityGroups.get(rg, nicNsg);
      const put = await network.networkSecurityGroups.beginCreateOrUpdate(
        rg,
        nicNsg,
        { location: before.location, securityRules: before.securityRules, flushConnection: true },
        { ...poll, requestOptions: { customHeaders: { 'If-Match': before.etag ?? '' } } },
      );
      // While it runs, the NSG reads Updating and a rule write is refused as busy.
      assert.equal(emulator.getNsg(DEMO.linuxVm.nicNsgId)?.provisioningState, 'Updating');
      await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-09', jitRule(), poll),
        409,
        'AnotherOperationInProgress',
      );
      assert.equal((await put.pollUntilDone()).flushConnection, true);
      assert.equal(emulator.getNsg(DEMO.linuxVm.nicNsgId)?.provisioningState, 'Succeeded');
      const rule = await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-09',
        jitRule(),
        poll,
      );
      assert.equal(rule.provisioningState, 'Succeeded');
    },
  );

  void it('lets two concurrent writers race: exactly one wins, the other gets 409', LIMIT, async (t) => {
    const { emulator, network } = await setup(t, { operationLatencyInMs: 200 });
    const poll = { updateIntervalInMs: 25 };
    const results = await Promise.allSettled([
      network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-09',
        jitRule({ priority: 300 }),
        poll,
      ),
      network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-10',
        jitRule({ priority: 301 }),
        poll,
      ),
    ]);
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    assert.equal(won.length, 1);
    assert.equal(lost.length, 1);
    assert.equal((lost[0]?.reason as { code?: string }).code, 'AnotherOperationInProgress');
    assert.equal(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)).length, 2);
  });

  void it(
    'throttles with 429 + Retry-After, which the SDK retries until the rule is in place',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      emulator.faults.inject({
        method: 'PUT',
        pathIncludes: '/securityRules/jit-11',
        status: 429,
        code: 'TooManyRequests',
        times: 2,
        retryAfterInSeconds: 0,
      });
      const rule = await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-11', jitRule());
      assert.equal(rule.provisioningState, 'Succeeded');
      assert.deepEqual(
        emulator.log.filter((e) => e.method === 'PUT').map((e) => e.status),
        [429, 429, 201],
      );
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound', 'jit-11']);
    },
  );

  void it('passes on a fault the SDK does not retry, and clears faults', LIMIT, async (t) => {
    const { emulator, network } = await setup(t);
    emulator.faults.inject({ method: 'GET', status: 403, code: 'AuthorizationFailed', rate: 1 });
    await rejectsWithArm(network.networkSecurityGroups.get(rg, nicNsg), 403, 'AuthorizationFailed');
    await rejectsWithArm(network.networkSecurityGroups.get(rg, nicNsg), 403, 'AuthorizationFailed');
    emulator.faults.clear();
    assert.equal((await network.networkSecurityGroups.get(rg, nicNsg)).name, nicNsg);
    emulator.faults.inject({ method: 'GET', status: 403, code: 'AuthorizationFailed', rate: 0 });
    assert.equal((await network.networkSecurityGroups.get(rg, nicNsg)).name, nicNsg);
  });

  void it(
    'fails an operation that ends Failed: the SDK throws and the rule is left Failed, not rolled back',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      emulator.faults.failNextOperations({ pathIncludes: 'jit-12', times: 1 });
      await assert.rejects(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-12', jitRule()),
        /long-running operation has failed.*InternalServerError/,
      );
      // The rule is there with what the PUT asked for, in provisioning state Failed.
      const failed = await network.securityRules.get(rg, nicNsg, 'jit-12');
      assert.equal(failed.provisioningState, 'Failed');
      assert.equal(failed.sourceAddressPrefix, '203.0.113.7/32');
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound', 'jit-12']);

      // Another write recovers it.
      const rewritten = await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-12',
        jitRule(),
      );
      assert.equal(rewritten.provisioningState, 'Succeeded');

      // A failed delete leaves the rule where it was, Failed; the next delete removes it.
      emulator.faults.failNextOperations({ pathIncludes: 'jit-12', times: 1, code: 'InternalServerError' });
      await assert.rejects(network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-12'), /has failed/);
      assert.equal((await network.securityRules.get(rg, nicNsg, 'jit-12')).provisioningState, 'Failed');
      await network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-12');
      assert.deepEqual(ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)), ['deny-mgmt-inbound']);

      // Asked to, an operation fault rolls back instead: no rule is left.
      emulator.faults.failNextOperations({ pathIncludes: 'jit-12', times: 1, rollBack: true });
      await assert.rejects(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-12', jitRule()),
        /has failed/,
      );
      await rejectsWithArm(network.securityRules.get(rg, nicNsg, 'jit-12'), 404, 'NotFound');
    },
  );

  void it(
    'answers rule writes as Network RP does: 201/200 + Azure-AsyncOperation + Retry-After 10, DELETE 202 + Location',
    LIMIT,
    async (t) => {
      // The Azure-like profile, with a shorter operation so the test stays quick.
      const { emulator } = await setup(t, { profile: 'azure', operationLatencyInMs: 300 });
      const rulePath = `${DEMO.linuxVm.nicNsgId}/securityRules/jit-16?api-version=2025-05-01`;

      const created = await raw(emulator, 'PUT', rulePath, {
        headers: bearer,
        body: { properties: jitRule() },
      });
      assert.equal(created.status, 201);
      assert.equal(created.headers['retry-after'], '10');
      assert.equal(created.headers['location'], undefined, 'a PUT names no Location');
      const statusUrl = created.headers['azure-asyncoperation'] as string;
      assert.match(statusUrl, /\/providers\/Microsoft\.Network\/locations\/westeurope\/operations\//);
      assert.equal(
        (created.json as { properties: { provisioningState: string } }).properties.provisioningState,
        'Updating',
      );

      const running = await raw(emulator, 'GET', statusUrl, { headers: bearer });
      assert.equal((running.json as { status: string }).status, 'InProgress');
      assert.equal(running.headers['retry-after'], '10');
      const during = await raw(emulator, 'GET', rulePath, { headers: bearer });
      assert.equal(
        (during.json as { properties: { provisioningState: string } }).properties.provisioningState,
        'Updating',
      );

      await new Promise((r) => setTimeout(r, 400));
      const done = await raw(emulator, 'GET', statusUrl, { headers: bearer });
      assert.equal((done.json as { status: string }).status, 'Succeeded');
      assert.equal(done.headers['retry-after'], undefined, 'a finished operation has no Retry-After');
      const after = await raw(emulator, 'GET', rulePath, { headers: bearer });
      assert.equal(
        (after.json as { properties: { provisioningState: string } }).properties.provisioningState,
        'Succeeded',
      );

      const updated = await raw(emulator, 'PUT', rulePath, {
        headers: bearer,
        body: { properties: jitRule({ destinationPortRange: '3389' }) },
      });
      assert.equal(updated.status, 200);
      await new Promise((r) => setTimeout(r, 400));

      const deleted = await raw(emulator, 'DELETE', rulePath, { headers: bearer });
      assert.equal(deleted.status, 202);
      assert.equal(deleted.headers['retry-after'], '10');
      assert.match(deleted.headers['azure-asyncoperation'] as string, /\/operations\//);
      assert.match(deleted.headers['location'] as string, /\/operationResults\//);
    },
  );

  void it(
    'can answer a busy NSG with 429 RetryableError (RetryableErrorDueToAnotherOperation) and Retry-After',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t, {
        operationLatencyInMs: 300,
        operationRetryAfterInSeconds: 1,
        busyAnswer: 'RetryableError',
      });
      await network.securityRules.beginCreateOrUpdate(rg, nicNsg, 'jit-17', jitRule(), {
        updateIntervalInMs: 25,
      });
      const busy = await raw(
        emulator,
        'PUT',
        `${DEMO.linuxVm.nicNsgId}/securityRules/jit-18?api-version=2025-05-01`,
        {
          headers: bearer,
          body: { properties: jitRule({ priority: 201 }) },
        },
      );
      assert.equal(busy.status, 429);
      assert.equal(busy.headers['retry-after'], '1');
      const error = (
        busy.json as { error: { code: string; details: Array<{ code: string; message: string }> } }
      ).error;
      assert.equal(error.code, 'RetryableError');
      assert.equal(error.details[0]?.code, 'RetryableErrorDueToAnotherOperation');
      assert.match(
        error.details[0]?.message ?? '',
        /^Operation PutSecurityRuleOperation \(.+\) is updating resource .*demo-vm-nic-nsg\.$/,
      );

      // The SDK retries a 429 with Retry-After by itself: once the first operation is done, the write goes through.
      const second = await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-18',
        jitRule({ priority: 202 }),
        { updateIntervalInMs: 25 },
      );
      assert.equal(second.provisioningState, 'Succeeded');
    },
  );

  void it(
    'throttles as ARM does: remaining reads/writes/deletes on every response, per caller, 429 when spent',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t, {
        throttling: {
          read: { size: 3, refillPerSecond: 1 },
          write: { size: 5, refillPerSecond: 1 },
          delete: { size: 5, refillPerSecond: 1 },
          globalFactor: 2,
        },
      });
      const nsgPath = `${DEMO.linuxVm.nicNsgId}?api-version=2025-05-01`;
      // Three callers, each its own principal (the token's oid), each allowed everything.
      const callers = Object.fromEntries(
        ['alice', 'bob', 'carol'].map((name, i) => {
          const oid = `0000bbbb-0000-4000-8000-00000000000${i}`;
          emulator.roles.assign({ principalId: oid, scope: '/', actions: ['*'] });
          return [name, { oid, token: jwt({ oid, appid: oid }) }];
        }),
      ) as Record<'alice' | 'bob' | 'carol', { oid: string; token: string }>;
      const read = (who: keyof typeof callers) =>
        raw(emulator, 'GET', nsgPath, { headers: { Authorization: `Bearer ${callers[who].token}` } });

      const first = await read('alice');
      assert.equal(first.headers['x-ms-ratelimit-remaining-subscription-reads'], '2');
      assert.equal(first.headers['x-ms-ratelimit-remaining-subscription-global-reads'], '5');
      assert.equal((await read('alice')).headers['x-ms-ratelimit-remaining-subscription-reads'], '1');
      assert.equal((await read('alice')).headers['x-ms-ratelimit-remaining-subscription-reads'], '0');
      const refused = await read('alice');
      assert.equal(refused.status, 429);
      assert.equal(refused.headers['retry-after'], '1');
      const error = (refused.json as { error: { code: string; message: string; details?: unknown } }).error;
      assert.equal(error.code, 'SubscriptionRequestsThrottled');
      assert.match(
        error.message,
        new RegExp(
          `^Number of 'read' requests for subscription '.+' actor '${callers.alice.oid}' exceeded\\.`,
        ),
      );
      assert.equal(error.details, undefined, 'raised by ARM itself, not the resource provider');

      // Another caller has a bucket of its own, until the subscription's global bucket (2 × 3 here) is spent.
      assert.equal((await read('bob')).status, 200);
      assert.equal((await read('bob')).status, 200);
      assert.equal((await read('bob')).headers['x-ms-ratelimit-remaining-subscription-global-reads'], '0');
      assert.equal((await read('carol')).status, 429);

      // Writes and deletes are counted apart from reads.
      const put = await raw(
        emulator,
        'PUT',
        `${DEMO.linuxVm.nicNsgId}/securityRules/jit-19?api-version=2025-05-01`,
        {
          headers: { Authorization: `Bearer ${callers.alice.token}` },
          body: { properties: jitRule() },
        },
      );
      assert.equal(put.status, 201);
      assert.equal(put.headers['x-ms-ratelimit-remaining-subscription-writes'], '4');
      const del = await raw(
        emulator,
        'DELETE',
        `${DEMO.linuxVm.nicNsgId}/securityRules/jit-19?api-version=2025-05-01`,
        { headers: { Authorization: `Bearer ${callers.alice.token}` } },
      );
      assert.equal(del.status, 202);
      assert.equal(del.headers['x-ms-ratelimit-remaining-subscription-deletes'], '4');

      // The SDK waits out Retry-After on a 429 and tries again: the read succeeds once a token is back.
      const nsg = await network.networkSecurityGroups.get(rg, nicNsg);
      assert.equal(nsg.name, nicNsg);
      assert.ok(
        emulator.log.some((e) => e.status === 429 && e.method === 'GET'),
        'the SDK was refused at least once before it got through',
      );
    },
  );

  void it('answers unknown resources with ARM 404s', LIMIT, async (t) => {
    const { compute, network } = await setup(t);
    await rejectsWithArm(compute.virtualMachines.get(rg, 'no-such-vm'), 404, 'ResourceNotFound');
    await rejectsWithArm(
      network.networkSecurityGroups.get('no-such-rg', nicNsg),
      404,
      'ResourceGroupNotFound',
    );
    await rejectsWithArm(network.subnets.get(rg, 'demo-vnet', 'no-such-subnet'), 404, 'NotFound');
    await rejectsWithArm(
      network.securityRules.beginCreateOrUpdateAndWait(rg, 'no-such-nsg', 'jit-13', jitRule()),
      404,
      'ParentResourceNotFound',
    );
  });

  void it('refuses a request without a bearer token (401) and serves one with it', LIMIT, async (t) => {
    const { emulator } = await setup(t);
    const path = `${DEMO.subnetNsgId}?api-version=2024-05-01`;
    const anonymous = await raw(emulator, 'GET', path);
    assert.equal(anonymous.status, 401);
    assert.equal((anonymous.json as { error: { code: string } }).error.code, 'AuthenticationFailed');
    const authorized = await raw(emulator, 'GET', path, { headers: bearer });
    assert.equal(authorized.status, 200);
    assert.equal((authorized.json as { id: string }).id, DEMO.subnetNsgId);
  });

  void it(
    'shows NSGs and rules on /_emulator/nsgs and takes faults on /_emulator/faults',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-14', jitRule());
      const listed = await raw(emulator, 'GET', '/_emulator/nsgs');
      assert.equal(listed.status, 200);
      const nsg = (listed.json as NsgState[]).find((n) => n.id === DEMO.linuxVm.nicNsgId);
      assert.deepEqual(ruleNames(nsg), ['deny-mgmt-inbound', 'jit-14']);

      const injected = await raw(emulator, 'POST', '/_emulator/faults', {
        body: { method: 'GET', status: 403, code: 'AuthorizationFailed', times: 1 },
      });
      assert.equal(injected.status, 204);
      await rejectsWithArm(network.networkSecurityGroups.get(rg, nicNsg), 403, 'AuthorizationFailed');

      const refused = await raw(emulator, 'POST', '/_emulator/faults', { body: { status: 200, code: 'x' } });
      assert.equal(refused.status, 400);
      await raw(emulator, 'POST', '/_emulator/faults', {
        body: { status: 403, code: 'AuthorizationFailed', rate: 1 },
      });
      assert.equal((await raw(emulator, 'DELETE', '/_emulator/faults')).status, 204);
      assert.equal((await network.networkSecurityGroups.get(rg, nicNsg)).name, nicNsg);
    },
  );

  void it('shows out-of-band edits to clients and refuses ones that break NSG rules', LIMIT, async (t) => {
    const { emulator, network } = await setup(t);
    emulator.putRuleDirect(DEMO.linuxVm.nicNsgId, {
      name: 'jit-orphan',
      properties: { ...jitRule(), protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 250 },
    });
    const listed = [];
    for await (const rule of network.securityRules.list(rg, nicNsg)) listed.push(rule.name);
    assert.deepEqual(listed, ['deny-mgmt-inbound', 'jit-orphan']);

    assert.throws(
      () =>
        emulator.putRuleDirect(DEMO.linuxVm.nicNsgId, {
          name: 'clash',
          properties: { ...jitRule(), protocol: 'Tcp', access: 'Allow', direction: 'Inbound', priority: 250 },
        }),
      { code: 'SecurityRuleConflict' },
    );

    emulator.deleteRuleDirect(DEMO.linuxVm.nicNsgId, 'JIT-ORPHAN');
    await rejectsWithArm(network.securityRules.get(rg, nicNsg, 'jit-orphan'), 404, 'NotFound');
  });

  void it('builds custom VMs with addVm, including dual-stack NICs and shared subnets', LIMIT, async (t) => {
    const { emulator, compute, network } = await setup(t, { seedDemo: false });
    const subnet = { vnet: 'app-vnet', name: 'app', addressPrefix: '10.20.1.0/24', nsg: 'app-subnet-nsg' };
    emulator.addVm({
      resourceGroup: 'app-rg',
      name: 'app-1',
      osType: 'Windows',
      nics: [
        {
          name: 'app-1-nic',
          nsg: 'app-1-nic-nsg',
          ipConfigurations: [
            { privateIpAddress: '10.20.1.10', subnet },
            { name: 'v6', privateIpAddress: 'fd00:20:1::10', subnet },
          ],
        },
      ],
    });
    emulator.addVm({
      resourceGroup: 'APP-RG',
      name: 'app-2',
      nics: [{ name: 'app-2-nic', ipConfigurations: [{ privateIpAddress: '10.20.1.11', subnet }] }],
    });

    const nic = await network.networkInterfaces.get('app-rg', 'app-1-nic');
    assert.deepEqual(
      nic.ipConfigurations?.map((c) => [c.name, c.privateIPAddress, c.privateIPAddressVersion, c.primary]),
      [
        ['ipconfig1', '10.20.1.10', 'IPv4', true],
        ['v6', 'fd00:20:1::10', 'IPv6', false],
      ],
    );
    const appSubnet = await network.subnets.get('app-rg', 'app-vnet', 'app');
    assert.deepEqual(appSubnet.addressPrefixes, ['10.20.1.0/24', 'fd00:20:1::/64']);
    const vm2 = await compute.virtualMachines.get('app-rg', 'app-2');
    assert.equal(vm2.storageProfile?.osDisk?.osType, 'Linux');
    const subnetNsgState = emulator.listNsgs().find((n) => n.name === 'app-subnet-nsg');
    assert.equal(subnetNsgState?.securityRules.length, 0);
    assert.equal(subnetNsgState?.defaultSecurityRules.length, 6);
    assert.deepEqual(subnetNsgState?.subnets, [appSubnet.id]);
    await rejectsWithArm(compute.virtualMachines.get(rg, DEMO.linuxVm.name), 404, 'ResourceGroupNotFound');

    assert.throws(
      () =>
        emulator.addVm({
          resourceGroup: 'app-rg',
          name: 'app-3',
          nics: [{ name: 'app-3-nic', ipConfigurations: [{ privateIpAddress: '10.20.1.11', subnet }] }],
        }),
      /already used by app-2-nic/,
    );
    assert.throws(
      () =>
        emulator.addVm({
          resourceGroup: 'app-rg',
          name: 'app-4',
          nics: [{ name: 'app-4-nic', ipConfigurations: [{ privateIpAddress: '10.99.0.4', subnet }] }],
        }),
      /outside subnet prefix/,
    );
    assert.equal(emulator.listNsgs().length, 2, 'a refused spec creates nothing');
  });

  void it('delays every ARM request by requestLatencyInMs', LIMIT, async (t) => {
    const { network } = await setup(t, { requestLatencyInMs: 150 });
    const started = Date.now();
    await network.networkSecurityGroups.get(rg, nicNsg);
    assert.ok(Date.now() - started >= 140, 'the request waited');
  });

  void it(
    'stops idempotently, settles operations in flight and leaves nothing keeping a process alive',
    LIMIT,
    async () => {
      // In a process of its own: if stop() left a server, socket or timer behind, the child would not
      // exit and execFile would kill it at the timeout.
      const script = `
      const { ArmEmulator, DEMO } = require(${JSON.stringify(require.resolve('../../dev/arm/emulator'))});
      const { NetworkManagementClient } = require(${JSON.stringify(require.resolve('@azure/arm-network'))});
      (async () => {
        const emulator = new ArmEmulator({ operationLatencyInMs: 60000, requestLatencyInMs: 5 });
        await emulator.start();
        const credential = { getToken: async () => ({ token: 'dev', expiresOnTimestamp: Date.now() + 3600000 }) };
        const network = new NetworkManagementClient(credential, DEMO.subscriptionId, {
          endpoint: emulator.endpoint, tlsOptions: { ca: emulator.caPem }, retryOptions: { maxRetries: 0 } });
        await network.securityRules.beginCreateOrUpdate('demo-rg', 'demo-vm-nic-nsg', 'jit-15', ${JSON.stringify(jitRule())});
        const during = emulator.getNsg(DEMO.linuxVm.nicNsgId).provisioningState;
        await emulator.stop();
        await emulator.stop();
        const after = emulator.getNsg(DEMO.linuxVm.nicNsgId);
        let refused = false;
        await network.networkSecurityGroups.get('demo-rg', 'demo-vm-nic-nsg').catch(() => { refused = true; });
        console.log(JSON.stringify({ during, after: after.provisioningState, rules: after.securityRules.map((r) => r.name), refused }));
      })().catch((error) => { console.error(error); process.exitCode = 1; });
    `;
      const { stdout } = await execFileAsync(process.execPath, ['-e', script], { timeout: 15_000 });
      assert.deepEqual(JSON.parse(stdout), {
        during: 'Updating',
        after: 'Succeeded',
        rules: ['deny-mgmt-inbound', 'jit-15'],
        refused: true,
      });
    },
  );
});

/** Clients of the given principal against a running emulator. */
function clientsOf(
  emulator: ArmEmulator,
  cred: TokenCredential,
  subscriptionId: string = DEMO.subscriptionId,
) {
  const clientOptions = {
    endpoint: emulator.endpoint,
    tlsOptions: { ca: emulator.caPem },
    retryOptions: { maxRetries: 0 },
  };
  return {
    network: new NetworkManagementClient(cred, subscriptionId, clientOptions),
    compute: new ComputeManagementClient(cred, subscriptionId, clientOptions),
    locks: new ManagementLockClient(cred, subscriptionId, clientOptions),
  };
}

void describe('what Azure refuses: locks, RBAC, limits — and its neighbours', () => {
  const rgId = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${rg}`;
  const ruleId = (name: string) => `${DEMO.linuxVm.nicNsgId}/securityRules/${name}`;

  void it(
    'a CanNotDelete lock on the resource group refuses a rule DELETE (ScopeLocked) but allows its PUT',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const { locks } = clientsOf(emulator, credential);
      await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-locked', jitRule());
      const created = await locks.managementLocks.createOrUpdateAtResourceGroupLevel(rg, 'no-delete', {
        level: 'CanNotDelete',
        notes: 'platform team',
      });
      assert.equal(created.id, `${rgId}/providers/Microsoft.Authorization/locks/no-delete`);

      const error = await rejectsWithArm(
        network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-locked'),
        409,
        'ScopeLocked',
      );
      assert.equal(
        error.message,
        `The scope '${ruleId('jit-locked')}' cannot perform delete operation because following scope(s) are locked: ` +
          `'${rgId}'. Please remove the lock and try again.`,
      );
      assert.ok(
        ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)).includes('jit-locked'),
        'the rule is still there',
      );
      // The lock is checked before the rule is looked for: a rule that is not there is refused all the same.
      await rejectsWithArm(
        network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-never-written'),
        409,
        'ScopeLocked',
      );

      // A write is allowed: the same rule turned to Deny.
      const denied = await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'jit-locked',
        jitRule({ access: 'Deny' }),
      );
      assert.equal(denied.access, 'Deny');

      // Inherited: the NSG's own list of the locks that apply to it names the resource group's lock.
      const applying = [];
      for await (const l of locks.managementLocks.listByScope(DEMO.linuxVm.nicNsgId.slice(1), {
        filter: 'atScope()',
      }))
        applying.push([l.name, l.level]);
      assert.deepEqual(applying, [['no-delete', 'CanNotDelete']]);

      await locks.managementLocks.deleteAtResourceGroupLevel(rg, 'no-delete');
      await network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-locked');
      assert.ok(!ruleNames(emulator.getNsg(DEMO.linuxVm.nicNsgId)).includes('jit-locked'));
    },
  );

  void it(
    'a ReadOnly lock on the NSG refuses both PUT and DELETE of its rules, and nothing else',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const { locks } = clientsOf(emulator, credential);
      await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-ro', jitRule());
      await locks.managementLocks.createOrUpdateByScope(DEMO.linuxVm.nicNsgId, 'frozen', {
        level: 'ReadOnly',
      });
      const got = await locks.managementLocks.getByScope(DEMO.linuxVm.nicNsgId, 'frozen');
      assert.equal(got.level, 'ReadOnly');

      const write = await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-ro', jitRule({ access: 'Deny' })),
        409,
        'ScopeLocked',
      );
      assert.match(
        write.message,
        /cannot perform write operation because following scope\(s\) are locked: '[^']*demo-vm-nic-nsg'/,
      );
      await rejectsWithArm(
        network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-ro'),
        409,
        'ScopeLocked',
      );
      assert.equal(
        emulator.getNsg(DEMO.linuxVm.nicNsgId)?.securityRules.find((r) => r.name === 'jit-ro')?.properties
          .access,
        'Allow',
      );
      // The subnet NSG next door is not locked; reads of the locked one still work.
      await network.securityRules.beginCreateOrUpdateAndWait(rg, subnetNsg, 'jit-ro', jitRule());
      assert.equal((await network.securityRules.get(rg, nicNsg, 'jit-ro')).access, 'Allow');

      // A lock at the subscription applies to everything in it, and a list there shows it.
      await locks.managementLocks.deleteByScope(DEMO.linuxVm.nicNsgId, 'frozen');
      await locks.managementLocks.createOrUpdateAtSubscriptionLevel('sub-wide', { level: 'CanNotDelete' });
      await rejectsWithArm(
        network.securityRules.beginDeleteAndWait(rg, subnetNsg, 'jit-ro'),
        409,
        'ScopeLocked',
      );
      const all = [];
      for await (const l of locks.managementLocks.listAtSubscriptionLevel()) all.push(l.name);
      assert.deepEqual(all, ['sub-wide']);
    },
  );

  void it(
    'answers 403 AuthorizationFailed as ARM does where the deployment has no role (a hub resource group)',
    LIMIT,
    async (t) => {
      const { emulator } = await setup(t);
      const spoke = clientsOf(emulator, deploymentCredential, DEMO.spokeVm.subscriptionId);
      // The VM and its NIC are in the application's resource group, which the deployment's role covers.
      const vm = await spoke.compute.virtualMachines.get(DEMO.spokeVm.resourceGroup, DEMO.spokeVm.name);
      const nic = await spoke.network.networkInterfaces.get(
        DEMO.spokeVm.resourceGroup,
        lastSegment(vm.networkProfile?.networkInterfaces?.[0]?.id),
      );
      assert.equal(nic.ipConfigurations?.[0]?.subnet?.id, DEMO.spokeVm.subnetId);
      // Its subnet and the subnet's NSG live in the hub resource group, which it does not.
      const error = await rejectsWithArm(
        spoke.network.subnets.get(DEMO.spokeVm.hubResourceGroup, 'hub-spokes-vnet', 'app'),
        403,
        'AuthorizationFailed',
      );
      assert.equal(
        error.message,
        `The client '${DEMO.identity.clientId}' with object id '${DEMO.identity.objectId}' does not have authorization ` +
          `to perform action 'Microsoft.Network/virtualNetworks/subnets/read' over scope '${DEMO.spokeVm.subnetId}' or ` +
          'the scope is invalid. If access was recently granted, please refresh your credentials.',
      );
      await rejectsWithArm(
        spoke.network.securityRules.beginCreateOrUpdateAndWait(
          DEMO.spokeVm.hubResourceGroup,
          'hub-spokes-nsg',
          'jit-x',
          jitRule({ destinationAddressPrefix: DEMO.spokeVm.privateIp }),
        ),
        403,
        'AuthorizationFailed',
      );
      // Refused before existence is looked at ("or the scope is invalid").
      await rejectsWithArm(
        spoke.network.networkSecurityGroups.get(DEMO.spokeVm.hubResourceGroup, 'no-such-nsg'),
        403,
        'AuthorizationFailed',
      );
      // A principal with no role at all is refused everywhere; a list at a scope is filtered to what one may read.
      const stranger = clientsOf(
        emulator,
        credentialOf(
          jwt({ oid: '0000bbbb-0000-4000-8000-000000000002', appid: '0000bbbb-0000-4000-8000-0000000000b2' }),
        ),
      );
      await rejectsWithArm(
        stranger.compute.virtualMachines.get(rg, DEMO.linuxVm.name),
        403,
        'AuthorizationFailed',
      );
      emulator.roles.assign({
        principalId: '0000bbbb-0000-4000-8000-000000000002',
        scope: rgId,
        actions: ['Microsoft.Compute/virtualMachines/read'],
      });
      const names = [];
      for await (const v of stranger.compute.virtualMachines.listAll()) names.push(v.name);
      assert.deepEqual(names.sort(), ['demo-vm', 'demo-win']);
    },
  );

  void it('the seeded deployment role is the custom role infra deploys', LIMIT, () => {
    const bicep = readFileSync(join(PROJECT_ROOT, 'infra', 'modules', 'role-assignments.bicep'), 'utf8');
    const block = /var nsgOperatorActions = \[([\s\S]*?)\]/.exec(bicep)?.[1] ?? '';
    const actions = [...block.matchAll(/'([^']+)'/g)].map((m) => m[1]);
    assert.deepEqual([...actions].sort(), [...JIT_ROLE_ACTIONS].sort());
  });

  void it(
    'refuses the 1,001st rule, a 141-character description and the 4,001st source prefix',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const nsgId = DEMO.linuxVm.nicNsgId;
      // 999 more rules beside the operator's baseline rule: 1,000 in all.
      for (let i = 0; i < 999; i++) {
        emulator.putRuleDirect(nsgId, {
          name: `filler-${i}`,
          properties: { ...jitRule(), priority: 101 + i, access: 'Deny' } as never,
        });
      }
      const full = await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-1001', jitRule({ priority: 1500 })),
        400,
        'SecurityRuleCountLimitReached',
      );
      assert.equal(full.message, 'A security group cannot have more than 1000 security rules.');
      // Rewriting a rule that exists does not add one.
      await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        'filler-0',
        jitRule({ priority: 101 }),
      );

      const long = await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(
          rg,
          subnetNsg,
          'jit-desc',
          jitRule({ description: 'x'.repeat(141) }),
        ),
        400,
        'SecurityRuleInvalidDescription',
      );
      assert.match(long.message, /up to 140 characters/);
      await network.securityRules.beginCreateOrUpdateAndWait(
        rg,
        subnetNsg,
        'jit-desc',
        jitRule({ description: 'x'.repeat(140) }),
      );

      const prefixes = (start: number, length = 1000) =>
        Array.from(
          { length },
          (_, i) =>
            `198.${18 + Math.floor((start + i) / 65536)}.${Math.floor((start + i) / 256) % 256}.${(start + i) % 256}`,
        );
      for (let k = 0; k < 4; k++) {
        await network.securityRules.beginCreateOrUpdateAndWait(rg, subnetNsg, `wide-${k}`, {
          ...jitRule({ priority: 300 + k, access: 'Deny' }),
          sourceAddressPrefix: undefined,
          sourceAddressPrefixes: prefixes(k * 1000, k === 3 ? 998 : 1000),
        });
      }
      // 3,998 source entries, the baseline's `*` and jit-desc's one: 4,000, the limit. One more is refused.
      await rejectsWithArm(
        network.securityRules.beginCreateOrUpdateAndWait(
          rg,
          subnetNsg,
          'jit-more',
          jitRule({ priority: 400 }),
        ),
        400,
        'SecurityRuleAddressesOrPortsPerSecurityGroupLimitReached',
      );
    },
  );

  void it('seeds a VM whose NSG carries Defender for Cloud JIT rules', LIMIT, async (t) => {
    const { network } = await setup(t);
    const rules = [];
    for await (const r of network.securityRules.list(DEMO.defenderVm.resourceGroup, 'defender-vm-nic-nsg'))
      rules.push(r);
    assert.deepEqual(
      rules.map((r) => [r.name, r.priority, r.access, r.description]),
      [
        [
          DEMO.defenderVm.denyRule.name,
          1000,
          'Deny',
          "ASC JIT Network Access rule for policy 'default' of VM 'defender-vm'.",
        ],
        [
          DEMO.defenderVm.allowRule.name,
          100,
          'Allow',
          "ASC JIT Network Access rule created by an initiation request for policy 'default' of VM 'defender-vm'.",
        ],
      ],
    );
    assert.match(DEMO.defenderVm.denyRule.name, /^SecurityCenter-JITRule_-?\d+_[0-9A-F]{32}$/);
    assert.match(DEMO.defenderVm.allowRule.name, /^SecurityCenter-JITRule-\d+-[0-9A-F]{32}$/);
  });

  void it(
    'models flushConnection: an NSG PUT with If-Match sets it, a stale etag or a lock refuses it',
    LIMIT,
    async (t) => {
      const { emulator, network } = await setup(t);
      const before = await network.networkSecurityGroups.get(rg, nicNsg);
      assert.equal(before.flushConnection, false);
      const written = await network.networkSecurityGroups.beginCreateOrUpdateAndWait(
        rg,
        nicNsg,
        { location: before.location, securityRules: before.securityRules, flushConnection: true },
        { requestOptions: { customHeaders: { 'If-Match': before.etag ?? '' } } },
      );
      assert.equal(written.flushConnection, true);
      const state = emulator.getNsg(DEMO.linuxVm.nicNsgId);
      assert.equal(state?.flushConnection, true);
      assert.deepEqual(ruleNames(state), ['deny-mgmt-inbound'], 'the rules sent back are the rules kept');
      assert.equal(state?.flowReevaluations, 1, 'enabling it re-evaluates the flows once');
      // With it on, each rule change re-evaluates the flows again (this is what cuts a session at a rule's removal).
      await network.securityRules.beginCreateOrUpdateAndWait(rg, nicNsg, 'jit-f', jitRule());
      await network.securityRules.beginDeleteAndWait(rg, nicNsg, 'jit-f');
      assert.equal(emulator.getNsg(DEMO.linuxVm.nicNsgId)?.flowReevaluations, 3);

      await rejectsWithArm(
        network.networkSecurityGroups.beginCreateOrUpdateAndWait(
          rg,
          nicNsg,
          { location: before.location, securityRules: before.securityRules, flushConnection: false },
          { requestOptions: { customHeaders: { 'If-Match': before.etag ?? '' } } },
        ),
        412,
        'PreconditionFailed',
      );
      // A PUT is a write: a ReadOnly lock refuses it.
      emulator.locks.put(DEMO.linuxVm.nicNsgId, 'frozen', { properties: { level: 'ReadOnly' } });
      await rejectsWithArm(
        network.networkSecurityGroups.beginCreateOrUpdateAndWait(rg, nicNsg, {
          location: before.location,
          flushConnection: true,
        }),
        409,
        'ScopeLocked',
      );
    },
  );
});
