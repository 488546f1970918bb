/**
 * Captures the app's signals in memory with the OpenTelemetry SDK's own exporters, so a test can assert what an
 * operator would see in Application Insights: the event names and attributes (customEvents, customDimensions) and
 * the metric names, attributes and values (customMetrics).
 */
import { LoggerProvider, InMemoryLogRecordExporter, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { DataPointType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import { CUSTOM_EVENT_ATTRIBUTE } from '../../shared/adapters/otelSignals';

/** A reader whose only job is to be collected on demand. */
class OnDemandReader extends MetricReader {
  protected async onShutdown(): Promise<void> {}
  protected async onForceFlush(): Promise<void> {}
}

export interface CapturedEvent {
  name: string;
  attributes: Record<string, unknown>;
}

export interface CapturedMetric {
  name: string;
  attributes: Record<string, unknown>;
  /** A counter's sum, or a histogram's count, sum and max. */
  value: number | { count: number; sum: number; max?: number };
}

export interface SignalCapture {
  meterProvider: MeterProvider;
  loggerProvider: LoggerProvider;
  /** Every custom event emitted so far, oldest first. */
  events(name?: string): CapturedEvent[];
  /** The metrics' current values (cumulative), one entry per name and attribute set. */
  metrics(name?: string): Promise<CapturedMetric[]>;
}

export function captureSignals(): SignalCapture {
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const logs = new InMemoryLogRecordExporter();
  const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor(logs)] });
  return {
    meterProvider,
    loggerProvider,
    events: (name) =>
      logs
        .getFinishedLogRecords()
        .filter((r) => typeof r.attributes[CUSTOM_EVENT_ATTRIBUTE] === 'string')
        .map((r) => ({
          name: r.attributes[CUSTOM_EVENT_ATTRIBUTE] as string,
          attributes: { ...r.attributes },
        }))
        .filter((e) => name === undefined || e.name === name),
    metrics: async (name) => {
      const { resourceMetrics } = await reader.collect();
      const out: CapturedMetric[] = [];
      for (const scope of resourceMetrics.scopeMetrics)
        for (const m of scope.metrics) {
          if (name !== undefined && m.descriptor.name !== name) continue;
          for (const p of m.dataPoints) {
            const v = p.value as number | { count: number; sum?: number; max?: number };
            out.push({
              name: m.descriptor.name,
              attributes: { ...p.attributes },
              value:
                m.dataPointType === DataPointType.HISTOGRAM && typeof v === 'object'
                  ? { count: v.count, sum: v.sum ?? 0, max: v.max }
                  : (v as number),
            });
          }
        }
      return out;
    },
  };
}
