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
  WEBSITE_SITE_NAME: 'func-jit',
  WEBSITE_RESOURCE_GROUP: 'rg-jit',
  JIT_APP_RESOURCE_ID:
    '/subscriptions/22222222-2222-2222-2222-222222222222/resourceGroups/rg-jit/providers/Microsoft.Web/sites/func-jit',
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

test('easyauth needs the ARM id of this very app, whose authentication settings it checks at start-up', () => {
  // WEBSITE_AUTH_ENABLED no longer decides anything: the app reads the settings themselves.
  assert.equal(
    loadConfig({ ...azure, WEBSITE_AUTH_ENABLED: undefined }).appResourceId,
    azure.JIT_APP_RESOURCE_ID,
  );
  assert.throws(
    () => loadConfig({ ...azure, JIT_APP_RESOURCE_ID: undefined }),
    /JIT_APP_RESOURCE_ID is missing/,
  );
  assert.throws(
    () =>
      loadConfig({
        ...azure,
        JIT_APP_RESOURCE_ID: '/subscriptions/x/resourceGroups/rg/providers/Microsoft.Web/serverfarms/p',
      }),
    /JIT_APP_RESOURCE_ID must be the ARM id of a function app/,
  );
  // Another app's id would have the check read another app's settings.
  assert.throws(
    () =>
      loadConfig({
        ...azure,
        JIT_APP_RESOURCE_ID: azure.JIT_APP_RESOURCE_ID.replace('func-jit', 'func-other'),
      }),
    /JIT_APP_RESOURCE_ID must name this app \(func-jit\)/,
  );
  assert.throws(() => loadConfig({ ...azure, WEBSITE_RESOURCE_GROUP: 'rg-else' }), /must name this app/);
});

test('dev mode must be asked for: without JIT_AUTH_MODE the app does not start', () => {
  assert.throws(() => loadConfig({ ...local, JIT_AUTH_MODE: undefined }), /JIT_AUTH_MODE is missing/);
});

test('JIT_TRUSTED_PROXY_HOPS: 0 by default, 0 to 3, whole numbers only', () => {
  assert.equal(loadConfig(local).trustedProxyHops, 0);
  assert.equal(loadConfig({ ...local, JIT_TRUSTED_PROXY_HOPS: '2' }).trustedProxyHops, 2);
  for (const bad of ['4', '-1', '1.5', 'one'])
    assert.throws(
      () => loadConfig({ ...local, JIT_TRUSTED_PROXY_HOPS: bad }),
      /JIT_TRUSTED_PROXY_HOPS must be/,
      bad,
    );
});

test('jwt mode needs an issuer and audience, and derives the keys of an Entra ID issuer', () => {
  const tenant = '72f988bf-86f1-41af-91ab-2d7cd011db47';
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
    tenantId: tenant,
  });
  // Principals are keyed by tenant: the issuer must name one.
  assert.throws(
    () => loadConfig({ ...jwt, JIT_JWT_ISSUER: 'https://login.microsoftonline.com/common/v2.0' }),
    /JIT_JWT_ISSUER must be a tenant's v2.0 issuer/,
  );
  assert.throws(() => loadConfig({ ...jwt, JIT_JWT_AUDIENCE: undefined }), /JIT_JWT_AUDIENCE is missing/);
  assert.throws(
    () => loadConfig({ ...jwt, JIT_JWT_ISSUER: `https://idp.example.com/${tenant}/v2.0` }),
    /JIT_JWT_JWKS_URI is missing/,
  );
  assert.equal(
    loadConfig({
      ...jwt,
      JIT_JWT_ISSUER: `https://idp.example.com/${tenant}/v2.0`,
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
