/**
 * Signals through the OpenTelemetry API: metrics on a Meter, events as log records carrying
 * `microsoft.custom_event.name`, which the Azure Monitor exporter sends to the `customEvents` table (the other
 * attributes become `customDimensions`). See "Send custom events" in
 * https://learn.microsoft.com/azure/azure-monitor/app/opentelemetry-add-modify and the exporter's
 * `MICROSOFT_CUSTOM_EVENT_NAME` (Azure/azure-sdk-for-js, sdk/monitor/monitor-opentelemetry-exporter).
 *
 * The providers are passed in: Azure's come from the Azure Monitor distro (shared/adapters/azureMonitor.ts), a
 * test's from an in-memory exporter; without either, the API's no-op providers drop everything.
 */
import type { Attributes, Counter, Histogram, MeterProvider } from '@opentelemetry/api';
import type { Logger as OtelLogger, LoggerProvider } from '@opentelemetry/api-logs';
import { SIGNAL_METRICS } from '../domain/signals';
import type {
  CounterName,
  EventAttributes,
  HistogramName,
  MetricAttributes,
  SignalEventName,
  Signals,
} from '../domain/signals';

/** The instrumentation scope every signal is emitted under (`cloud_RoleName` stays the Function App's). */
const SIGNAL_SCOPE = 'azure-jit-access';
/** The log attribute the Azure Monitor exporter turns into a `customEvents` row of that name. */
export const CUSTOM_EVENT_ATTRIBUTE = 'microsoft.custom_event.name';

export class OpenTelemetrySignals implements Signals {
  private readonly counters = new Map<string, Counter>();
  private readonly histograms = new Map<string, Histogram>();
  private readonly logger: OtelLogger;

  constructor(meterProvider: MeterProvider, loggerProvider: LoggerProvider) {
    const meter = meterProvider.getMeter(SIGNAL_SCOPE);
    for (const [name, m] of Object.entries(SIGNAL_METRICS)) {
      if (m.kind === 'counter') this.counters.set(name, meter.createCounter(name, { unit: m.unit }));
      else this.histograms.set(name, meter.createHistogram(name, { unit: m.unit }));
    }
    this.logger = loggerProvider.getLogger(SIGNAL_SCOPE);
  }

  event<N extends SignalEventName>(name: N, attributes: EventAttributes<N>): void {
    guard(() =>
      this.logger.emit({
        eventName: name,
        body: name,
        attributes: { [CUSTOM_EVENT_ATTRIBUTE]: name, ...defined(attributes) },
      }),
    );
  }

  add<N extends CounterName>(name: N, value: number, attributes?: MetricAttributes<N>): void {
    guard(() => this.counters.get(name)?.add(value, defined(attributes)));
  }

  record<N extends HistogramName>(name: N, value: number, attributes?: MetricAttributes<N>): void {
    guard(() => this.histograms.get(name)?.record(value, defined(attributes)));
  }
}

/** Attributes without the undefined ones (OpenTelemetry drops them anyway, with a warning). */
function defined(attributes: Record<string, unknown> | undefined): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(attributes ?? {}))
    if (v !== undefined && v !== null) out[k] = v as never;
  return out;
}

/** Telemetry must never fail what it observes. */
function guard(emit: () => void): void {
  try {
    emit();
  } catch {
    // A broken exporter loses a signal, never a grant.
  }
}
