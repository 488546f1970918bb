import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InvalidRequest } from '../../../shared/domain/errors';
import { parseRequestBody } from '../../../shared/domain/requestInput';

const VM =
  '/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1';

function problems(body: unknown): Array<{ field: string; reason: string }> {
  try {
    parseRequestBody(body);
  } catch (e) {
    assert.ok(e instanceof InvalidRequest);
    return e.problems;
  }
  assert.fail('expected InvalidRequest');
}

test('a valid body becomes an ask', () => {
  assert.deepEqual(
    parseRequestBody({
      vm: VM,
      ports: [22, 3389],
      duration: 'PT1H',
      sourcePrefix: '203.0.113.7/32',
      justification: 'x',
    }),
    {
      vmId: VM,
      ports: [22, 3389],
      protocol: undefined,
      sourcePrefix: '203.0.113.7/32',
      durationInSeconds: 3600,
      justification: 'x',
    },
  );
});

test('each bad field is named with its reason', () => {
  assert.deepEqual(problems({ vm: VM, ports: [0], duration: 'PT1H' }), [
    { field: 'ports[0]', reason: 'must be from 1 to 65535' },
  ]);
  assert.deepEqual(problems({ vm: VM, ports: [70000], duration: 'PT1H' }), [
    { field: 'ports[0]', reason: 'must be from 1 to 65535' },
  ]);
  assert.deepEqual(problems({ vm: VM, ports: [], duration: 'PT1H' }), [
    { field: 'ports', reason: 'must name at least one port' },
  ]);
  assert.deepEqual(problems({ vm: VM, ports: [22, 22], duration: 'PT1H' }), [
    { field: 'ports', reason: 'must not repeat a port' },
  ]);
  assert.equal(problems({ vm: VM, ports: [22.5], duration: 'PT1H' })[0]?.field, 'ports[0]');
  assert.equal(problems({ vm: 'vm1', ports: [22], duration: 'PT1H' })[0]?.field, 'vm');
  assert.match(problems({ vm: VM, ports: [22], duration: '1 hour' })[0]?.reason ?? '', /ISO-8601/);
  assert.deepEqual(problems({ vm: VM, ports: [22] }), [{ field: 'duration', reason: 'is required' }]);
  assert.deepEqual(problems({ vm: VM, ports: [22], duration: 'PT1H', prots: [1] }), [
    { field: 'prots', reason: 'is not a known field' },
  ]);
  assert.equal(
    problems({ vm: VM, ports: [22], duration: 'PT1H', justification: 'x'.repeat(1001) })[0]?.field,
    'justification',
  );
  assert.equal(problems(null)[0]?.field, '(body)');
  assert.equal(problems([1, 2])[0]?.field, '(body)');
});

test('every problem is reported at once', () => {
  const p = problems({ vm: 'x', ports: 'twenty-two', duration: 'soon' });
  assert.deepEqual(p.map((x) => x.field).sort(), ['duration', 'ports', 'vm']);
});

test('a non-VM resource id is refused', () => {
  const nic = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkInterfaces/nic1';
  assert.match(problems({ vm: nic, ports: [22], duration: 'PT1H' })[0]?.reason ?? '', /virtual machine/);
});
