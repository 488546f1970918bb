/**
 * Whether the app may serve callers at all, checked before the first call is answered rather than assumed:
 * - `easyauth`: its own authsettingsV2, read through ARM, must show App Service Authentication on and required
 *   (shared/domain/platformAuth.ts). Until it does, the principal header is not trusted and every call is a 503
 *   that says why.
 * - `jwt`: no stored policy may ask for manual approval: approvers decide on a page after signing in, and this
 *   mode has no browser sign-in, so such requests could never be decided.
 * Checked once per instance, again every few minutes (settings can be changed under a running app), and a failed
 * check is retried after half a minute.
 */
import { NotServing, TransientFailure } from '../domain/errors';
import { checkPlatformAuth } from '../domain/platformAuth';
import type { Clock, PlatformAuthReader, PolicyRepository } from '../domain/ports';
import type { Logger } from './deps';

/** What the check established. */
export interface ServingState {
  /** `easyauth`: the tenant App Service Authentication accepts tokens from. */
  tenantId?: string;
}

export interface ServingCheckDeps {
  policies: PolicyRepository;
  clock: Clock;
  log: Logger;
}

export interface ServingCheckOptions {
  mode: 'dev' | 'easyauth' | 'jwt';
  platform?: PlatformAuthReader;
  /** How long a passed check holds. */
  validForInMs?: number;
  /** How long a failed check is remembered before it runs again. */
  retryAfterInMs?: number;
}

/** Why manual approval is refused in `jwt` mode (the policy document check says the same). */
export const NO_SIGN_IN_FOR_APPROVERS =
  'manual approval needs approvers to sign in on the approval page, and jwt mode has no browser sign-in; use easyauth (App Service Authentication) or approve automatically';

/** The serving check, shared by every HTTP call of this instance. */
export function servingCheck(
  deps: () => ServingCheckDeps,
  options: ServingCheckOptions,
): () => Promise<ServingState> {
  const validFor = options.validForInMs ?? 5 * 60_000;
  const retryAfter = options.retryAfterInMs ?? 30_000;
  let passed: { at: number; state: ServingState } | undefined;
  let failed: { at: number; error: NotServing } | undefined;
  let running: Promise<ServingState> | undefined;

  const run = async (): Promise<ServingState> => {
    const d = deps();
    try {
      const state = await check(d, options);
      passed = { at: d.clock.now().getTime(), state };
      failed = undefined;
      d.log.info('serving.checked', { mode: options.mode, ...state });
      return state;
    } catch (err) {
      const error =
        err instanceof NotServing
          ? err
          : new NotServing(
              `the start-up check could not run: ${err instanceof TransientFailure ? err.message : String(err)}`,
              retryAfter,
            );
      failed = { at: d.clock.now().getTime(), error };
      passed = undefined;
      d.log.error('serving.refused', { mode: options.mode, reason: error.message });
      throw error;
    }
  };

  return async () => {
    if (options.mode === 'dev') return {};
    const now = deps().clock.now().getTime();
    if (passed && now - passed.at < validFor) return passed.state;
    if (failed && now - failed.at < retryAfter) throw failed.error;
    running ??= run().finally(() => (running = undefined));
    return running;
  };
}

async function check(deps: ServingCheckDeps, options: ServingCheckOptions): Promise<ServingState> {
  if (options.mode === 'easyauth') {
    if (!options.platform) throw new NotServing('easyauth mode without a way to read the platform settings');
    const verdict = checkPlatformAuth(await options.platform.getAuthSettings());
    if ('problems' in verdict)
      throw new NotServing(
        `App Service Authentication does not protect this app, so the principal header could be forged: ${verdict.problems.join('; ')}`,
      );
    return { tenantId: verdict.tenantId };
  }
  for await (const policy of deps.policies.list()) {
    if (policy.approval.mode === 'manual')
      throw new NotServing(
        `the policy for ${policy.scope} asks for manual approval, but ${NO_SIGN_IN_FOR_APPROVERS}`,
      );
  }
  return {};
}
