import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SETTINGS, loadConfig } from '../../shared/config';

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
  WEBSITE_AUTH_ENABLED: 'True',
  AzureWebJobsStorage__tableServiceUri: 'https://st.table.core.windows.net',
  AzureWebJobsStorage__queueServiceUri: 'https://st.queue.core.windows.net',
  ServiceBusConnection__fullyQualifiedNamespace: 'sb-x.servicebus.windows.net',
  AZURE_CLIENT_ID: '11111111-1111-1111-1111-111111111111',
};

test('the sandbox settings load with defaults', () => {
  const c = loadConfig(local);
  assert.equal(c.authMode, 'dev');
  assert.equal(c.tables.kind, 'connectionString');
  assert.deepEqual(c.priorityBand, { min: 1000, max: 1999 });
  assert.deepEqual(c.baselinePriorityBand, { min: 2000, max: 2999 });
  assert.equal(c.reconcileMaxArmCalls, 200);
  assert.equal(c.maxDurationInSeconds, 86400);
  assert.equal(c.armEndpoint, 'https://management.azure.com');
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

test('a bad or missing setting stops start-up with its name and what it must hold', () => {
  assert.throws(() => loadConfig({ ...local, JIT_AUTH_MODE: undefined }), /Setting JIT_AUTH_MODE is missing/);
  assert.throws(
    () => loadConfig({ ...local, JIT_AUTH_MODE: 'none' }),
    /JIT_AUTH_MODE must be easyauth, jwt or dev/,
  );
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
});

test('dev authentication and connection strings are refused inside Azure', () => {
  assert.throws(
    () => loadConfig({ ...azure, JIT_AUTH_MODE: 'dev' }),
    /JIT_AUTH_MODE is "dev".*refused when running in Azure/,
  );
  assert.throws(
    () => loadConfig({ ...azure, AzureWebJobsStorage: 'UseDevelopmentStorage=true' }),
    /AzureWebJobsStorage holds a connection string/,
  );
});

test('easyauth is refused unless App Service Authentication is enabled, since the header could be forged', () => {
  assert.throws(() => loadConfig({ ...azure, WEBSITE_AUTH_ENABLED: undefined }), /easyauth.*not enabled/);
  assert.throws(() => loadConfig({ ...local, JIT_AUTH_MODE: 'easyauth' }), /easyauth.*not enabled/);
});

test('jwt mode needs an issuer and audience, and derives the keys of an Entra ID issuer', () => {
  const tenant = 'contoso.onmicrosoft.com';
  const jwt = {
    ...azure,
    JIT_AUTH_MODE: 'jwt',
    JIT_JWT_ISSUER: `https://login.microsoftonline.com/${tenant}/v2.0`,
    JIT_JWT_AUDIENCE: 'api://jit, 1234',
  };
  assert.deepEqual(loadConfig(jwt).jwt, {
    issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
    audiences: ['api://jit', '1234'],
    jwksUri: `https://login.microsoftonline.com/${tenant}/discovery/v2.0/keys`,
  });
  assert.throws(() => loadConfig({ ...jwt, JIT_JWT_AUDIENCE: undefined }), /JIT_JWT_AUDIENCE is missing/);
  assert.throws(
    () => loadConfig({ ...jwt, JIT_JWT_ISSUER: 'https://idp.example.com' }),
    /JIT_JWT_JWKS_URI is missing/,
  );
  assert.equal(
    loadConfig({
      ...jwt,
      JIT_JWT_ISSUER: 'https://idp.example.com',
      JIT_JWT_JWKS_URI: 'https://idp.example.com/keys',
    }).jwt?.jwksUri,
    'https://idp.example.com/keys',
  );
});
test('approval keys are "kid:base64" of at least 32 bytes, and an error never repeats the secret', () => {
  const c = loadConfig({
    ...local,
    JIT_APPROVAL_KEY_PREVIOUS: `k0:${Buffer.alloc(48, 1).toString('base64')}`,
  });
  assert.equal(c.approvalKeys.current.kid, 'k1');
  assert.equal(c.approvalKeys.current.secret.length, 32);
  assert.equal(c.approvalKeys.previous?.kid, 'k0');
  assert.throws(
    () => loadConfig({ ...local, JIT_APPROVAL_KEY: undefined }),
    /JIT_APPROVAL_KEY is missing.*openssl/,
  );
  const short = `k1:${Buffer.alloc(16, 9).toString('base64')}`;
  assert.throws(
    () => loadConfig({ ...local, JIT_APPROVAL_KEY: short }),
    (e: Error) => /at least 32 bytes/.test(e.message) && !e.message.includes(short.slice(3)),
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_APPROVAL_KEY: Buffer.alloc(32).toString('base64') }),
    /key id/,
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_APPROVAL_KEY_PREVIOUS: KEY }),
    /JIT_APPROVAL_KEY_PREVIOUS must have a different kid/,
  );
});

