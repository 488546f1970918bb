import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FeatureUnavailable } from '../../shared/domain/errors';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SETTINGS, SettingInvalid, loadConfig, requireFeature } from '../../shared/config';
import type { Config, FeatureConfigs, FeatureName, SettingName } from '../../shared/config';

const KEY = `k1:${Buffer.alloc(32, 7).toString('base64')}`;
const local = {
  JIT_AUTH_MODE: 'dev',
  JIT_PUBLIC_BASE_URL: 'http://127.0.0.1:7071',
  JIT_APPROVAL_KEY: KEY,
  JIT_MAIL_MODE: 'smtp',
  JIT_MAIL_FROM: 'jit@example.com',
  JIT_SMTP_HOST: '127.0.0.1',
  JIT_SMTP_TLS: 'none',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  ServiceBusConnection:
    'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
};
const azure = {
  JIT_AUTH_MODE: 'easyauth',
  JIT_PUBLIC_BASE_URL: 'https://jit.example.com/',
  JIT_APPROVAL_KEY: KEY,
  JIT_MAIL_MODE: 'acs',
  JIT_MAIL_FROM: 'DoNotReply@example.com',
  JIT_ACS_ENDPOINT: 'https://acs-x.europe.communication.azure.com',
  WEBSITE_INSTANCE_ID: 'abc',
  WEBSITE_SITE_NAME: 'func-jit',
  WEBSITE_RESOURCE_GROUP: 'rg-jit',
  JIT_APP_RESOURCE_ID:
    '/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-jit/providers/Microsoft.Web/sites/func-jit',
  AzureWebJobsStorage__tableServiceUri: 'https://st.table.core.windows.net',
  AzureWebJobsStorage__queueServiceUri: 'https://st.queue.core.windows.net',
  ServiceBusConnection__fullyQualifiedNamespace: 'sb-x.servicebus.windows.net',
  AZURE_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
};

/** The settings of a feature that must be ready. */
function ready<K extends FeatureName>(env: NodeJS.ProcessEnv, name: K): FeatureConfigs[K] {
  return requireFeature(loadConfig(env).features, name);
}

/**
 * Asserts that `env` loads (the core is fine), that exactly the feature `name` is off, and that its problem names
 * `setting` with a reason matching `reason`.
 */
function off(env: NodeJS.ProcessEnv, name: FeatureName, setting: SettingName, reason: RegExp): string {
  const { features } = loadConfig(env);
  const state = features[name];
  assert.equal(state.ready, false, `${name} should be off`);
  if (state.ready) throw new Error('unreachable');
  assert.equal(state.problem.setting, setting);
  assert.match(state.problem.reason, reason);
  for (const [other, s] of Object.entries(features))
    if (other !== name) assert.equal(s.ready, true, `${other} stays ready while ${name} is off`);
  return state.problem.reason;
}

test('the sandbox settings load with defaults', () => {
  const c = loadConfig(local);
  assert.equal(ready(local, 'authentication').authMode, 'dev');
  assert.equal(c.tables.kind, 'connectionString');
  assert.deepEqual(c.priorityBand, { min: 1000, max: 1999 });
  assert.deepEqual(c.baselinePriorityBand, { min: 2000, max: 2999 });
  assert.equal(c.reconcileMaxArmCalls, 200);
  assert.equal(c.maxDurationInSeconds, 86400);
  assert.equal(c.armEndpoint, 'https://management.azure.com');
  assert.equal(ready(local, 'requests').requestsPerMinute, 30);
  assert.equal(ready(local, 'approval').approvalAttemptsPerMinute, 10);
  for (const [name, state] of Object.entries(c.features)) assert.equal(state.ready, true, name);
});

test('Azure settings use managed identity endpoints', () => {
  const c = loadConfig(azure);
  assert.equal(c.runningInAzure, true);
  assert.deepEqual(c.tables, {
    kind: 'identity',
    endpoint: 'https://st.table.core.windows.net',
    clientId: azure.AZURE_CLIENT_ID,
  });
  assert.deepEqual(c.serviceBus, {
    kind: 'identity',
    endpoint: 'sb-x.servicebus.windows.net',
    clientId: azure.AZURE_CLIENT_ID,
  });
});

