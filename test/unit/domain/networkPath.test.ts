import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GrantNotApplicable } from '../../../shared/domain/errors';
import { buildNetworkPath, planGrantRules } from '../../../shared/domain/networkPath';
import type { VmDescription } from '../../../shared/domain/networkPath';

const sub = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network';
const nsg = (name: string) => `${sub}/networkSecurityGroups/${name}`;
const subnet = (name: string) => `${sub}/virtualNetworks/vnet/subnets/${name}`;
const vm = (nics: VmDescription['nics']): VmDescription => ({
  id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1',
  name: 'vm1',
  nics,
});
const subnetNsgs = (map: Record<string, string | undefined>) => (id: string) =>
  Object.entries(map).find(([k]) => k.toLowerCase() === id.toLowerCase())?.[1];

describe('the network path in front of a VM', () => {
  test('subnet NSG first, then NIC NSG, ids lower-cased, each with the addresses it filters', () => {
    const path = buildNetworkPath(
      vm([
        {
          id: 'nic1',
          nsgId: nsg('Nic-NSG'),
          ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('a') }],
        },
      ]),
      subnetNsgs({ [subnet('a')]: nsg('Subnet-NSG') }),
    );
    assert.deepEqual(path.nsgIds, [nsg('subnet-nsg').toLowerCase(), nsg('nic-nsg').toLowerCase()]);
    assert.deepEqual(
      path.guards.map((g) => g.addresses),
      [['10.0.1.4'], ['10.0.1.4']],
    );
    assert.deepEqual(path.unguardedAddresses, []);
  });

  test('a NIC without its own NSG is guarded by the subnet NSG alone', () => {
    const path = buildNetworkPath(
      vm([{ id: 'nic1', ipConfigurations: [{ privateAddress: '10.0.1.5', subnetId: subnet('a') }] }]),
      subnetNsgs({ [subnet('a')]: nsg('subnet-nsg') }),
    );
    assert.deepEqual(path.nsgIds, [nsg('subnet-nsg').toLowerCase()]);
  });

  test('multiple NICs in different subnets: every NSG, each with only the addresses behind it', () => {
    const path = buildNetworkPath(
      vm([
        { id: 'nic1', ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('front') }] },
        {
          id: 'nic2',
          nsgId: nsg('nic2-nsg'),
          ipConfigurations: [{ privateAddress: '10.0.2.4', subnetId: subnet('back') }],
        },
        // A third NIC in a subnet without an NSG: nothing filters it.
        { id: 'nic3', ipConfigurations: [{ privateAddress: '10.0.3.4', subnetId: subnet('open') }] },
      ]),
      subnetNsgs({ [subnet('front')]: nsg('front-nsg'), [subnet('back')]: nsg('back-nsg') }),
    );
    assert.deepEqual(
      path.guards.map((g) => [g.nsgId.split('/').pop(), g.addresses]),
      [
        ['front-nsg', ['10.0.1.4']],
        ['back-nsg', ['10.0.2.4']],
        ['nic2-nsg', ['10.0.2.4']],
      ],
    );
    assert.deepEqual(path.unguardedAddresses, ['10.0.3.4']);
    // A grant opens exactly those addresses in exactly those NSGs.
    assert.deepEqual(
      planGrantRules(path, '203.0.113.7/32').map((p) => [p.nsgId.split('/').pop(), p.destinations]),
      [
        ['front-nsg', ['10.0.1.4']],
        ['back-nsg', ['10.0.2.4']],
        ['nic2-nsg', ['10.0.2.4']],
      ],
    );
  });

  test('one NSG shared by many VMs and by both a subnet and a NIC is listed once', () => {
    const shared = nsg('shared');
    const path = buildNetworkPath(
      vm([
        {
          id: 'nic1',
          nsgId: shared,
          ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('a') }],
        },
        { id: 'nic2', ipConfigurations: [{ privateAddress: '10.0.1.9', subnetId: subnet('a') }] },
      ]),
      subnetNsgs({ [subnet('a')]: shared.toUpperCase() }),
    );
    assert.deepEqual(path.nsgIds, [shared.toLowerCase()]);
    assert.deepEqual(path.guards[0]?.addresses, ['10.0.1.4', '10.0.1.9']);
  });

  test('dual stack: a grant opens only the family of its source; addresses are canonical', () => {
    const path = buildNetworkPath(
      vm([
        {
          id: 'nic1',
          nsgId: nsg('nic-nsg'),
          ipConfigurations: [
            { privateAddress: '10.0.1.4', subnetId: subnet('a') },
            { privateAddress: 'FD00:0:0:1::4', subnetId: subnet('a') },
          ],
        },
      ]),
      subnetNsgs({ [subnet('a')]: nsg('subnet-nsg') }),
    );
    assert.deepEqual(path.privateAddresses, ['10.0.1.4', 'fd00:0:0:1::4']);
    const v6 = planGrantRules(path, '2001:db8::7/128');
    assert.deepEqual(
      v6.map((p) => p.destinations),
      [['fd00:0:0:1::4'], ['fd00:0:0:1::4']],
    );
    const v4 = planGrantRules(path, '203.0.113.0/24');
    assert.deepEqual(
      v4.map((p) => p.destinations),
      [['10.0.1.4'], ['10.0.1.4']],
    );
    // `*` names no family; an NSG rule holds one: IPv4 where the VM has it.
    assert.deepEqual(planGrantRules(path, '*')[0]?.destinations, ['10.0.1.4']);
  });

  test('no NSG in the path, no address of the family, or none filtered: refused with the reason', () => {
    const bare = buildNetworkPath(
      vm([{ id: 'nic1', ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('open') }] }]),
      () => undefined,
    );
    assert.deepEqual(bare.nsgIds, []);
    assert.throws(
      () => planGrantRules(bare, '203.0.113.7'),
      (e: unknown) => {
        assert.ok(e instanceof GrantNotApplicable);
        assert.match(e.message, /no network security group in its path/);
        return true;
      },
    );
    const v4only = buildNetworkPath(
      vm([{ id: 'nic1', ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('a') }] }]),
      subnetNsgs({ [subnet('a')]: nsg('subnet-nsg') }),
    );
    assert.throws(() => planGrantRules(v4only, '2001:db8::1'), /no private IPv6 address/);
    // IPv6 reachable through a subnet without an NSG, IPv4 behind one.
    const v6open = buildNetworkPath(
      vm([
        { id: 'nic1', ipConfigurations: [{ privateAddress: '10.0.1.4', subnetId: subnet('a') }] },
        { id: 'nic2', ipConfigurations: [{ privateAddress: 'fd00::5', subnetId: subnet('open') }] },
      ]),
      subnetNsgs({ [subnet('a')]: nsg('subnet-nsg') }),
    );
    assert.throws(
      () => planGrantRules(v6open, '2001:db8::1'),
      /no network security group filters the VM's IPv6/,
    );
  });

  test('IP configurations without an address are skipped', () => {
    const path = buildNetworkPath(
      vm([
        {
          id: 'nic1',
          nsgId: nsg('n'),
          ipConfigurations: [{ subnetId: subnet('a') }, { privateAddress: 'bogus' }],
        },
      ]),
      () => undefined,
    );
    assert.deepEqual(path.privateAddresses, []);
    assert.deepEqual(path.guards, []);
  });
});
