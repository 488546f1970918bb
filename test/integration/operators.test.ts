/**
 * What operators see, on the sandbox: the signals a grant's life emits (with the names and attributes the alerts
 * and the workbook query), the Teams, Slack and webhook deliveries, their retries and dead-letter, and a poisoned
 * queue message. Signals are captured with OpenTelemetry's in-memory exporters; deliveries by the webhook catcher.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { QueueClient } from '@azure/storage-queue';
import { DEMO } from '../../dev/arm/emulator';
import { SANDBOX_TARGETS } from '../../dev/sandbox';
import type { Sandbox } from '../../dev/sandbox';
import type { CaughtDelivery } from '../../dev/webhooks/catcher';
import { services } from '../../shared/composition';
import { verifyWebhookSignature, WEBHOOK_HEADERS } from '../../shared/domain/notifications';
import { reconcile } from '../../shared/usecases/reconcile';
import { captureSignals } from '../support/signals';
import { slackProblems, teamsProblems, webhookProblems } from '../support/payloads';
import { api, sleep, startSandbox, waitFor } from '../support/sandbox';

const VM = DEMO.linuxVm.id;
const signals = captureSignals();

async function request(sandbox: Sandbox, duration: string, vm = VM, ports = [22]): Promise<string> {
  const res = await api(sandbox, 'POST', 'requests', {
    vm,
    ports,
    sourcePrefix: '203.0.113.7/32',
    duration,
    justification: 'operators test',
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return res.body.id as string;
}

async function statusOf(sandbox: Sandbox, id: string): Promise<{ status: string; expiresAt?: string }> {
  return (await api(sandbox, 'GET', `requests/${id}`)).body as { status: string; expiresAt?: string };
}

const about = (id: string, kind: string) => (d: CaughtDelivery) => {
  const text = d.text;
  return text.includes(id) && (d.kind !== 'webhook' || (d.json as { kind?: string })?.kind === kind);
};

function poisonQueue(sandbox: Sandbox, queue: string): QueueClient {
  return new QueueClient(sandbox.azurite.connectionString, `${queue}-poison`);
}

describe('signals and notifications on the sandbox', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({
      telemetry: { meterProvider: signals.meterProvider, loggerProvider: signals.loggerProvider },
      notifyRetry: { maxAttempts: 3, firstRetryDelayInSeconds: 1 },
      chatTargets: true,
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a grant going live emits its signals and is posted to Teams, Slack and the signed webhook', async () => {
    const id = await request(sandbox, 'PT10M');
    await waitFor('the request to be active', async () => (await statusOf(sandbox, id)).status === 'active');

    const changed = signals.events('jit.request.changed').filter((e) => e.attributes.requestId === id);
    assert.deepEqual(
      changed.map((e) => e.attributes.status),
      ['submitted', 'approved', 'active'],
    );
    const opened = signals.events('jit.grant.opened').find((e) => e.attributes.requestId === id);
    assert.ok(opened, 'a jit.grant.opened event');
    assert.equal(opened.attributes.vm, VM.toLowerCase());
    assert.equal(opened.attributes.requester, 'alice@example.com');
    assert.equal(opened.attributes.approvalMode, 'auto');
    assert.deepEqual(opened.attributes.ports, [22]);
    assert.equal(typeof opened.attributes.openLatencyInSeconds, 'number');
    const [count] = await signals.metrics('jit.grants.opened');
    assert.deepEqual(count?.attributes, { approvalMode: 'auto' });
    assert.ok((count?.value as number) >= 1);
    const [latency] = await signals.metrics('jit.grant.open_latency');
    assert.ok(latency && (latency.value as { count: number }).count >= 1);

    const teams = await sandbox.webhooks.waitFor(
      'Teams: live',
      (d) => d.kind === 'teams' && about(id, 'grant.live')(d) && d.text.includes('Access live'),
    );
    assert.deepEqual(teamsProblems(teams.json), []);
    assert.equal(teams.status, 202);
    const slack = await sandbox.webhooks.waitFor(
      'Slack: live',
      (d) => d.kind === 'slack' && d.text.includes('Access live') && d.text.includes(id),
    );
    assert.deepEqual(slackProblems(slack.json), []);
    const hook = await sandbox.webhooks.waitFor(
      'webhook: live',
      (d) => d.kind === 'webhook' && about(id, 'grant.live')(d),
    );
    assert.deepEqual(webhookProblems(hook.json), []);
    assert.equal(hook.target, SANDBOX_TARGETS.webhook);
    assert.equal(hook.signatureValid, true);
    // Verified here too, as a receiver would, with the key alone.
    const h = {
      signature: hook.headers[WEBHOOK_HEADERS.signature],
      timestamp: hook.headers[WEBHOOK_HEADERS.timestamp],
    };
    assert.equal(
      verifyWebhookSignature(sandbox.webhookSecret, h, hook.text, Math.floor(Date.now() / 1000)),
      true,
    );
    assert.equal(
      verifyWebhookSignature(
        sandbox.webhookSecret,
        h,
        hook.text.replace(id, 'x'),
        Math.floor(Date.now() / 1000),
      ),
      false,
    );
  });

  test('a grant closed late by the reconciler says how late, and who closed it', async () => {
    const id = await request(sandbox, 'PT15S');
    await waitFor('the request to be active', async () => (await statusOf(sandbox, id)).status === 'active');
    // Its expiry message is lost: only the reconciler (its timer, or the run below) can close it, past expiresAt
    // plus the grace (PT5S in the sandbox).
    const found = await services().deps.requests.get(id);
    await services().deps.scheduledMessages.cancel('expire', found!.value.expirySequenceNumber!);
    const expiresAt = Date.parse(found!.value.expiresAt!);
    await sleep(Math.max(0, expiresAt + 5500 - Date.now()));
    await waitFor(
      'the reconciler to close it',
      async () => {
        if ((await statusOf(sandbox, id)).status === 'expired') return true;
        await reconcile(services().deps);
        return (await statusOf(sandbox, id)).status === 'expired';
      },
      30_000,
      1000,
    );

    const closed = signals.events('jit.grant.closed').find((e) => e.attributes.requestId === id);
    assert.ok(closed, 'a jit.grant.closed event');
    assert.equal(closed.attributes.closedBy, 'system:reconciler');
    assert.equal(closed.attributes.status, 'expired');
    assert.ok((closed.attributes.closeLagInSeconds as number) >= 5, JSON.stringify(closed.attributes));
    const lag = (await signals.metrics('jit.grant.close_lag')).find(
      (m) => m.attributes.closedBy === 'system:reconciler',
    );
    assert.ok(lag && (lag.value as { max?: number }).max! >= 5, JSON.stringify(lag));
    const repairs = (await signals.metrics('jit.reconcile.repairs')).find(
      (m) => m.attributes.kind === 'closed-expired',
    );
    assert.ok(repairs && (repairs.value as number) >= 1);
    assert.ok(
      signals.events('jit.reconcile.completed').some((e) => (e.attributes.closedExpired as number) >= 1),
    );
    await sandbox.webhooks.waitFor(
      'webhook: ended',
      (d) => d.kind === 'webhook' && about(id, 'grant.ended')(d),
    );
  });

  test('approval needed reaches the channels with each approver’s link', async () => {
    const id = await request(sandbox, 'PT30M', DEMO.windowsVm.id, [3389]);
    const hook = await sandbox.webhooks.waitFor(
      'webhook: approval needed',
      (d) => d.kind === 'webhook' && about(id, 'approval.needed')(d),
    );
    const body = hook.json as { approvals: Array<{ approver: string; url: string }> };
    assert.equal(body.approvals.length, 2);
    assert.ok(
      body.approvals.every((a) => /approver2?@example\.com/.test(a.approver)),
      JSON.stringify(body.approvals),
    );
    // Each link opens the approval page for its approver.
    const page = await fetch(body.approvals[0]!.url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), new RegExp(id));
    const teams = await sandbox.webhooks.waitFor(
      'Teams: approval needed',
      (d) => d.kind === 'teams' && d.text.includes(id) && d.text.includes('Approval needed'),
    );
    assert.deepEqual(teamsProblems(teams.json), []);
  });

  test('a receiver that keeps failing gets its retries, then the delivery is dead-lettered; the grant is not held up', async () => {
    sandbox.webhooks.failNext(SANDBOX_TARGETS.slack, 503, 10);
    const id = await request(sandbox, 'PT10M');
    await waitFor('the request to be active', async () => (await statusOf(sandbox, id)).status === 'active');
    // The others are delivered at once.
    await sandbox.webhooks.waitFor(
      'webhook: live',
      (d) => d.kind === 'webhook' && about(id, 'grant.live')(d),
    );
    const dead = await waitFor(
      'the Slack delivery to be dead-lettered',
      () =>
        signals
          .events('jit.notification.dead-lettered')
          .find((e) => e.attributes.requestId === id && e.attributes.kind === 'grant.live'),
      20_000,
    );
    assert.equal(dead.attributes.targetType, 'slack');
    assert.equal(dead.attributes.attempts, 3);
    assert.match(String(dead.attributes.error), /slack answered 503/);
    const attempts = sandbox.webhooks
      .list()
      .filter((d) => d.kind === 'slack' && d.text.includes(id) && d.text.includes('Access live'));
    assert.equal(attempts.length, 3);
    const peeked = await poisonQueue(sandbox, 'jit-notifications').peekMessages({ numberOfMessages: 32 });
    const letter = peeked.peekedMessageItems
      .map(
        (m) =>
          JSON.parse(m.messageText) as {
            target: string;
            error: string;
            notification: { request?: { id: string } };
          },
      )
      .find((m) => m.notification.request?.id === id && m.target === SANDBOX_TARGETS.slack);
    assert.ok(letter, 'the delivery is in jit-notifications-poison');
    assert.match(letter.error, /503/);
    const [deadCount] = await signals.metrics('jit.notifications.dead_lettered');
    assert.deepEqual(deadCount?.attributes, { targetType: 'slack' });
  });

  test('a queue message that fails its last attempt is reported as it goes to the poison queue', async () => {
    // Every read of the VM's NIC fails: the grant's apply throws on each of its five attempts. (Not the VM itself:
    // submission reads the VM for its canonical id and would answer 503; its read of the path is best effort.)
    sandbox.arm.faults.inject({
      method: 'GET',
      pathIncludes: 'networkInterfaces/demo-vm-nic',
      status: 500,
      code: 'InternalServerError',
      rate: 1,
    });
    const id = await request(sandbox, 'PT10M');
    const poisoned = await waitFor(
      'jit.message.poisoned',
      () => signals.events('jit.message.poisoned').find((e) => e.attributes.requestId === id),
      30_000,
    );
    assert.equal(poisoned.attributes.queue, 'jit-grants');
    assert.equal(poisoned.attributes.function, 'applyGrant');
    assert.equal(poisoned.attributes.attempts, 5);
    const [count] = await signals.metrics('jit.messages.poisoned');
    assert.deepEqual(count?.attributes, { queue: 'jit-grants' });
    await waitFor('the message in jit-grants-poison', async () =>
      (
        await poisonQueue(sandbox, 'jit-grants').peekMessages({ numberOfMessages: 32 })
      ).peekedMessageItems.some((m) => m.messageText.includes(id)),
    );
  });
});