test('a bad or missing core setting stops start-up with its name and what it must hold', () => {
  assert.throws(
    () => loadConfig({ ...local, JIT_PRIORITY_RANGE: '50-100' }),
    /JIT_PRIORITY_RANGE must be "min-max" within 100-4096/,
  );
  assert.throws(() => loadConfig({ ...local, JIT_PRIORITY_RANGE: '2000-1000' }), /JIT_PRIORITY_RANGE/);
  assert.throws(
    () => loadConfig({ ...local, JIT_BASELINE_PRIORITY_RANGE: '1500-2500' }),
    /JIT_BASELINE_PRIORITY_RANGE must lie entirely above JIT_PRIORITY_RANGE \(1000-1999\)/,
  );
  // A custom JIT band moves the default baseline band with it.
  assert.deepEqual(loadConfig({ ...local, JIT_PRIORITY_RANGE: '200-2499' }).baselinePriorityBand, {
    min: 2500,
    max: 3499,
  });
  assert.throws(
    () => loadConfig({ ...local, JIT_RECONCILE_MAX_ARM_CALLS: 'lots' }),
    /JIT_RECONCILE_MAX_ARM_CALLS must be an integer from 10 to 100000/,
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_MAX_DURATION: 'forever' }),
    /JIT_MAX_DURATION must be an ISO-8601 duration/,
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_ARM_ENDPOINT: 'not a url' }),
    /JIT_ARM_ENDPOINT must be an absolute URL/,
  );
  assert.throws(
    () => loadConfig({ ...azure, AzureWebJobsStorage__queueServiceUri: undefined }),
    /AzureWebJobsStorage__queueServiceUri is missing/,
  );
  assert.throws(
    () => loadConfig({ ...azure, ServiceBusConnection__fullyQualifiedNamespace: '' }),
    /ServiceBusConnection__fullyQualifiedNamespace is missing/,
  );
  assert.throws(
    () => loadConfig({ ...azure, AzureWebJobsStorage: 'UseDevelopmentStorage=true' }),
    /AzureWebJobsStorage holds a connection string/,
  );
});

test('each feature is checked on its own: a broken setting switches off only its feature', () => {
  // Each case breaks one setting; `off` checks that the core loads and every other feature stays ready.
  off({ ...local, JIT_AUTH_MODE: undefined }, 'authentication', 'JIT_AUTH_MODE', /is missing/);
  off({ ...local, JIT_AUTH_MODE: 'none' }, 'authentication', 'JIT_AUTH_MODE', /must be easyauth, jwt or dev/);
  off({ ...local, JIT_MAIL_MODE: 'pigeon' }, 'mail', 'JIT_MAIL_MODE', /must be smtp or acs/);
  off({ ...local, JIT_SMTP_PORT: 'twenty-five' }, 'mail', 'JIT_SMTP_PORT', /must be a port number/);
  off({ ...local, JIT_APPROVAL_KEY: 'short' }, 'approval', 'JIT_APPROVAL_KEY', /key id/);
  off({ ...local, JIT_PUBLIC_BASE_URL: 'jit' }, 'approval', 'JIT_PUBLIC_BASE_URL', /absolute URL/);
  off(
    { ...local, JIT_APPROVAL_ATTEMPTS_PER_MINUTE: '0' },
    'approval',
    'JIT_APPROVAL_ATTEMPTS_PER_MINUTE',
    /whole number of at least 1/,
  );
  off(
    { ...local, JIT_RATE_LIMIT_PER_MINUTE: 'many' },
    'requests',
    'JIT_RATE_LIMIT_PER_MINUTE',
    /whole number of at least 1/,
  );
  // Both broken: both off, the core still loads.
  const { features } = loadConfig({ ...local, JIT_APPROVAL_KEY: undefined, JIT_MAIL_FROM: 'nobody' });
  assert.deepEqual(
    Object.entries(features)
      .filter(([, s]) => !s.ready)
      .map(([n]) => n),
    ['approval', 'mail'],
  );
  assert.throws(() => requireFeature(features, 'mail'), FeatureUnavailable);
});

