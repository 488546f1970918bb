/**
 * host.json and the Service Bus queues in infra/ against what the code relies on (docs/operations.md, "The host").
 * The rule runs on the repository and on a counterexample that breaks each part of it, so a rule that can no longer
 * fail is noticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { readHostSettings } from '../../dev/host/hostJson';
import type { HostSettings } from '../../dev/host/hostJson';
import { QUEUE_MESSAGE_LEASE_IN_MS } from '../../dev/host/localHost';
import { parseDurationToSeconds } from '../../shared/domain/duration';
import { SERVICE_BUS_QUEUES } from '../../shared/names';
import { loadBicep, objectProperties, REPO_ROOT, resourceNames, stringValue } from './bicepModel';

/** Each Service Bus queue's duplicate detection window in ms, as infra/modules/service-bus.bicep sets it. */
async function duplicateWindows(): Promise<Map<string, number | undefined>> {
  const file = await loadBicep('infra/modules/service-bus.bicep');
  const out = new Map<string, number | undefined>();
  for (const r of file.resources) {
    if (r.type.split('@')[0] !== 'Microsoft.ServiceBus/namespaces/queues') continue;
    const props = objectProperties(objectProperties(r.body).get('properties'));
    const enabled = props.get('requiresDuplicateDetection')?.text === 'true';
    const window = stringValue(props.get('duplicateDetectionHistoryTimeWindow'));
    for (const name of resourceNames(file, r) ?? []) {
      out.set(name, enabled && window ? parseDurationToSeconds(window) * 1000 : undefined);
    }
  }
  return out;
}

/**
 * What the code needs of host.json and the queues:
 * - a Service Bus lock renewed for as long as a function may run: otherwise a slow expiry (ARM answering
 *   slowly, an NSG lease held elsewhere) loses its lock and the expiry is handled twice at once;
 * - queue messages as plain text (shared/adapters/storageQueues.ts sends JSON text, not base64);
 * - nothing prefetched (a prefetched message's lock runs out before its function starts) and messages completed
 *   by the host on success, abandoned on a throw (the handlers settle nothing themselves);
 * - a duplicate detection window on every Service Bus queue longer than the latest retry of a crashed invocation
 *   (the crash at the function timeout, its queue message visible again a lease later): the retry's schedule is
 *   then dropped as a duplicate and resolved to the message the crashed run scheduled (docs/operations.md).
 */
function problems(host: HostSettings, windows: Map<string, number | undefined>): string[] {
  const out: string[] = [];
  const timeout = host.functionTimeoutInMs;
  if (timeout === undefined)
    out.push('functionTimeout must be bounded: the lock renewal and the window depend on it');
  else if (host.serviceBus.maxAutoLockRenewalDurationInMs < timeout)
    out.push(
      `serviceBus.maxAutoLockRenewalDuration (${host.serviceBus.maxAutoLockRenewalDurationInMs} ms) is shorter than functionTimeout (${timeout} ms)`,
    );
  if (host.queues.messageEncoding !== 'none') out.push('queues.messageEncoding must be "none"');
  if (!host.serviceBus.autoCompleteMessages) out.push('serviceBus.autoCompleteMessages must be true');
  if (host.serviceBus.prefetchCount !== 0) out.push('serviceBus.prefetchCount must be 0');
  for (const queue of Object.values(SERVICE_BUS_QUEUES)) {
    const window = windows.get(queue);
    const latestRetry = (timeout ?? Number.POSITIVE_INFINITY) + QUEUE_MESSAGE_LEASE_IN_MS;
    if (window === undefined) out.push(`${queue}: duplicate detection is off or has no window`);
    else if (window <= latestRetry)
      out.push(
        `${queue}: duplicate detection window ${window} ms is not longer than a retry's ${latestRetry} ms`,
      );
  }
  return out;
}

function hostJson(json: object): HostSettings {
  const dir = mkdtempSync(path.join(tmpdir(), 'host-json-'));
  writeFileSync(path.join(dir, 'host.json'), JSON.stringify(json));
  return readHostSettings(path.join(dir, 'host.json'));
}

void test('host.json and the Service Bus queues give the code what it relies on', async () => {
  const host = readHostSettings(path.join(REPO_ROOT, 'host.json'));
  assert.deepEqual(problems(host, await duplicateWindows()), []);
});

void test('the host.json rule catches each thing it guards', () => {
  const host = hostJson({
    functionTimeout: '00:10:00',
    extensions: {
      queues: { messageEncoding: 'base64' },
      serviceBus: { maxAutoLockRenewalDuration: '00:05:00', autoCompleteMessages: false, prefetchCount: 20 },
    },
  });
  const windows = new Map([[SERVICE_BUS_QUEUES.expirations, 600_000]]);
  assert.deepEqual(problems(host, windows), [
    'serviceBus.maxAutoLockRenewalDuration (300000 ms) is shorter than functionTimeout (600000 ms)',
    'queues.messageEncoding must be "none"',
    'serviceBus.autoCompleteMessages must be true',
    'serviceBus.prefetchCount must be 0',
    "jit-expirations: duplicate detection window 600000 ms is not longer than a retry's 1200000 ms",
    'jit-starts: duplicate detection is off or has no window',
  ]);
  assert.deepEqual(problems(hostJson({ functionTimeout: '-1' }), new Map()).slice(0, 1), [
    'functionTimeout must be bounded: the lock renewal and the window depend on it',
  ]);
});