test('mail settings are checked for the chosen mode', () => {
  assert.deepEqual(loadConfig(local).mail, {
    mode: 'smtp',
    from: 'jit@example.com',
    host: '127.0.0.1',
    port: 587,
    tls: 'none',
    user: undefined,
    password: undefined,
  });
  assert.deepEqual(loadConfig(azure).mail, {
    mode: 'acs',
    from: 'DoNotReply@example.com',
    endpoint: 'https://acs-x.europe.communication.azure.com',
  });
  assert.equal(loadConfig(azure).publicBaseUrl, 'https://jit.example.com');
  assert.throws(() => loadConfig({ ...local, JIT_MAIL_MODE: 'pigeon' }), /JIT_MAIL_MODE must be smtp or acs/);
  assert.throws(
    () => loadConfig({ ...local, JIT_MAIL_FROM: 'nobody' }),
    /JIT_MAIL_FROM must be a mail address/,
  );
  assert.throws(() => loadConfig({ ...local, JIT_SMTP_HOST: undefined }), /JIT_SMTP_HOST is missing/);
  assert.throws(() => loadConfig({ ...local, JIT_SMTP_PORT: '99999' }), /JIT_SMTP_PORT must be a port/);
  assert.throws(() => loadConfig({ ...azure, JIT_ACS_ENDPOINT: undefined }), /JIT_ACS_ENDPOINT is missing/);
  assert.throws(
    () => loadConfig({ ...azure, JIT_MAIL_MODE: 'smtp', JIT_SMTP_HOST: 'relay', JIT_SMTP_TLS: 'none' }),
    /JIT_SMTP_TLS is "none".*refused in Azure/,
  );
  assert.throws(
    () => loadConfig({ ...azure, JIT_PUBLIC_BASE_URL: 'http://jit.example.com' }),
    /JIT_PUBLIC_BASE_URL must be an https URL in Azure/,
  );
  assert.deepEqual(
    loadConfig({ ...local, JIT_APPROVER_GROUP_MAILBOXES: 'AAA-1=ops@example.com, bbb=sec@example.com' })
      .approverGroupMailboxes,
    { 'aaa-1': 'ops@example.com', bbb: 'sec@example.com' },
  );
  assert.throws(
    () => loadConfig({ ...local, JIT_APPROVER_GROUP_MAILBOXES: 'aaa' }),
    /JIT_APPROVER_GROUP_MAILBOXES must be/,
  );
});

test('every setting is listed in local.settings.sample.json', () => {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const sample = require('../../../local.settings.sample.json') as { Values: Record<string, string> };
  for (const name of Object.keys(SETTINGS)) assert.ok(name in sample.Values, `${name} in the sample`);
});

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
  assert.deepEqual(c.disabledFeatures, {});
  assert.deepEqual(
    c.notifyTargets.map((t) => [t.name, t.type, t.secret?.length, t.events, t.policies]),
    [
      ['secops', 'teams', undefined, undefined, undefined],
      ['siem', 'webhook', 32, ['grant.live'], undefined],
      ['prod', 'slack', undefined, undefined, ['/subscriptions/s/resourcegroups/prod']],
    ],
  );
  const broken = (list: unknown, env: Record<string, string> = azure) =>
    loadConfig({ ...env, JIT_NOTIFY_TARGETS: typeof list === 'string' ? list : JSON.stringify(list) });
  const cases: Array<[unknown, RegExp, Record<string, string>?]> = [
    [[{ ...targets[1], secret: undefined }], /target "siem": a webhook needs "secret"/],
    [[{ ...targets[1], secret: Buffer.alloc(16).toString('base64') }], /at least 32 random bytes/],
    [[{ ...targets[0], secret }], /only a webhook target takes a secret/],
    [[targets[0], targets[0]], /the name "secops" is used twice/],
    [[{ ...targets[0], url: 'http://plain.example' }], /url must be https in Azure/],
    [[{ ...targets[0], events: ['grant.opened'] }], /target 1: events\.0/],
    [[{ ...targets[0], colour: 'red' }], /target 1/],
    [
      '@Microsoft.KeyVault(VaultName=kv;SecretName=jit-notify-targets)',
      /Key Vault reference that did not resolve/,
    ],
    ['{"name":"x"}', /must be a JSON array/],
  ];
  for (const [list, reason] of cases) {
    const c2 = broken(list);
    assert.deepEqual(c2.notifyTargets, []);
    assert.match(c2.disabledFeatures.notifications ?? '', reason);
    // The message never repeats a URL or a key.
    assert.doesNotMatch(c2.disabledFeatures.notifications ?? '', /hooks\.slack|logic\.azure|siem\.example/);
    assert.ok(!(c2.disabledFeatures.notifications ?? '').includes(secret));
  }
  // http is fine on the sandbox.
  assert.equal(
    broken([{ ...targets[0], url: 'http://127.0.0.1:8026/teams/x' }], local).notifyTargets.length,
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
  assert.deepEqual(c.telemetry, { connectionString: cs, clientId: '22222222-2222-2222-2222-222222222222' });
  assert.deepEqual(c.auditAnchors, {
    kind: 'identity',
    endpoint: 'https://st.blob.core.windows.net',
    clientId: '11111111-1111-1111-1111-111111111111',
  });
  assert.equal(loadConfig(azure).auditAnchors, undefined);
  assert.equal(loadConfig(local).auditAnchors?.kind, 'connectionString');

  const wrong = loadConfig({ ...azure, APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=abc' });
  assert.equal(wrong.telemetry, undefined);
  assert.match(wrong.disabledFeatures.telemetry ?? '', /APPLICATIONINSIGHTS_CONNECTION_STRING must hold/);
  const badAuth = loadConfig({
    ...azure,
    APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD',
  });
  assert.match(badAuth.disabledFeatures.telemetry ?? '', /APPLICATIONINSIGHTS_AUTHENTICATION_STRING/);
  const badBlob = loadConfig({ ...azure, AzureWebJobsStorage__blobServiceUri: 'st.blob' });
  assert.match(
    badBlob.disabledFeatures.auditAnchors ?? '',
    /AzureWebJobsStorage__blobServiceUri must be an absolute URL/,
  );
});