test('an unresolved Key Vault reference is recognised, named, and never repeated', () => {
  const reference = '@Microsoft.KeyVault(SecretUri=https://x.vault.azure.net/secrets/k/)';
  const reason = off({ ...azure, JIT_APPROVAL_KEY: reference }, 'approval', 'JIT_APPROVAL_KEY', /Key Vault/);
  assert.match(reason, /unresolved Key Vault reference/);
  // The other form of reference, in another feature's setting.
  off(
    {
      ...azure,
      JIT_MAIL_MODE: 'smtp',
      JIT_SMTP_HOST: 'relay',
      JIT_SMTP_USER: 'u',
      JIT_SMTP_PASSWORD: '@Microsoft.KeyVault(VaultName=v;SecretName=smtp)',
    },
    'mail',
    'JIT_SMTP_PASSWORD',
    /unresolved Key Vault reference/,
  );
  const everything = JSON.stringify(loadConfig({ ...azure, JIT_APPROVAL_KEY: reference }));
  assert.ok(!everything.includes('x.vault.azure.net'), 'the reference is not repeated');
  // A core setting that is a reference stops start-up all the same, saying what it is.
  assert.throws(
    () =>
      loadConfig({
        ...azure,
        ServiceBusConnection__fullyQualifiedNamespace:
          '@Microsoft.KeyVault(SecretUri=https://x.vault.azure.net/secrets/sb/)',
      }),
    (e: Error) =>
      /ServiceBusConnection__fullyQualifiedNamespace is an unresolved Key Vault reference/.test(e.message) &&
      !e.message.includes('x.vault.azure.net'),
  );
});

test('a problem never repeats the value of the setting it names', () => {
  const secretish = 'p@ss:w0rd-not-a-url';
  const cases: Array<[NodeJS.ProcessEnv, FeatureName]> = [
    [{ ...local, JIT_PUBLIC_BASE_URL: secretish }, 'approval'],
    [{ ...local, JIT_MAIL_FROM: secretish }, 'mail'],
    [{ ...local, JIT_SMTP_TLS: secretish }, 'mail'],
    [{ ...local, JIT_AUTH_MODE: secretish }, 'authentication'],
    [{ ...local, JIT_APPROVER_GROUP_MAILBOXES: secretish }, 'approval'],
  ];
  for (const [env, name] of cases) {
    const state = loadConfig(env).features[name];
    assert.equal(state.ready, false, name);
    assert.ok(!JSON.stringify(state).includes(secretish), JSON.stringify(state));
  }
  assert.throws(
    () => loadConfig({ ...local, JIT_ARM_ENDPOINT: secretish }),
    (e: Error) => !e.message.includes(secretish),
  );
});

test('dev authentication is refused inside Azure: authentication is off, the rest runs', () => {
  off(
    { ...azure, JIT_AUTH_MODE: 'dev' },
    'authentication',
    'JIT_AUTH_MODE',
    /is "dev".*refused when running in Azure/,
  );
});

test('easyauth names this very app, whose authentication settings it checks at start-up; WEBSITE_AUTH_ENABLED decides nothing', () => {
  assert.equal(ready(azure, 'authentication').appResourceId, azure.JIT_APP_RESOURCE_ID);
  off({ ...azure, JIT_APP_RESOURCE_ID: undefined }, 'authentication', 'JIT_APP_RESOURCE_ID', /is missing/);
  off(
    {
      ...azure,
      JIT_APP_RESOURCE_ID: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/serverfarms/p',
    },
    'authentication',
    'JIT_APP_RESOURCE_ID',
    /must be the ARM id of a function app/,
  );
  // Another app's id would have the check read another app's settings.
  off(
    { ...azure, JIT_APP_RESOURCE_ID: azure.JIT_APP_RESOURCE_ID.replace('func-jit', 'func-other') },
    'authentication',
    'JIT_APP_RESOURCE_ID',
    /must name this app \(func-jit\)/,
  );
  off(
    { ...azure, WEBSITE_RESOURCE_GROUP: 'rg-else' },
    'authentication',
    'JIT_APP_RESOURCE_ID',
    /must name this app/,
  );
});

test('JIT_CLOSE_LEAD: PT10S by default, PT0S to PT1M, an ISO-8601 duration', () => {
  assert.equal(loadConfig(local).closeLeadInSeconds, 10);
  assert.equal(loadConfig({ ...local, JIT_CLOSE_LEAD: 'PT0S' }).closeLeadInSeconds, 0);
  assert.equal(loadConfig({ ...local, JIT_CLOSE_LEAD: 'PT1M' }).closeLeadInSeconds, 60);
  assert.throws(
    () => loadConfig({ ...local, JIT_CLOSE_LEAD: 'PT61S' }),
    /JIT_CLOSE_LEAD must be at most PT1M/,
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_CLOSE_LEAD: '10s' }),
    /JIT_CLOSE_LEAD must be an ISO-8601 duration/,
  );
  // Zero is a lead of nothing; a grant of no length is still refused.
  assert.throws(
    () => loadConfig({ ...local, JIT_EXPIRY_GRACE: 'PT0S' }),
    /JIT_EXPIRY_GRACE must be longer than zero/,
  );
});

