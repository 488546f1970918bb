/**
 * The walking skeleton end to end, through the real Azure SDK clients against the sandbox's emulators:
 * request -> auto-approval -> NSG rule in every NSG in the path -> scheduled expiry -> rule gone.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueClient } from '@azure/storage-queue';
import { ServiceBusClient } from '@azure/service-bus';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import { QUEUES, SERVICE_BUS_QUEUES, TABLES } from '../../shared/names';
import { api, startSandbox, waitFor } from '../support/sandbox';
import { aRequestBody } from '../support/builders';
import { closingBegins } from '../support/observe';

const VM = DEMO.linuxVm.id;

/** The audit events of a grant on a VM behind two NSGs, from request to expiry. */
const LIFECYCLE = [
  'request.submitted',
  'request.approved',
  'grant.rule-applied',
  'grant.rule-applied',
  'grant.expiry-scheduled',
  'grant.activated',
  'grant.rule-removed',
  'grant.rule-removed',
  'grant.expired',
];

function jitRules(sandbox: Sandbox, nsgId: string) {
  return (sandbox.arm.getNsg(nsgId)?.securityRules ?? []).filter((r) => r.name.startsWith('jit-'));
}

/** The request's audit events, oldest first, from its index partition (RowKeys sort newest first). */
async function auditActions(sandbox: Sandbox, requestId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of sandbox.table(TABLES.audit).listEntities<{ action: string }>({
    queryOptions: { filter: odata`PartitionKey eq ${`request|${requestId}`}` },
  })) {
    out.push(e.action);
  }
  return out.reverse();
}

/**
 * The request's audit events once the last one is in: each is written just after the state change it records,
 * so the status can read `expired` a moment before `grant.expired` is in the trail.
 */
function lifecycleAudited(sandbox: Sandbox, id: string): Promise<string[]> {
  return waitFor('the audit trail to catch up', async () => {
    const actions = await auditActions(sandbox, id);
    return actions.length >= LIFECYCLE.length ? actions : undefined;
  });
}

async function countRows(sandbox: Sandbox, table: string): Promise<number> {
  let n = 0;
  for await (const row of sandbox.table(table).listEntities()) if (row) n++;
  return n;
}

async function status(sandbox: Sandbox, id: string) {
  return (await api(sandbox, 'GET', `requests/${id}`)).body as {
    status: string;
    expiresAt?: string;
    rules: Array<{ nsgId: string; ruleName: string; priority: number; state: string }>;
  };
}

