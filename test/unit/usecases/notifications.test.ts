/**
 * Telling people what happened, against the in-memory ports: the requester's mail, and chat and webhook deliveries
 * queued per target, retried with a growing delay and dead-lettered when they will not succeed. None of it may
 * undo or fail the change it reports.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac, randomBytes } from 'node:crypto';
import { WEBHOOK_HEADERS } from '../../../shared/domain/notifications';
import type { NotifyTarget } from '../../../shared/domain/notifications';
import { deliverNotification } from '../../../shared/usecases/notifyChannels';
import { aPolicy, aPrincipal, aRequestBody, resourceGroupOf } from '../../support/builders';
import { memoryWorld } from '../../support/world';

const alice = aPrincipal('alice@example.com');
const secret = new Uint8Array(randomBytes(32));
const hook: NotifyTarget = {
  name: 'ops-hook',
  type: 'webhook',
  url: 'https://hooks.example.com/jit',
  secret,
};
const teams: NotifyTarget = {
  name: 'teams',
  type: 'teams',
  url: 'https://example.webhook.office.com/x',
  events: ['grant.live'],
};

async function liveWith(targets: NotifyTarget[]) {
  const w = memoryWorld({ targets });
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  return { w, id: r.id };
}

test('each target gets the kinds it wants, one delivery each, in order', async () => {
  const { w, id } = await liveWith([hook, teams]);
  assert.deepEqual(
    w.notifications.queued.map((q) => [q.message.target, q.message.notification.kind, q.message.attempt]),
    [
      ['ops-hook', 'request.approved', 1],
      ['ops-hook', 'grant.live', 1],
      ['teams', 'grant.live', 1],
    ],
  );
  assert.ok(w.notifications.queued.every((q) => q.message.notification.request?.id === id));
});

test('a webhook delivery is posted signed; the receiver can check the signature with its secret', async () => {
  const { w } = await liveWith([hook]);
  const outcome = await deliverNotification(w.deps, w.notifications.queued[1]!.message);
  assert.equal(outcome, 'delivered');
  const [post] = w.webhooks.posts;
  assert.equal(post?.url, hook.url);
  assert.equal(JSON.parse(post.body).kind, 'grant.live');
  assert.equal(post?.headers[WEBHOOK_HEADERS.event], 'grant.live');
  const timestamp = post.headers[WEBHOOK_HEADERS.timestamp]!;
  const expected = createHmac('sha256', secret).update(`${timestamp}.${post.body}`).digest('hex');
  assert.ok(post.headers[WEBHOOK_HEADERS.signature]!.includes(expected), 'signed over timestamp and body');
});

test('a receiver that fails is tried again later; one that refuses, or the last attempt, is dead-lettered', async () => {
  const { w } = await liveWith([hook]);
  const message = w.notifications.queued[1]!.message;
  w.notifications.queued.length = 0;
  w.webhooks.answer = () => 503;
  assert.equal(await deliverNotification(w.deps, message), 'retrying');
  const [retry] = w.notifications.queued;
  assert.equal(retry?.message.attempt, 2);
  assert.ok((retry?.delayInSeconds ?? 0) >= 12 && (retry?.delayInSeconds ?? 0) <= 18, 'about 15 s first');
  assert.equal(await deliverNotification(w.deps, { ...message, attempt: 3 }), 'dead-lettered');
  w.webhooks.answer = () => 404;
  assert.equal(await deliverNotification(w.deps, message), 'dead-lettered', 'a 4xx is final at once');
  assert.deepEqual(
    w.notifications.poisoned.map((p) => [p.message.attempt, p.error]),
    [
      [3, 'webhook answered 503: no'],
      [1, 'webhook answered 404: no'],
    ],
  );
  assert.equal(w.signals.named('jit.notification.dead-lettered').length, 2);
  assert.equal(w.notifications.queued.length, 1, 'only the one retry was queued');
});

test('a delivery for a target no longer configured is dropped', async () => {
  const { w } = await liveWith([hook]);
  const message = { ...w.notifications.queued[0]!.message, target: 'removed-target' };
  assert.equal(await deliverNotification(w.deps, message), 'dropped');
  assert.deepEqual(w.webhooks.posts, []);
  assert.deepEqual(w.notifications.poisoned, []);
});

test('a mail server that does not answer never holds up or undoes access', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  w.mail.failSends = 10;
  const r = await w.submit(alice, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  assert.equal(w.network.jitRules(vm.nsgIds[0]!).length, 1);
  assert.deepEqual(w.mail.sent, []);
  assert.ok(w.log.at('warn').includes('notify.failed'));
});

test('an app requester (no mail address) gets no mail; a person does', async () => {
  const w = memoryWorld();
  const vm = w.addVm();
  await w.addPolicy(aPolicy({ scope: resourceGroupOf(vm) }));
  const app = aPrincipal('app:11111111-2222-3333-4444-555555555555');
  const r = await w.submit(app, aRequestBody(vm));
  await w.runQueues();
  assert.equal(w.request(r.id).status, 'active');
  assert.deepEqual(w.mail.sent, []);
});