test('JIT_TRUSTED_PROXY_HOPS: 0 by default, 0 to 3, whole numbers only', () => {
  assert.equal(ready(local, 'authentication').trustedProxyHops, 0);
  assert.equal(ready({ ...local, JIT_TRUSTED_PROXY_HOPS: '2' }, 'authentication').trustedProxyHops, 2);
  for (const bad of ['4', '-1', '1.5', 'one'])
    off({ ...local, JIT_TRUSTED_PROXY_HOPS: bad }, 'authentication', 'JIT_TRUSTED_PROXY_HOPS', /from 0 to 3/);
});

test('jwt mode needs an issuer and audience, and derives the keys of an Entra ID issuer', () => {
  const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
  const jwt = {
    ...azure,
    JIT_AUTH_MODE: 'jwt',
    JIT_JWT_ISSUER: `https://login.microsoftonline.com/${tenant}/v2.0`,
    JIT_JWT_AUDIENCE: 'api://jit, 1234',
  };
  assert.deepEqual(ready(jwt, 'authentication').jwt, {
    issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
    audiences: ['api://jit', '1234'],
    jwksUri: `https://login.microsoftonline.com/${tenant}/discovery/v2.0/keys`,
    tenantId: tenant,
  });
  off({ ...jwt, JIT_JWT_AUDIENCE: undefined }, 'authentication', 'JIT_JWT_AUDIENCE', /is missing/);
  // Principals are keyed by tenant: the issuer must name one.
  off(
    { ...jwt, JIT_JWT_ISSUER: 'https://login.microsoftonline.com/common/v2.0' },
    'authentication',
    'JIT_JWT_ISSUER',
    /tenant's v2.0 issuer/,
  );
  off(
    { ...jwt, JIT_JWT_ISSUER: `https://idp.example.com/${tenant}/v2.0` },
    'authentication',
    'JIT_JWT_JWKS_URI',
    /is missing/,
  );
  assert.equal(
    ready(
      {
        ...jwt,
        JIT_JWT_ISSUER: `https://idp.example.com/${tenant}/v2.0`,
        JIT_JWT_JWKS_URI: 'https://idp.example.com/keys',
      },
      'authentication',
    ).jwt?.jwksUri,
    'https://idp.example.com/keys',
  );
});

test('approval keys are "kid:base64" of at least 32 bytes, and a problem never repeats the secret', () => {
  const { approvalKeys } = ready(
    { ...local, JIT_APPROVAL_KEY_PREVIOUS: `k0:${Buffer.alloc(48, 1).toString('base64')}` },
    'approval',
  );
  assert.equal(approvalKeys.current.kid, 'k1');
  assert.equal(approvalKeys.current.secret.length, 32);
  assert.equal(approvalKeys.previous?.kid, 'k0');
  off({ ...local, JIT_APPROVAL_KEY: undefined }, 'approval', 'JIT_APPROVAL_KEY', /is missing.*openssl/);
  const short = `k1:${Buffer.alloc(16, 9).toString('base64')}`;
  const reason = off(
    { ...local, JIT_APPROVAL_KEY: short },
    'approval',
    'JIT_APPROVAL_KEY',
    /at least 32 bytes/,
  );
  assert.ok(!reason.includes(short.slice(3)));
  off(
    { ...local, JIT_APPROVAL_KEY: Buffer.alloc(32).toString('base64') },
    'approval',
    'JIT_APPROVAL_KEY',
    /key id/,
  );
  off(
    { ...local, JIT_APPROVAL_KEY_PREVIOUS: KEY },
    'approval',
    'JIT_APPROVAL_KEY_PREVIOUS',
    /must have a different kid/,
  );
});

