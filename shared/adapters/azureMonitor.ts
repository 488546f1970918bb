/**
 * Starts the Azure Monitor OpenTelemetry distro in the Functions Node.js worker, so the signals of
 * shared/adapters/otelSignals.ts reach Application Insights (customEvents, customMetrics).
 *
 * How it fits Azure Functions (https://learn.microsoft.com/azure/azure-functions/opentelemetry-howto, JavaScript):
 * the Functions host keeps sending its own request and log telemetry (host.json has no `telemetryMode`), and the
 * worker adds the app's metrics and events through the distro. Incoming HTTP is therefore not instrumented here
 * (the host already records every invocation; instrumenting it again would count each one twice). The
 * component refuses local authentication (infra/modules/monitoring.bicep), so the exporter authenticates with the
 * app's managed identity, named by APPLICATIONINSIGHTS_AUTHENTICATION_STRING (`ClientId=<id>;Authorization=AAD`).
 * `useAzureMonitor` registers global providers once per process; the composition root then reads them through the
 * OpenTelemetry API. Metrics are exported every minute; `shutdownAzureMonitor` flushes them when the host stops.
 */
import { app } from '@azure/functions';
import { ManagedIdentityCredential } from '@azure/identity';
import type { TelemetryConfig } from '../config';

// Loaded on first use: the distro is large, and the sandbox, the tests and the CLI never need it. (It is then started
// after the Azure SDKs were loaded, so their calls are not traced as dependencies; the app's own signals, which are
// what the alerts read, do not depend on that.)
type Distro = typeof import('@azure/monitor-opentelemetry');
let distro: Distro | undefined;
let started = false;

/** Starts the distro the first time it is called in a process; later calls do nothing. */
export function startAzureMonitor(config: TelemetryConfig): void {
  if (started) return;
  started = true;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  distro = require('@azure/monitor-opentelemetry') as Distro;
  distro.useAzureMonitor({
    azureMonitorExporterOptions: {
      connectionString: config.connectionString,
      credential: config.clientId ? new ManagedIdentityCredential({ clientId: config.clientId }) : undefined,
    },
    enableLiveMetrics: false,
    instrumentationOptions: { http: { enabled: false } },
  });
  // Metrics are exported once a minute: flush the last ones when the host shuts the worker down.
  app.hook.appTerminate(() => stopAzureMonitor());
}

/** Flushes what is buffered and stops exporting (the host's shutdown). */
async function stopAzureMonitor(): Promise<void> {
  if (!started) return;
  started = false;
  await distro?.shutdownAzureMonitor();
}
