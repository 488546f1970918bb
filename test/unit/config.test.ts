import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../../shared/config';

const local = {
  JIT_AUTH_MODE: 'dev',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  ServiceBusConnection:
    'Endpoint=sb://127.0.0.1:5672;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
};
const azure = {
  JIT_AUTH_MODE: 'easyauth',
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
