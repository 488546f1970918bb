/**
 * The local host's trigger semantics against Azurite and the Service Bus emulator, with probe functions whose
 * handlers are slower than a queue message's invisibility or a Service Bus lock: a message must be handled once
 * while its function runs, as Azure's host keeps it, and the Service Bus lock lasts only as long as host.json's
 * maxAutoLockRenewalDuration says, as Azure's does.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueClient } from '@azure/storage-queue';
import { ServiceBusClient } from '@azure/service-bus';
import { Azurite } from '../../dev/azurite';
import { readHostSettings } from '../../dev/host/hostJson';
import type { HostSettings } from '../../dev/host/hostJson';
import { LocalHost } from '../../dev/host/localHost';
import { PROJECT_ROOT } from '../../dev/sandbox';
import { ServiceBusEmulator } from '../../dev/servicebus/emulator';
import { hostProbe } from '../support/hostProbe';
import { waitFor } from '../support/sandbox';

const LOCK_IN_MS = 1000;
const QUEUE = 'probe-queue';

describe('the local host keeps a message to one invocation while its function runs', () => {
  const azurite = new Azurite({ blobPort: 0, queuePort: 0, tablePort: 0 });
  const bus = new ServiceBusEmulator({
    queues: [
      { name: 'probe-bus', lockDurationInMs: LOCK_IN_MS },
      { name: 'probe-bus-short', lockDurationInMs: LOCK_IN_MS },
    ],
  });
  let host: LocalHost | undefined;

  before(async () => {
    await Promise.all([azurite.start(), bus.start()]);
  });
  after(async () => {
    await host?.stop();
    await Promise.all([azurite.stop(), bus.stop()]);
  });

  async function startHost(
    busQueue: string,
    change: (h: HostSettings) => HostSettings,
    queueMessageLeaseInMs?: number,
  ): Promise<void> {
    await host?.stop();
    const base = readHostSettings(join(PROJECT_ROOT, 'host.json'));
    host = new LocalHost({
      functionsDir: join(PROJECT_ROOT, 'dist', 'test', 'fixtures', 'hostFunctions'),
      host: change({ ...base, queues: { ...base.queues, maxPollingIntervalInMs: 100 } }),
      settings: {
        AzureWebJobsStorage: azurite.connectionString,
        ServiceBusConnection: bus.connectionString,
        PROBE_QUEUE: QUEUE,
        PROBE_BUS_QUEUE: busQueue,
      },
      httpPort: 0,
      log: () => undefined,
      // The probe functions use none of the app's services.
      withServices: false,
      ...(queueMessageLeaseInMs === undefined ? {} : { queueMessageLeaseInMs }),
    });
    await host.start();
  }

  test('a storage-queue message stays invisible while a function slower than its lease runs', async () => {
    const leaseInMs = 2000;
    await startHost('probe-bus', (h) => h, leaseInMs);
    hostProbe.delayInMs = 2.5 * leaseInMs;
    const body = { probe: 'slow queue message' };
    const queue = new QueueClient(azurite.connectionString, QUEUE);
    await queue.createIfNotExists();
    await queue.sendMessage(JSON.stringify(body));
    await waitFor(
      'the message to be handled and deleted',
      async () => {
        const { approximateMessagesCount } = await queue.getProperties();
        return hostProbe.count('queue', body) > 0 && approximateMessagesCount === 0;
      },
      20_000,
    );
    // Long enough for a message that had become visible again to be taken once more.
    await sleep(leaseInMs);
    assert.equal(hostProbe.count('queue', body), 1, 'run once, not again by a second dequeue');
    const poison = new QueueClient(azurite.connectionString, `${QUEUE}-poison`);
    assert.equal((await poison.exists()) ? (await poison.getProperties()).approximateMessagesCount : 0, 0);
  });

  test('a Service Bus lock renewed until functionTimeout holds a function slower than the lock', async () => {
    await startHost('probe-bus', (h) => ({
      ...h,
      functionTimeoutInMs: 10_000,
      serviceBus: { ...h.serviceBus, maxAutoLockRenewalDurationInMs: 10_000 },
    }));
    hostProbe.delayInMs = 3 * LOCK_IN_MS;
    const body = { probe: 'slow bus message' };
    await send('probe-bus', body);
    await waitFor('the message to be completed', () => bus.stats('probe-bus').completed === 1, 20_000);
    await sleep(2 * LOCK_IN_MS);
    assert.equal(hostProbe.count('bus', body), 1, 'run once');
    assert.deepEqual(bus.stats('probe-bus'), { scheduled: 0, active: 0, deadLettered: 0, completed: 1 });
  });

  test('a Service Bus lock renewed for less than the function runs is lost, and the message runs twice', async () => {
    // What Azure does with maxAutoLockRenewalDuration shorter than a slow invocation (test/infra/hostJson.test.ts
    // keeps host.json from allowing one): the lock runs out and another delivery starts.
    await startHost('probe-bus-short', (h) => ({
      ...h,
      functionTimeoutInMs: 10_000,
      serviceBus: { ...h.serviceBus, maxAutoLockRenewalDurationInMs: LOCK_IN_MS },
    }));
    hostProbe.delayInMs = 3 * LOCK_IN_MS;
    const body = { probe: 'lock lost' };
    await send('probe-bus-short', body);
    await waitFor('a second delivery', () => hostProbe.count('bus', body) >= 2, 20_000);
  });

  async function send(queue: string, body: unknown): Promise<void> {
    const client = new ServiceBusClient(bus.connectionString);
    try {
      await client.createSender(queue).sendMessages({ body, contentType: 'application/json' });
    } finally {
      await client.close();
    }
  }
});
