/**
 * The life of a grant after it is asked for, end to end on the sandbox through the real SDK clients: extend,
 * revoke early, start later, cancel before the start, and list one's requests. Tests run concurrently (each
 * follows its own requests) because most of their time is spent waiting for scheduled messages.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ServiceBusClient } from '@azure/service-bus';
import Long from 'long';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import { reconcile } from '../../shared/usecases/reconcile';
import type { Policy } from '../../shared/domain/types';
import { SERVICE_BUS_QUEUES, TABLES } from '../../shared/names';
import { api, startSandbox, waitFor } from '../support/sandbox';
import {
  assertAudited,
  closingBegins,
  demoGroupPolicy,
  rulesInAll,
  rulesInNone,
  scheduledFor,
  view,
} from '../support/observe';
import type { RequestBody } from '../support/observe';

const VM = DEMO.linuxVm.id;
const NSGS = DEMO.linuxVm.nsgIds;
const WIN_NSGS = [DEMO.subnetNsgId];

async function submit(sandbox: Sandbox, body: Record<string, unknown>, user = 'alice@example.com') {
  const res = await api(sandbox, 'POST', 'requests', { vm: VM, ports: [22], ...body }, user);
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body as RequestBody;
}

async function until(sandbox: Sandbox, id: string, status: string, timeoutInMs = 20_000) {
  const seen = new Set<string>();
  return waitFor(
    `request ${id} to be ${status}`,
    async () => {
      const v = await view(sandbox, id);
      seen.add(v.status);
      if (v.status === status) return v;
      throw new Error(`seen ${[...seen].join(', ')}`);
    },
    timeoutInMs,
  );
}

async function sendRaw(sandbox: Sandbox, queue: string, body: unknown): Promise<void> {
  const bus = new ServiceBusClient(sandbox.settings.ServiceBusConnection!);
  try {
    await bus.createSender(queue).sendMessages({ body, contentType: 'application/json' });
    await waitFor(`the message on ${queue} to be consumed`, () => {
      const s = sandbox.serviceBus.stats(queue);
      return s.active === 0;
    });
  } finally {
    await bus.close();
  }
}

describe('the grant lifecycle on the sandbox', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox();
  });
  after(async () => {
    await sandbox?.stop();
  });

  describe('each following its own requests', { concurrency: true }, () => {
    test('extending moves the expiry: the rule closes at the new time, not the old', async () => {
      // Long enough that the extension lands before the old expiry even when activation is slow (a busy machine
      // has taken 5 s); had it not, the answer would be a 409 saying access expired meanwhile.
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.21', duration: 'PT10S' });
      const active = await until(sandbox, created.id, 'active');
      const oldExpiry = Date.parse(active.expiresAt!);

      const res = await api(sandbox, 'POST', `requests/${created.id}/extend`, { duration: 'PT5S' });
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const extended = res.body as RequestBody;
      const newExpiry = Date.parse(extended.expiresAt!);
      assert.equal(newExpiry - oldExpiry, 5000);
      assert.equal(extended.status, 'active');
      assert.equal(extended.durationInSeconds, 15);
      // One expiry message, for the new time (enqueued as closing begins): the old one was cancelled.
      const scheduled = scheduledFor(sandbox, SERVICE_BUS_QUEUES.expirations, created.id);
      assert.deepEqual(
        scheduled.map((m) => [m.messageId, m.scheduledEnqueueTime.getTime()]),
        [[`expire:${created.id}:${newExpiry}`, closingBegins(extended)]],
      );
      for await (const g of sandbox.table(TABLES.grants).listEntities<{ expiresAt: string }>({
        queryOptions: { filter: odata`PartitionKey eq ${created.id}` },
      })) {
        assert.equal(g.expiresAt, extended.expiresAt, 'the grant rows carry the new expiry');
      }

      // Past the old expiry the rule is still there.
      await waitFor('the old expiry to pass', () => Date.now() > oldExpiry + 1500, 15_000);
      assert.ok(rulesInAll(sandbox, NSGS, created.id), 'rules still open after the old expiry');
      assert.equal((await view(sandbox, created.id)).status, 'active');

      const closedAt = await waitFor(
        'the rules to close',
        () => (rulesInNone(sandbox, NSGS, created.id) ? Date.now() : undefined),
        20_000,
        50,
      );
      const closing = closingBegins(extended);
      assert.ok(closedAt >= closing, `closed ${closing - closedAt} ms before closing the new expiry began`);
      const ended = await until(sandbox, created.id, 'expired');
      assert.ok(ended.rules.every((r) => r.state === 'removed'));
      await assertAudited(sandbox, created.id, [
        'request.submitted',
        'request.approved',
        'grant.activated',
        'grant.extended',
        'grant.expired',
      ]);
    });

    test('a scheduled request whose start message is lost is started by the reconciler', async () => {
      // Far enough ahead that, on a loaded machine, the start message is still waiting when the test cancels it
      // (3 s was not: the message came due first, or the request was approved after its start and began at once).
      const startAt = new Date(Date.now() + 10_000).toISOString();
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.29', duration: 'PT30S', startAt });
      const scheduled = await until(sandbox, created.id, 'scheduled');
      // Service Bus loses the start message.
      const bus = new ServiceBusClient(sandbox.settings.ServiceBusConnection!);
      try {
        await bus
          .createSender(SERVICE_BUS_QUEUES.starts)
          .cancelScheduledMessages(Long.fromString(scheduled.startSequenceNumber!));
      } finally {
        await bus.close();
      }
      assert.equal(scheduledFor(sandbox, SERVICE_BUS_QUEUES.starts, created.id).length, 0);
      // Past the start and the sandbox's 5 s grace it is still waiting; the reconciler starts it.
      await waitFor('the start and its grace to pass', () => Date.now() > Date.parse(startAt) + 5500, 25_000);
      assert.equal((await view(sandbox, created.id)).status, 'scheduled');
      const report = await reconcile(services().deps);
      assert.ok(report.redriven >= 1);
      const active = await until(sandbox, created.id, 'active');
      assert.ok(rulesInAll(sandbox, NSGS, created.id));
      assert.ok(
        Date.parse(active.expiresAt!) - Date.parse(active.activatedAt!) <= 31_000,
        'its whole duration, from now',
      );
      await assertAudited(sandbox, created.id, [
        'request.submitted',
        'request.scheduled',
        'request.starting',
        'grant.activated',
      ]);
      await api(sandbox, 'POST', `requests/${created.id}/revoke`);
    });

    test('revoking closes the rules at once, and the old expiry message is harmless', async () => {
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.22', duration: 'PT2M' });
      const active = await until(sandbox, created.id, 'active');
      assert.ok(rulesInAll(sandbox, NSGS, created.id));
      assert.equal(scheduledFor(sandbox, SERVICE_BUS_QUEUES.expirations, created.id).length, 1);

      const res = await api(sandbox, 'POST', `requests/${created.id}/revoke`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      const revoked = res.body as RequestBody;
      assert.equal(revoked.status, 'revoked');
      assert.equal(revoked.revokedBy, 'alice@example.com');
      assert.ok(revoked.endedAt && Date.parse(revoked.endedAt) < Date.parse(active.expiresAt!));
      // Closed by the time the call answers, and the expiry message is gone.
      assert.ok(rulesInNone(sandbox, NSGS, created.id), 'no rule left when revoke answers');
      assert.ok(revoked.rules.every((r) => r.state === 'removed'));
      assert.equal(scheduledFor(sandbox, SERVICE_BUS_QUEUES.expirations, created.id).length, 0);

      // Were the old expiry message to arrive anyway, nothing changes.
      await sendRaw(sandbox, SERVICE_BUS_QUEUES.expirations, {
        requestId: created.id,
        expiresAt: active.expiresAt,
      });
      assert.equal((await view(sandbox, created.id)).status, 'revoked');

      // Revoking again answers with the revoked request.
      const again = await api(sandbox, 'POST', `requests/${created.id}/revoke`);
      assert.equal(again.status, 200);
      assert.equal(again.body.status, 'revoked');
      assert.equal(again.body.endedAt, revoked.endedAt);
      await assertAudited(sandbox, created.id, [
        'request.submitted',
        'request.approved',
        'grant.activated',
        'grant.revoked',
      ]);
    });

    test('a scheduled request opens at its start and closes after its duration', async () => {
      // Far enough ahead that the policy has decided before then even on a busy machine (~1 s alone, 3.5 s seen
      // under load); a decision after the start rightly skips `scheduled`, and this test would not see it.
      const startAt = new Date(Date.now() + 12_000).toISOString();
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.23', duration: 'PT3S', startAt });
      assert.equal(created.startAt, startAt);
      const scheduled = await until(sandbox, created.id, 'scheduled');
      assert.ok(scheduled.approvedAt);
      assert.deepEqual(
        scheduledFor(sandbox, SERVICE_BUS_QUEUES.starts, created.id).map((m) =>
          m.scheduledEnqueueTime.toISOString(),
        ),
        [startAt],
      );
      assert.ok(rulesInNone(sandbox, NSGS, created.id), 'nothing open before the start');

      const openedAt = await waitFor(
        'the rules to open',
        () => (rulesInAll(sandbox, NSGS, created.id) ? Date.now() : undefined),
        20_000,
        50,
      );
      assert.ok(openedAt >= Date.parse(startAt), 'opened no earlier than the start');
      const ended = await until(sandbox, created.id, 'expired');
      assert.ok(rulesInNone(sandbox, NSGS, created.id));
      assert.ok(Date.parse(ended.activatedAt!) >= Date.parse(startAt));
      assert.ok(
        Date.parse(ended.expiresAt!) - Date.parse(startAt) >= 3000,
        'access lasted its duration from the start',
      );
      await assertAudited(sandbox, created.id, [
        'request.submitted',
        'request.scheduled',
        'request.starting',
        'grant.activated',
        'grant.expired',
      ]);
    });

    test('revoking a scheduled request cancels it before it starts', async () => {
      const startAt = new Date(Date.now() + 60_000).toISOString();
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.24', duration: 'PT1M', startAt });
      await until(sandbox, created.id, 'scheduled');
      assert.equal(scheduledFor(sandbox, SERVICE_BUS_QUEUES.starts, created.id).length, 1);

      const res = await api(sandbox, 'POST', `requests/${created.id}/revoke`);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.status, 'revoked');
      assert.match(res.body.statusReason, /before its start/);
      assert.equal(scheduledFor(sandbox, SERVICE_BUS_QUEUES.starts, created.id).length, 0, 'start cancelled');

      // A start message that arrives anyway opens nothing.
      await sendRaw(sandbox, SERVICE_BUS_QUEUES.starts, { requestId: created.id, startAt });
      const v = await view(sandbox, created.id);
      assert.equal(v.status, 'revoked');
      assert.equal(v.rules.length, 0);
      assert.ok(rulesInNone(sandbox, NSGS, created.id));
      await assertAudited(sandbox, created.id, [
        'request.submitted',
        'request.scheduled',
        'request.cancelled',
      ]);
    });

    test('a start time in the past or too far ahead is refused, naming the field', async () => {
      for (const startAt of [
        new Date(Date.now() - 60_000).toISOString(),
        new Date(Date.now() + 31 * 86400_000).toISOString(),
        '2026-12-01 22:00',
      ]) {
        const res = await api(sandbox, 'POST', 'requests', {
          vm: VM,
          ports: [22],
          duration: 'PT1H',
          sourcePrefix: '203.0.113.25',
          startAt,
        });
        assert.equal(res.status, 400, startAt);
        assert.equal(res.body.errors[0].field, 'startAt');
      }
    });

    test('ended access cannot be revoked or extended, and the answer says it ended', async () => {
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.26', duration: 'PT2S' });
      await until(sandbox, created.id, 'expired');
      for (const [path, body] of [
        ['revoke', undefined],
        ['extend', { duration: 'PT5M' }],
      ] as const) {
        const res = await api(sandbox, 'POST', `requests/${created.id}/${path}`, body);
        assert.equal(res.status, 409, `${path}: ${JSON.stringify(res.body)}`);
        assert.equal(res.headers.get('content-type'), 'application/problem+json');
        assert.match(res.body.type, /#accessalreadyended$/);
        assert.equal(res.body.requestStatus, 'expired');
        assert.match(res.body.detail, /is expired at/);
      }
    });

    test("an extension must fit the policy's maximum, and the answer says how much is left", async () => {
      const created = await submit(sandbox, { sourcePrefix: '203.0.113.27', duration: 'PT2H' });
      await until(sandbox, created.id, 'active');
      const over = await api(sandbox, 'POST', `requests/${created.id}/extend`, { duration: 'PT1H30M' });
      assert.equal(over.status, 403, JSON.stringify(over.body));
      assert.match(over.body.detail, /3h30m in all, over the policy's maximum for port 22 of 3h/);
      assert.match(over.body.detail, /at most 1h/);

      const bad = await api(sandbox, 'POST', `requests/${created.id}/extend`, { duration: 'soon', by: 1 });
      assert.equal(bad.status, 400);
      assert.deepEqual(bad.body.errors.map((e: { field: string }) => e.field).sort(), ['by', 'duration']);
      const other = await api(
        sandbox,
        'POST',
        `requests/${created.id}/extend`,
        { duration: 'PT1M' },
        'bob@example.com',
      );
      assert.equal(other.status, 404);
      const auditor = await api(
        sandbox,
        'POST',
        `requests/${created.id}/extend`,
        { duration: 'PT1M' },
        'carol',
        {
          'x-jit-dev-roles': 'Jit.Auditor',
        },
      );
      assert.equal(auditor.status, 403);

      const ok = await api(sandbox, 'POST', `requests/${created.id}/extend`, { duration: 'PT1H' });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      assert.equal(ok.body.durationInSeconds, 3 * 3600);
      const full = await api(sandbox, 'POST', `requests/${created.id}/extend`, { duration: 'PT1S' });
      assert.equal(full.status, 403);
      assert.match(full.body.detail, /cannot be extended further/);
      assert.equal((await api(sandbox, 'POST', `requests/${created.id}/revoke`)).status, 200);
    });

    test('the requester, an approver of the policy or an admin may revoke; others may not', async () => {
      const base = await demoGroupPolicy();
      const winPolicy = (mode: 'auto' | 'manual'): Policy => ({
        ...base,
        scope: DEMO.windowsVm.id.toLowerCase(),
        approval: { mode, approvers: ['user:bob@example.com'], required: 1, timeoutInSeconds: 3600 },
      });
      const policies = services().deps.policies;
      const ask = { vm: DEMO.windowsVm.id, ports: [3389], duration: 'PT30M', sourcePrefix: '198.51.100.30' };
      try {
        await policies.upsert(winPolicy('manual'));
        const first = await submit(sandbox, ask);
        await until(sandbox, first.id, 'pending-approval');
        assert.equal(
          (await api(sandbox, 'POST', `requests/${first.id}/revoke`, undefined, 'mallory')).status,
          404,
        );
        const auditor = await api(sandbox, 'POST', `requests/${first.id}/revoke`, undefined, 'carol', {
          'x-jit-dev-roles': 'Jit.Auditor',
        });
        assert.equal(auditor.status, 403);
        assert.match(auditor.body.detail, /requester, an approver of its policy or an admin/);
        const byApprover = await api(
          sandbox,
          'POST',
          `requests/${first.id}/revoke`,
          undefined,
          'bob@example.com',
        );
        assert.equal(byApprover.status, 200, JSON.stringify(byApprover.body));
        assert.equal(byApprover.body.status, 'revoked');
        assert.equal(byApprover.body.revokedBy, 'bob@example.com');

        const second = await submit(sandbox, ask);
        await until(sandbox, second.id, 'pending-approval');
        const byAdmin = await api(sandbox, 'POST', `requests/${second.id}/revoke`, undefined, 'dave', {
          'x-jit-dev-roles': 'Jit.Admin',
        });
        assert.equal(byAdmin.status, 200);
        assert.equal(byAdmin.body.revokedBy, 'dave');

        // Live access under a policy that (now) wants approval is not extended in place.
        await policies.upsert(winPolicy('auto'));
        const third = await submit(sandbox, ask);
        await until(sandbox, third.id, 'active');
        await policies.upsert(winPolicy('manual'));
        const ext = await api(sandbox, 'POST', `requests/${third.id}/extend`, { duration: 'PT5M' });
        assert.equal(ext.status, 403);
        assert.match(ext.body.detail, /requires approval.*submit a new request/);
        const byApproverLive = await api(
          sandbox,
          'POST',
          `requests/${third.id}/revoke`,
          undefined,
          'bob@example.com',
        );
        assert.equal(byApproverLive.status, 200);
        assert.ok(rulesInNone(sandbox, WIN_NSGS, third.id));
      } finally {
        // Back to what the resource group's policy says, for anything else that uses the Windows VM.
        await policies.upsert({ ...base, scope: DEMO.windowsVm.id.toLowerCase() });
      }
    });

    test('listing: newest first, filtered, paged with a continuation token; admins may name the requester', async () => {
      const user = 'pager@example.com';
      const later = new Date(Date.now() + 86400_000).toISOString();
      const ids: string[] = [];
      for (let i = 0; i < 5; i++) {
        const body =
          i < 3
            ? { sourcePrefix: '203.0.113.28', duration: 'PT1M', startAt: later }
            : {
                sourcePrefix: '203.0.113.28',
                duration: 'PT1M',
                vm: i === 4 ? DEMO.windowsVm.id : VM,
                ports: [i === 4 ? 3389 : 22],
              };
        ids.push((await submit(sandbox, body, user)).id);
      }
      const list = (query: string, as = user, headers: Record<string, string> = {}) =>
        api(sandbox, 'GET', `requests${query}`, undefined, as, headers);

      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const res = await list(`?limit=2${token ? `&continuationToken=${encodeURIComponent(token)}` : ''}`);
        assert.equal(res.status, 200, JSON.stringify(res.body));
        assert.ok(res.body.items.length <= 2);
        seen.push(...res.body.items.map((r: RequestBody) => r.id));
        token = res.body.continuationToken;
        pages++;
      } while (token);
      assert.equal(pages, 3);
      assert.deepEqual(seen, [...ids].reverse(), 'every request once, newest first');

      await waitFor('the three to be scheduled', async () => {
        const res = await list('?status=scheduled');
        return res.body.items.length === 3;
      });
      const onWin = await list(`?vm=${encodeURIComponent(DEMO.windowsVm.id)}`);
      assert.deepEqual(
        onWin.body.items.map((r: RequestBody) => r.id),
        [ids[4]],
      );
      assert.equal((await api(sandbox, 'POST', `requests/${ids[0]}/revoke`, undefined, user)).status, 200);
      const revoked = await list('?status=revoked');
      assert.deepEqual(
        revoked.body.items.map((r: RequestBody) => r.id),
        [ids[0]],
      );

      for (const bad of [
        '?limit=0',
        '?limit=x',
        '?status=bogus',
        '?continuationToken=nonsense',
        '?colour=red',
        '?vm=demo-vm',
      ]) {
        const res = await list(bad);
        assert.equal(res.status, 400, `${bad}: ${JSON.stringify(res.body)}`);
      }
      const others = await list('', 'mallory');
      assert.equal(others.status, 200);
      assert.ok(
        !others.body.items.some((r: RequestBody) => ids.includes(r.id)),
        "nobody sees another's list",
      );
      assert.equal((await list(`?requester=${user}`, 'mallory')).status, 403);
      const asAdmin = await list(`?requester=${encodeURIComponent(user)}&limit=100`, 'dave', {
        'x-jit-dev-roles': 'Jit.Admin',
      });
      assert.equal(asAdmin.status, 200);
      assert.equal(asAdmin.body.items.length, 5);
      for (const id of ids) await api(sandbox, 'POST', `requests/${id}/revoke`, undefined, user);
    });
  });

  // Alone, after the others: it holds up writes to the shared subnet NSG while ARM throttles it.
  test('revoking while the rules are being written leaves no rule behind', async () => {
    const created = await submit(sandbox, { sourcePrefix: '203.0.113.29', duration: 'PT5M' });
    const rule = `/securityrules/jit-${created.id.toLowerCase()}`;
    // Throttle this grant's first write, and revoke while applyGrant waits to write it again.
    sandbox.arm.faults.inject({
      method: 'PUT',
      pathIncludes: rule,
      status: 429,
      code: 'TooManyRequests',
      times: 1,
      retryAfterInSeconds: 2,
    });
    const puts = (ok: boolean) =>
      sandbox.arm.log.filter(
        (l) => l.method === 'PUT' && l.path.toLowerCase().endsWith(rule) && l.status < 300 === ok,
      ).length;
    await waitFor('the first write to be throttled', () => puts(false) === 1, 20_000, 20);
    const res = await api(sandbox, 'POST', `requests/${created.id}/revoke`);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.status, 'revoked');
    await waitFor('applyGrant to finish writing both rules', () => puts(true) === NSGS.length, 30_000);
    await waitFor('the rules it wrote to be removed', () => rulesInNone(sandbox, NSGS, created.id), 20_000);
    const v = await view(sandbox, created.id);
    assert.equal(v.status, 'revoked');
    assert.ok(
      v.rules.every((r) => r.state === 'removed'),
      JSON.stringify(v.rules),
    );
    // applyGrant may still be finishing (its ARM write is acknowledged before the rule lands): whatever expiry it
    // scheduled must end up cancelled, and no rule may come back.
    await waitFor(
      'no expiry left',
      () => scheduledFor(sandbox, SERVICE_BUS_QUEUES.expirations, created.id).length === 0,
      20_000,
    );
    assert.ok(rulesInNone(sandbox, NSGS, created.id), 'no rule came back');
  });
});
