/**
 * Whether an instance may serve callers (shared/usecases/serving.ts), as a caller would find out: the check passes
 * (the state it established) or refuses with NotServing and the reason, and what it found holds for a while on
 * the clock — a refusal is tried again after half a minute, a pass re-checked after five minutes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NotServing, TransientFailure } from '../../../shared/domain/errors';
import type { PlatformAuthSettings } from '../../../shared/domain/platformAuth';
import type { PlatformAuthReader } from '../../../shared/domain/ports';
import { servingCheck } from '../../../shared/usecases/serving';
import { aPolicy, manualApproval } from '../../support/builders';
import { MemoryClock, MemoryLog, MemoryPolicies } from '../../support/memory';

const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';

/** App Service Authentication as the deployment sets it (infra/modules/function-app.bicep). */
function protectedSettings(): PlatformAuthSettings {
  return {
    platform: { enabled: true },
    globalValidation: {
      requireAuthentication: true,
      unauthenticatedClientAction: 'Return401',
      excludedPaths: ['/api/approvals', '/api/health'],
    },
    identityProviders: {
      azureActiveDirectory: {
        enabled: true,
        registration: { openIdIssuer: `https://login.microsoftonline.com/${TENANT}/v2.0`, clientId: 'app' },
      },
    },
  };
}

/** The app's own authsettingsV2 as ARM returns it now; `fail` makes the read fail as ARM can. */
class Platform implements PlatformAuthReader {
  settings = protectedSettings();
  fail: Error | undefined;
  async getAuthSettings(): Promise<PlatformAuthSettings> {
    if (this.fail) throw this.fail;
    return structuredClone(this.settings);
  }
}

function setup(mode: 'dev' | 'easyauth' | 'jwt') {
  const clock = new MemoryClock('2026-03-14T10:00:00.000Z');
  const policies = new MemoryPolicies();
  const log = new MemoryLog();
  const platform = new Platform();
  const check = servingCheck(() => ({ policies, clock, log }), { mode, platform });
  return { clock, policies, log, platform, check };
}

const refused = async (check: () => Promise<unknown>, reason: RegExp) => {
  const err = await check().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof NotServing, `expected NotServing, got ${String(err)}`);
  assert.match(err.message, reason);
};

test('easyauth: an app that App Service Authentication protects serves, for the tenant its issuer names', async () => {
  const { check } = setup('easyauth');
  assert.deepEqual(await check(), { tenantId: TENANT });
});

test('easyauth: an unprotected app refuses every caller and says what is wrong, until fixed and half a minute passes', async () => {
  const { check, platform, clock, log } = setup('easyauth');
  platform.settings.globalValidation!.unauthenticatedClientAction = 'AllowAnonymous';
  platform.settings.globalValidation!.excludedPaths = ['/api/approvals', '/api/requests'];
  await refused(check, /unauthenticated callers are let through.*excluded from sign-in .*\/api\/requests/);
  assert.ok(log.lines.some((l) => l.level === 'error' && l.event === 'serving.refused'));

  // Fixed under the running app: the refusal holds for its half minute, then the check runs again and passes.
  platform.settings = protectedSettings();
  clock.advance(10);
  await refused(check, /unauthenticated callers are let through/);
  clock.advance(21);
  assert.deepEqual(await check(), { tenantId: TENANT });
});

test('easyauth: a pass holds for five minutes; sign-in switched off under the running app is found at the next check', async () => {
  const { check, platform, clock } = setup('easyauth');
  await check();
  platform.settings.platform = { enabled: false };
  clock.advance(4 * 60);
  assert.deepEqual(await check(), { tenantId: TENANT }, 'still within the five minutes');
  clock.advance(61);
  await refused(check, /App Service Authentication is off/);
});

test('easyauth: an issuer that names no tenant is refused (tokens from any tenant would pass)', async () => {
  const { check, platform } = setup('easyauth');
  platform.settings.identityProviders!.azureActiveDirectory!.registration!.openIdIssuer =
    'https://login.microsoftonline.com/common/v2.0';
  await refused(check, /not tenant-specific/);
});

test('easyauth: when the settings cannot be read, the instance refuses (it does not assume it is protected)', async () => {
  const { check, platform } = setup('easyauth');
  platform.fail = new TransientFailure('ARM answered 503');
  await refused(check, /could not run: ARM answered 503/);
});

test('jwt: a stored policy asking for manual approval stops the instance, naming the policy; auto-approval serves', async () => {
  const { check, policies, clock } = setup('jwt');
  await policies.upsert(aPolicy());
  assert.deepEqual(await check(), {});
  const manual = aPolicy({
    scope: '/subscriptions/00000000-0000-0000-0000-000000000002',
    approval: manualApproval(['user:bob@example.com']),
  });
  await policies.upsert(manual);
  clock.advance(5 * 60 + 1);
  await refused(check, new RegExp(`policy for ${manual.scope} asks for manual approval`));
});

test('dev: serves without looking at anything', async () => {
  const { check, platform, policies } = setup('dev');
  platform.fail = new Error('never read');
  await policies.upsert(aPolicy({ approval: manualApproval(['user:bob@example.com']) }));
  assert.deepEqual(await check(), {});
});