test('mail settings are checked for the chosen mode', () => {
  assert.deepEqual(ready(local, 'mail'), {
    mode: 'smtp',
    from: 'jit@example.com',
    host: '127.0.0.1',
    port: 587,
    tls: 'none',
    user: undefined,
    password: undefined,
  });
  assert.deepEqual(ready(azure, 'mail'), {
    mode: 'acs',
    from: 'DoNotReply@example.com',
    endpoint: 'https://acs-x.europe.communication.azure.com',
  });
  assert.equal(ready(azure, 'approval').publicBaseUrl, 'https://jit.example.com');
  off({ ...local, JIT_MAIL_FROM: 'nobody' }, 'mail', 'JIT_MAIL_FROM', /must be a mail address/);
  off({ ...local, JIT_SMTP_HOST: undefined }, 'mail', 'JIT_SMTP_HOST', /is missing/);
  off({ ...local, JIT_SMTP_PORT: '99999' }, 'mail', 'JIT_SMTP_PORT', /must be a port/);
  off({ ...azure, JIT_ACS_ENDPOINT: undefined }, 'mail', 'JIT_ACS_ENDPOINT', /is missing/);
  off(
    { ...azure, JIT_MAIL_MODE: 'smtp', JIT_SMTP_HOST: 'relay', JIT_SMTP_TLS: 'none' },
    'mail',
    'JIT_SMTP_TLS',
    /is "none".*refused in Azure/,
  );
  off(
    { ...azure, JIT_PUBLIC_BASE_URL: 'http://jit.example.com' },
    'approval',
    'JIT_PUBLIC_BASE_URL',
    /must be an https URL in Azure/,
  );
  assert.deepEqual(
    ready(
      { ...local, JIT_APPROVER_GROUP_MAILBOXES: 'AAA-1=ops@example.com, bbb=sec@example.com' },
      'approval',
    ).approverGroupMailboxes,
    { 'aaa-1': 'ops@example.com', bbb: 'sec@example.com' },
  );
  off(
    { ...local, JIT_APPROVER_GROUP_MAILBOXES: 'aaa' },
    'approval',
    'JIT_APPROVER_GROUP_MAILBOXES',
    /must be/,
  );
});

/** Which feature a broken value of each setting switches off (`core` when it stops the app), found by breaking it. */
function featureOfEachSetting(): Record<string, string> {
  const jwtAcs = {
    ...azure,
    JIT_AUTH_MODE: 'jwt',
    JIT_JWT_ISSUER: 'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0',
    JIT_JWT_AUDIENCE: 'api://jit',
    JIT_JWT_JWKS_URI:
      'https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/discovery/v2.0/keys',
  };
  const broken = '@Microsoft.KeyVault(SecretUri=https://x.vault.azure.net/secrets/s/)';
  const found: Record<string, string> = {};
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    for (const env of [local, jwtAcs, azure]) {
      try {
        const { features } = loadConfig({ ...env, [name]: broken });
        const off = Object.entries(features).find(([, f]) => !f.ready && f.problem.setting === name);
        if (off) found[name] = off[0];
      } catch (err) {
        assert.ok(err instanceof SettingInvalid && err.setting === name, `${name}: ${String(err)}`);
        found[name] = 'core';
      }
      if (found[name]) break;
    }
  }
  return found;
}

test('docs/operations.md names, for every setting, the feature a broken value switches off', () => {
  const text = readFileSync(join(__dirname, '..', '..', '..', 'docs', 'operations.md'), 'utf8');
  const section = text.slice(text.indexOf('## When a setting is broken'));
  const documented: Record<string, string> = {};
  for (const m of section.matchAll(/^\| `(\w+)` +\| ([^|]+)\|/gm)) {
    for (const setting of m[2]!.matchAll(/`(\w+)`/g)) documented[setting[1]!] = m[1]!;
  }
  const derived = featureOfEachSetting();
  assert.deepEqual(documented, derived);
  // The one setting the app does not read: the Functions host resolves it in the timer trigger.
  assert.deepEqual(
    Object.keys(SETTINGS).filter((n) => !(n in derived)),
    ['JIT_RECONCILE_SCHEDULE'],
  );
});

test('every setting is listed in local.settings.sample.json', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sample = require('../../../local.settings.sample.json') as { Values: Record<string, string> };
  for (const name of Object.keys(SETTINGS)) assert.ok(name in sample.Values, `${name} in the sample`);
});

/** A feature's settings when it is ready; its problem's reason (with the setting's name) when it is off. */
function featureOf<K extends FeatureName>(
  c: Config,
  name: K,
): { settings?: FeatureConfigs[K]; problem?: string } {
  const state = c.features[name];
  return state.ready
    ? { settings: state.settings }
    : { problem: `${state.problem.setting} ${state.problem.reason}` };
}