describe('the auto-approval flow on the sandbox', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox();
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a request opens the port in every NSG in the path and closes it at expiry', async () => {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      sourcePrefix: '203.0.113.7/32',
      duration: 'PT4S',
      justification: 'walking skeleton',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const id = res.body.id as string;
    assert.equal(res.headers.get('location'), `/api/requests/${id}`);
    assert.equal(res.body.status, 'submitted');
    assert.equal(res.body.sourcePrefix, '203.0.113.7/32');

    const active = await waitFor('the request to be active', async () => {
      const s = await status(sandbox, id);
      return s.status === 'active' ? s : undefined;
    });
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      const rules = jitRules(sandbox, nsgId);
      assert.equal(rules.length, 1, `one JIT rule in ${nsgId}`);
      const p = rules[0]!.properties;
      assert.equal(rules[0]!.name, `jit-${id.toLowerCase()}`);
      assert.equal(p.access, 'Allow');
      assert.equal(p.direction, 'Inbound');
      assert.equal(p.sourceAddressPrefix, '203.0.113.7/32');
      assert.deepEqual(p.destinationAddressPrefixes, [DEMO.linuxVm.privateIp]);
      assert.deepEqual(p.destinationPortRanges, ['22']);
      assert.ok(p.priority >= 1000 && p.priority <= 1999, `priority ${p.priority} in the JIT band`);
    }
    assert.equal(active.rules.length, 2);
    assert.ok(active.rules.every((r) => r.state === 'applied'));
    // The one expiry message, enqueued when closing begins (JIT_CLOSE_LEAD, at most a tenth of the grant, ahead).
    const scheduled = sandbox.serviceBus
      .listScheduled(SERVICE_BUS_QUEUES.expirations)
      .filter((m) => (m.body as { requestId: string }).requestId === id);
    assert.equal(scheduled.length, 1);
    assert.equal(
      scheduled[0]!.scheduledEnqueueTime.getTime(),
      closingBegins({ ...active, durationInSeconds: 4 }),
    );

    const expired = await waitFor(
      'the request to expire',
      async () => {
        const s = await status(sandbox, id);
        return s.status === 'expired' ? s : undefined;
      },
      15_000,
    );
    const lagInMs = Date.now() - Date.parse(active.expiresAt!);
    assert.ok(lagInMs < 5000, `closed ${lagInMs} ms after expiry`);
    for (const nsgId of DEMO.linuxVm.nsgIds)
      assert.equal(jitRules(sandbox, nsgId).length, 0, `no JIT rule left in ${nsgId}`);
    assert.ok(expired.rules.every((r) => r.state === 'removed'));
    // The operator's baseline rule is untouched.
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      assert.ok(sandbox.arm.getNsg(nsgId)?.securityRules.some((r) => r.name === DEMO.baselineRule.name));
    }
    assert.deepEqual(await lifecycleAudited(sandbox, id), LIFECYCLE);
  });

  test('a VM behind only a subnet NSG gets one rule', async () => {
    // demo-win's own policy asks an approver (test/integration/approvals.test.ts); here only the path matters.
    const [winPolicy] = await services().deps.policies.getForScopes([DEMO.windowsVm.id.toLowerCase()]);
    assert.ok(winPolicy, 'demo-win has a policy of its own');
    await services().deps.policies.upsert({
      ...winPolicy,
      approval: { ...winPolicy.approval, mode: 'auto' },
      justification: { required: false },
    });
    const res = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.windowsVm.id,
      ports: [3389],
      sourcePrefix: '198.51.100.20',
      duration: 'PT1M',
    });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const s = await waitFor('active', async () => {
      const x = await status(sandbox, res.body.id);
      return x.status === 'active' ? x : undefined;
    });
    assert.deepEqual(
      s.rules.map((r) => r.nsgId),
      [DEMO.subnetNsgId.toLowerCase()],
    );
    assert.equal(
      jitRules(sandbox, DEMO.subnetNsgId).filter((r) => r.name === `jit-${String(res.body.id).toLowerCase()}`)
        .length,
      1,
    );
  });

  test('invalid input is a 400 naming the field, and writes nothing', async () => {
    const before = await countRows(sandbox, TABLES.requests);
    const cases: Array<[unknown, string]> = [
      [{ vm: VM, ports: [0], duration: 'PT1H' }, 'ports[0]'],
      [{ vm: VM, ports: [22], duration: 'one hour' }, 'duration'],
      [{ vm: 'demo-vm', ports: [22], duration: 'PT1H' }, 'vm'],
      [{ vm: VM, ports: [22], duration: 'PT1H', sourcePrefix: '10.0.0.1/24' }, 'sourcePrefix'],
      [{ vm: VM, ports: [22], duration: 'PT1H', extra: true }, 'extra'],
      ['{not json', '(body)'],
    ];
    for (const [body, field] of cases) {
      const res = await api(sandbox, 'POST', 'requests', body);
      assert.equal(res.status, 400, `${JSON.stringify(body)} -> ${res.status}`);
      assert.equal(res.headers.get('content-type'), 'application/problem+json');
      assert.ok(
        res.body.errors.some((e: { field: string }) => e.field === field),
        `${field} named in ${JSON.stringify(res.body)}`,
      );
    }
    const noType = await api(sandbox, 'POST', 'requests', 'x', 'alice@example.com', {
      'content-type': 'text/plain',
    });
    assert.equal(noType.status, 400);
    assert.equal(await countRows(sandbox, TABLES.requests), before);
  });

  test('no policy and not allowed give the same 403, and write nothing', async () => {
    const before = await countRows(sandbox, TABLES.requests);
    const unknownVm = VM.replace('demo-vm', 'no-such-vm').replace('demo-rg', 'other-rg');
    const a = await api(sandbox, 'POST', 'requests', {
      vm: unknownVm,
      ports: [22],
      duration: 'PT1H',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(a.status, 403);
    assert.equal(a.headers.get('content-type'), 'application/problem+json');
    const over = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      duration: 'PT4H',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(over.status, 403);
    assert.match(over.body.detail, /longer than the policy allows for port 22: at most 3h/);
    const port = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [5432],
      duration: 'PT1H',
      sourcePrefix: '203.0.113.7',
    });
    assert.equal(port.status, 403);
    const src = await api(sandbox, 'POST', 'requests', aRequestBody(VM, { sourcePrefix: '192.0.2.1' }));
    assert.equal(src.status, 403);
    assert.equal(await countRows(sandbox, TABLES.requests), before);
    // The same answer for a VM that exists and one that does not, so the API does not reveal which exist.
    const b = await api(sandbox, 'POST', 'requests', {
      vm: VM.replace('demo-rg', 'other-rg'),
      ports: [22],
      duration: 'PT1H',
      sourcePrefix: '203.0.113.7',
    });
    assert.deepEqual(a.body, b.body);
  });

  test('a caller without identity is refused, and requests are private to their requester', async () => {
    const anon = await api(sandbox, 'POST', 'requests', aRequestBody(VM), null);
    assert.equal(anon.status, 401);
    const mine = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      duration: 'PT1M',
      sourcePrefix: '203.0.113.8',
    });
    assert.equal(mine.status, 202);
    const other = await api(sandbox, 'GET', `requests/${mine.body.id}`, undefined, 'mallory@example.com');
    const missing = await api(
      sandbox,
      'GET',
      'requests/01J0000000000000000000000',
      undefined,
      'mallory@example.com',
    );
    assert.equal(other.status, 404);
    assert.equal(missing.status, 404);
    assert.equal(other.body.title, missing.body.title);
  });

  test('the default source is the caller address', async () => {
    const res = await api(sandbox, 'POST', 'requests', aRequestBody(VM, { duration: 'PT1M' }));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.sourcePrefix, '127.0.0.1/32');
  });

  test('every message delivered twice changes nothing', async () => {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      sourcePrefix: '203.0.113.9',
      duration: 'PT3S',
    });
    const id = res.body.id as string;
    await waitFor('active', async () => (await status(sandbox, id)).status === 'active');
    const cs = sandbox.settings.AzureWebJobsStorage!;
    // Duplicates of both queue hops, as at-least-once delivery may give them.
    await new QueueClient(cs, QUEUES.requests).sendMessage(JSON.stringify({ requestId: id }));
    await new QueueClient(cs, QUEUES.grants).sendMessage(JSON.stringify({ requestId: id }));
    await new QueueClient(cs, QUEUES.grants).sendMessage(JSON.stringify({ requestId: id }));
    await waitFor('the duplicates to be consumed', async () => {
      const q = await new QueueClient(cs, QUEUES.grants).getProperties();
      const r = await new QueueClient(cs, QUEUES.requests).getProperties();
      return q.approximateMessagesCount === 0 && r.approximateMessagesCount === 0;
    });
    const s = await status(sandbox, id);
    assert.equal(s.status, 'active');
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      assert.equal(jitRules(sandbox, nsgId).filter((r) => r.name === `jit-${id.toLowerCase()}`).length, 1);
    }
    const scheduled = () =>
      sandbox.serviceBus
        .listScheduled(SERVICE_BUS_QUEUES.expirations)
        .filter((m) => (m.body as { requestId: string }).requestId === id);
    assert.equal(scheduled().length, 1, 'one expiry message');
    const expiresAt = s.expiresAt!;
    await waitFor('expired', async () => (await status(sandbox, id)).status === 'expired', 15_000);
    // A duplicate expiry message after the fact is harmless.
    const bus = new ServiceBusClient(sandbox.settings.ServiceBusConnection!);
    try {
      await bus
        .createSender(SERVICE_BUS_QUEUES.expirations)
        .sendMessages({ body: { requestId: id, expiresAt }, contentType: 'application/json' });
      await waitFor(
        'the duplicate expiry to be consumed',
        () => sandbox.serviceBus.stats(SERVICE_BUS_QUEUES.expirations).active === 0,
      );
    } finally {
      await bus.close();
    }
    assert.equal((await status(sandbox, id)).status, 'expired');
    assert.deepEqual(await lifecycleAudited(sandbox, id), LIFECYCLE);
  });

  test('ARM answering 409 AnotherOperationInProgress and 429 once each still ends with the rule in place', async () => {
    sandbox.arm.faults.inject({
      method: 'PUT',
      pathIncludes: '/securityRules/jit-',
      status: 409,
      code: 'AnotherOperationInProgress',
      times: 1,
    });
    sandbox.arm.faults.inject({
      method: 'PUT',
      pathIncludes: '/securityRules/jit-',
      status: 429,
      code: 'TooManyRequests',
      times: 1,
      retryAfterInSeconds: 1,
    });
    const res = await api(sandbox, 'POST', 'requests', {
      vm: VM,
      ports: [22],
      sourcePrefix: '203.0.113.10',
      duration: 'PT2M',
    });
    const id = res.body.id as string;
    const s = await waitFor(
      'active despite the faults',
      async () => {
        const x = await status(sandbox, id);
        return x.status === 'active' ? x : undefined;
      },
      30_000,
    );
    for (const nsgId of DEMO.linuxVm.nsgIds) {
      assert.equal(jitRules(sandbox, nsgId).filter((r) => r.name === `jit-${id.toLowerCase()}`).length, 1);
    }
    assert.equal(s.rules.length, 2);
    const faulted = sandbox.arm.log.filter(
      (l) => l.method === 'PUT' && (l.status === 409 || l.status === 429),
    );
    assert.ok(faulted.length >= 2, 'both faults were served');
  });
});
