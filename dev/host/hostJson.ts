import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/** The host.json settings the local host honours, with the Functions host's defaults. */
export interface HostSettings {
  /**
   * `functionTimeout`: past it the Functions host terminates the process, so nothing renews a message's lock or
   * visibility any more. Undefined for `-1` (unbounded). Default 30 minutes, the Flex Consumption plan's
   * (https://learn.microsoft.com/azure/azure-functions/functions-scale#timeout).
   */
  functionTimeoutInMs: number | undefined;
  queues: {
    batchSize: number;
    /** Fetch the next batch once no more than this many messages are still running. */
    newBatchThreshold: number;
    maxPollingIntervalInMs: number;
    visibilityTimeoutInMs: number;
    maxDequeueCount: number;
    messageEncoding: 'base64' | 'none';
  };
  serviceBus: {
    maxConcurrentCalls: number;
    /**
     * How long the host renews a message's lock while its function runs, and no longer: Azure's Service Bus
     * extension passes it to the processor as `MaxAutoLockRenewalDuration` (default 5 minutes,
     * https://learn.microsoft.com/azure/azure-functions/functions-bindings-service-bus#hostjson-settings).
     */
    maxAutoLockRenewalDurationInMs: number;
    autoCompleteMessages: boolean;
    /** Messages fetched ahead of their function; the local host fetches none ahead whatever it says. */
    prefetchCount: number;
  };
}

/** `hh:mm:ss` (optionally `d.hh:mm:ss` and fractions), as host.json writes TimeSpans. */
export function parseTimeSpan(text: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw new Error(`host.json: "${text}" is not a TimeSpan (hh:mm:ss)`);
  const [, d = '0', h = '0', min = '0', s = '0', frac = '0'] = m;
  return (
    ((Number(d) * 24 + Number(h)) * 3600 + Number(min) * 60 + Number(s)) * 1000 +
    Math.round(Number(`0.${frac}`) * 1000)
  );
}

export function readHostSettings(path: string): HostSettings {
  const json = JSON.parse(readFileSync(path, 'utf8')) as {
    functionTimeout?: unknown;
    extensions?: { queues?: Record<string, unknown>; serviceBus?: Record<string, unknown> };
  };
  const q = json.extensions?.queues ?? {};
  const sb = json.extensions?.serviceBus ?? {};
  const span = (v: unknown, fallback: string) => parseTimeSpan(typeof v === 'string' ? v : fallback);
  const batchSize = Number(q.batchSize ?? 16);
  return {
    functionTimeoutInMs:
      json.functionTimeout === '-1' || json.functionTimeout === -1
        ? undefined
        : span(json.functionTimeout, '00:30:00'),
    queues: {
      batchSize,
      // The extension's default: half a batch per CPU core.
      newBatchThreshold: Number(q.newBatchThreshold ?? Math.floor(batchSize / 2) * availableParallelism()),
      maxPollingIntervalInMs: span(q.maxPollingInterval, '00:01:00'),
      visibilityTimeoutInMs: span(q.visibilityTimeout, '00:00:00'),
      maxDequeueCount: Number(q.maxDequeueCount ?? 5),
      messageEncoding: q.messageEncoding === 'none' ? 'none' : 'base64',
    },
    serviceBus: {
      maxConcurrentCalls: Number(sb.maxConcurrentCalls ?? 16),
      maxAutoLockRenewalDurationInMs: span(sb.maxAutoLockRenewalDuration, '00:05:00'),
      autoCompleteMessages: sb.autoCompleteMessages !== false,
      prefetchCount: Number(sb.prefetchCount ?? 0),
    },
  };
}
