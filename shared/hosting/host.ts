/**
 * The host's lifecycle (STYLE.md §12): the one place outside dev/, test/ and bench/ that reaches the composition
 * root. The services are built when the host starts and closed when it stops; each invocation is handed them, with
 * a log that writes to the invocation's own log. Azure calls `startHost` / `stopHost` through `app.hook.appStart` /
 * `appTerminate` (registered in declare.ts); the local host (dev/host/localHost.ts) calls the very same two.
 */
import type { InvocationContext } from '@azure/functions';
import { depsFor, resetServices, services } from '../composition';
import type { Services } from '../composition';
import type { Deps } from '../usecases/deps';

/**
 * What a function's handler is handed at each invocation: the services built at the host's start, with `deps`
 * whose log lines go to this invocation's log.
 */
export type HostServices = Omit<Services, 'deps' | 'close'> & { deps: Deps };

/**
 * Builds the services. A broken core setting (what every function needs) throws here, naming the setting, and is
 * logged as `config.invalid`; a broken feature setting only switches that feature off (logged by the composition
 * root as `config.feature-unavailable`).
 */
export function startHost(): void {
  try {
    services();
  } catch (err) {
    console.error(JSON.stringify({ event: 'config.invalid', error: (err as Error).message }));
    throw err;
  }
}

/** Closes the clients the services hold and forgets them. */
export async function stopHost(): Promise<void> {
  await resetServices();
}

/**
 * The services for one invocation. Throws what building them threw (a broken core setting): the host keeps
 * running so that `GET /api/health` can say so, and every other invocation fails with that error.
 */
export function servicesFor(context: InvocationContext): HostServices {
  return { ...services(), deps: depsFor(context) };
}