test('chat and webhook targets: validated, secrets decoded, a bad list switches notifications off and nothing else', () => {
  const secret = Buffer.alloc(32, 9).toString('base64');
  const targets = [
    { name: 'secops', type: 'teams', url: 'https://prod.logic.azure.com/workflows/x' },
    { name: 'siem', type: 'webhook', url: 'https://siem.example/jit', secret, events: ['grant.live'] },
    {
      name: 'prod',
      type: 'slack',
      url: 'https://hooks.slack.com/services/x',
      policies: ['/Subscriptions/S/resourceGroups/Prod'],
    },
  ];
  const c = loadConfig({ ...azure, JIT_NOTIFY_TARGETS: JSON.stringify(targets) });
  assert.deepEqual(
    featureOf(c, 'notifications').settings?.map((t) => [
      t.name,
      t.type,
      t.secret?.length,
      t.events,
      t.policies,
    ]),
    [
      ['secops', 'teams', undefined, undefined, undefined],
      ['siem', 'webhook', 32, ['grant.live'], undefined],
      ['prod', 'slack', undefined, undefined, ['/subscriptions/s/resourcegroups/prod']],
    ],
  );
  const broken = (list: unknown, env: Record<string, string> = azure) =>
    loadConfig({ ...env, JIT_NOTIFY_TARGETS: typeof list === 'string' ? list : JSON.stringify(list) });
  const cases: Array<[unknown, RegExp]> = [
    [[{ ...targets[1], secret: undefined }], /target "siem": a webhook needs "secret"/],
    [[{ ...targets[1], secret: Buffer.alloc(16).toString('base64') }], /at least 32 random bytes/],
    [[{ ...targets[0], secret }], /only a webhook target takes a secret/],
    [[targets[0], targets[0]], /the name "secops" is used twice/],
    [[{ ...targets[0], url: 'http://plain.example' }], /url must be https in Azure/],
    [[{ ...targets[0], events: ['grant.opened'] }], /target 1: events\.0/],
    [[{ ...targets[0], colour: 'red' }], /target 1/],
    ['@Microsoft.KeyVault(VaultName=kv;SecretName=jit-notify-targets)', /unresolved Key Vault reference/],
    ['{"name":"x"}', /must be a JSON array/],
  ];
  for (const [list, reason] of cases) {
    const c2 = broken(list);
    const problem = featureOf(c2, 'notifications').problem ?? '';
    assert.match(problem, /^JIT_NOTIFY_TARGETS /);
    assert.match(problem, reason);
    // The reason never repeats a URL or a key, and the rest of the app still loads.
    assert.doesNotMatch(problem, /hooks\.slack|logic\.azure|siem\.example/);
    assert.ok(!problem.includes(secret));
    assert.equal(c2.features.mail.ready, true);
  }
  // http is fine on the sandbox.
  assert.equal(
    featureOf(broken([{ ...targets[0], url: 'http://127.0.0.1:8026/teams/x' }], local), 'notifications')
      .settings?.length,
    1,
  );
});

test('telemetry and audit anchors: read when set, off (not fatal) when wrong', () => {
  const cs =
    'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://westeurope-5.in.applicationinsights.azure.com/';
  const c = loadConfig({
    ...azure,
    APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING:
      'ClientId=22222222-2222-2222-2222-222222222222;Authorization=AAD',
    AzureWebJobsStorage__blobServiceUri: 'https://st.blob.core.windows.net',
  });
  assert.deepEqual(featureOf(c, 'telemetry').settings, {
    connectionString: cs,
    clientId: '22222222-2222-2222-2222-222222222222',
  });
  assert.deepEqual(featureOf(c, 'auditAnchors').settings, {
    kind: 'identity',
    endpoint: 'https://st.blob.core.windows.net',
    clientId: '11111111-1111-1111-1111-111111111111',
  });
  assert.equal(featureOf(loadConfig(azure), 'auditAnchors').settings, undefined);
  assert.equal(featureOf(loadConfig(local), 'auditAnchors').settings?.kind, 'connectionString');

  const wrong = loadConfig({ ...azure, APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=abc' });
  assert.match(
    featureOf(wrong, 'telemetry').problem ?? '',
    /APPLICATIONINSIGHTS_CONNECTION_STRING must hold/,
  );
  const badAuth = loadConfig({
    ...azure,
    APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD',
  });
  assert.match(featureOf(badAuth, 'telemetry').problem ?? '', /APPLICATIONINSIGHTS_AUTHENTICATION_STRING/);
  const badBlob = loadConfig({ ...azure, AzureWebJobsStorage__blobServiceUri: 'st.blob' });
  assert.match(
    featureOf(badBlob, 'auditAnchors').problem ?? '',
    /AzureWebJobsStorage__blobServiceUri must be an absolute URL/,
  );
});
