/**
 * infra/ against the code: the app settings against SETTINGS (shared/config.ts), the tables and queues against
 * shared/names.ts, the custom NSG role against the ARM calls of shared/adapters, and the deployment's safety rules
 * (identity only, no keys, no broad roles). Each rule runs on the repository and on a small counterexample that
 * breaks it, so a rule that can no longer fail is noticed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { SETTINGS } from '../../shared/config';
import { CONTAINERS, MAX_DEQUEUE_COUNT, QUEUES, SERVICE_BUS_QUEUES, TABLES } from '../../shared/names';
import { SIGNAL_EVENTS, SIGNAL_METRICS } from '../../shared/domain/signals';
import { checkKqlQuery, kqlQueriesOf } from './kql';
import { adapterFiles, armSdkCalls, ARM_OPERATION_ACTIONS, FLUSH_OPERATIONS } from './armOperations';
import {
  listBicepFiles,
  loadBicep,
  objectProperties,
  parseBicep,
  REPO_ROOT,
  resolve,
  resourceNames,
  stringArray,
} from './bicepModel';
import type { BicepFile } from './bicepModel';
import {
  appSettingsOf,
  checkAppSettings,
  checkExpirationsQueue,
  checkIdentityOnlyServices,
  checkNoSecretsRead,
  checkNsgRoleActions,
  checkOutputNames,
  checkOutputDescriptions,
  checkParameterDescriptions,
  checkProvisionedNames,
  checkRoleAssignments,
  checkSample,
} from './rules';

const MAIN = 'infra/main.bicep';
const ROLE_ASSIGNMENTS = 'infra/modules/role-assignments.bicep';
const codeNames = {
  tables: Object.values(TABLES),
  queues: Object.values(QUEUES),
  serviceBusQueues: Object.values(SERVICE_BUS_QUEUES),
};

let loaded: Promise<BicepFile[]> | undefined;
function infra(): Promise<BicepFile[]> {
  loaded ??= Promise.all(listBicepFiles().map((f) => loadBicep(f)));
  return loaded;
}

function bicep(text: string, file = 'infra/modules/counterexample.bicep'): Promise<BicepFile> {
  return parseBicep(text, file);
}

/** The actions role-assignments.bicep passes to a custom NSG role (the rule operator, or with `roleKind` the other). */
function nsgRoleActions(file: BicepFile, moduleName = 'nsgOperator'): string[] | undefined {
  const module = file.modules.find((m) => m.path.endsWith('nsg-operator.bicep') && m.name === moduleName);
  return stringArray(
    file,
    resolve(file, objectProperties(objectProperties(module?.body).get('params')).get('actions')),
  );
}

const appSettingsBicep = (properties: string) => `
resource site 'Microsoft.Web/sites@2024-04-01' existing = {
  name: 'func'
}
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
${properties}
  }
}
`;

// ---------------------------------------------------------------------------------------------------------------

void test('the Function App sets exactly the SETTINGS that apply in Azure, all identity-based', async () => {
  const found = appSettingsOf(await infra());
  assert.ok(found, 'no Microsoft.Web/sites/config "appsettings" resource in infra/');
  assert.deepEqual(checkAppSettings(found.settings, SETTINGS), []);
});

void test('the app settings rule catches a missing, an unknown and a secret-bearing setting', async () => {
  const settings = Object.keys(SETTINGS)
    .filter((k) => k !== 'JIT_RECONCILE_SCHEDULE')
    .map((k) => `    ${k}: 'x'`)
    .join('\n');
  const file = await bicep(
    appSettingsBicep(
      `${settings}\n    FEATURE_FLAG: 'on'\n    JIT_AUTH_MODE: 'dev'\n    SMTP_RELAY: 'smtp://user:password@relay'\n    EXTRA_STORAGE: 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=abc=='`,
    ),
  );
  const problems = checkAppSettings(appSettingsOf([file])!.settings, SETTINGS).join('\n');
  assert.match(problems, /JIT_RECONCILE_SCHEDULE is in SETTINGS .* does not set it/);
  assert.match(problems, /FEATURE_FLAG is set on the Function App but is neither in SETTINGS/);
  assert.match(problems, /AzureWebJobsStorage must not be set in Azure/);
  assert.match(problems, /ServiceBusConnection must not be set in Azure/);
  assert.match(problems, /EXTRA_STORAGE looks like it holds a secret \(AccountKey=\)/);
  assert.match(problems, /SMTP_RELAY looks like it holds a secret/);
  assert.match(problems, /JIT_AUTH_MODE must be 'easyauth'/);
});

void test('local.settings.sample.json lists every setting the code reads', () => {
  const sample: unknown = JSON.parse(
    fs.readFileSync(path.join(REPO_ROOT, 'local.settings.sample.json'), 'utf8'),
  );
  assert.deepEqual(checkSample(sample, SETTINGS), []);
  const broken = checkSample({ Values: { JIT_AUTH_MODE: 'dev', JIT_SOMETHING_OLD: 'x' } }, SETTINGS).join(
    '\n',
  );
  assert.match(broken, /JIT_PUBLIC_BASE_URL is in SETTINGS but missing from local.settings.sample.json/);
  assert.match(broken, /lists JIT_SOMETHING_OLD, which the code does not read/);
});

void test('every table, queue and Service Bus queue in shared/names.ts is provisioned', async () => {
  const files = await infra();
  assert.deepEqual(checkProvisionedNames(files, codeNames), []);
  assert.deepEqual(checkExpirationsQueue(files, SERVICE_BUS_QUEUES.expirations), []);
});

void test('the names rule catches a table, a poison queue and a Service Bus setting that went missing', async () => {
  const file = await bicep(`
var tableNames = [
  'JitPolicies'
  'JitRequests'
  'JitGrants'
]
resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    name: tableName
  }
]
resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in ['jit-requests', 'jit-grants', 'jit-requests-poison']: {
    name: queueName
  }
]
resource ns 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb'
  resource expirations 'queues' = {
    name: 'jit-expirations'
    properties: {
      lockDuration: 'PT5M'
      maxDeliveryCount: 10
      deadLetteringOnMessageExpiration: true
    }
  }
}
`);
  const names = checkProvisionedNames([file], codeNames).join('\n');
  assert.match(names, /table JitAudit .* is not provisioned/);
  assert.match(names, /queue jit-grants-poison is not provisioned/);
  assert.doesNotMatch(names, /jit-expirations/);
  const queue = checkExpirationsQueue([file], 'jit-expirations').join('\n');
  assert.match(queue, /lockDuration must be 'PT1M'/);
  assert.match(queue, /requiresDuplicateDetection must be true/);
  assert.match(queue, /duplicateDetectionHistoryTimeWindow must be set/);
});

void test('the custom NSG role grants exactly what the adapters’ ARM calls need', async () => {
  const calls = armSdkCalls(adapterFiles());
  const operations = new Set(calls.map((c) => c.operation));
  // The scanner must see the calls armNetwork.ts is known to make, or an empty scan would pass for nothing.
  for (const op of [
    'VirtualMachinesOperations.get',
    'NetworkInterfaces.get',
    'Subnets.get',
    'SecurityRules.list',
    'SecurityRules.beginCreateOrUpdate',
    'SecurityRules.beginDelete',
  ]) {
    assert.ok(
      operations.has(op),
      `expected the adapters to call ${op}; the scan found ${[...operations].join(', ')}`,
    );
  }
  const roleFile = (await infra()).find((f) => f.file === ROLE_ASSIGNMENTS)!;
  const actions = nsgRoleActions(roleFile);
  assert.ok(actions, 'role-assignments.bicep must pass a literal list of actions to nsg-operator.bicep');
  // Writing an NSG itself (flushConnection) is the opt-in flow flush role's, and only that role's.
  const flushCalls = calls.filter((c) => FLUSH_OPERATIONS.has(c.operation));
  assert.ok(flushCalls.length > 0, 'expected the adapters to turn on flushConnection');
  assert.deepEqual(
    checkNsgRoleActions(
      actions,
      calls.filter((c) => !FLUSH_OPERATIONS.has(c.operation)),
    ),
    [],
  );
  const flushActions = nsgRoleActions(roleFile, 'nsgFlush');
  assert.ok(
    flushActions,
    'role-assignments.bicep must pass a literal list of actions to the flow flush role',
  );
  assert.deepEqual(checkNsgRoleActions(flushActions, flushCalls), []);
});

void test('the NSG role rule catches an unmapped ARM call, a missing action and a spare one', async () => {
  // A file that exists only in memory, resolved as if it sat next to the real adapters.
  const virtual = new Map([
    [
      path.join(REPO_ROOT, 'shared', 'adapters', 'counterexample.ts'),
      `import { NetworkManagementClient } from '@azure/arm-network';
       import type { TokenCredential } from '@azure/core-auth';
       export async function wipe(credential: TokenCredential): Promise<void> {
         const client = new NetworkManagementClient(credential, 'sub');
         const groups = client.networkSecurityGroups;
         await groups.beginDeleteAndWait('rg', 'nsg');
         await client.securityRules.beginDeleteAndWait('rg', 'nsg', 'rule');
       }`,
    ],
  ]);
  const calls = armSdkCalls([], virtual);
  assert.deepEqual(
    calls.map((c) => c.operation),
    ['NetworkSecurityGroups.beginDeleteAndWait', 'SecurityRules.beginDeleteAndWait'],
  );
  const problems = checkNsgRoleActions(
    [
      'Microsoft.Network/*',
      'Microsoft.Network/networkSecurityGroups/securityRules/delete',
      'Microsoft.Compute/virtualMachines/write',
    ],
    calls,
  ).join('\n');
  assert.match(
    problems,
    /counterexample\.ts:6 calls ARM operation NetworkSecurityGroups\.beginDeleteAndWait, which .* does not map/,
  );
  assert.match(problems, /lacks microsoft\.network\/locations\/operationresults\/read/);
  assert.match(problems, /grants the wildcard Microsoft\.Network\/\*/);
  assert.match(
    problems,
    /grants Microsoft\.Compute\/virtualMachines\/write, which no ARM call in the code needs/,
  );
  // Every mapped action names a real provider action shape.
  for (const actions of Object.values(ARM_OPERATION_ACTIONS)) {
    for (const a of actions)
      assert.match(a, /^Microsoft\.(Compute|Network|Authorization)\/[A-Za-z/]+\/(read|write|delete|action)$/);
  }
});

void test('storage, Service Bus and the other services accept Entra identities only', async () => {
  assert.deepEqual(checkIdentityOnlyServices(await infra()), []);
  const file = await bicep(`
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st'
  properties: {
    allowSharedKeyAccess: true
    allowBlobPublicAccess: false
    minimumTlsVersion: 'TLS1_2'
  }
}
resource sb 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: 'sb'
  properties: {}
}
`);
  const problems = checkIdentityOnlyServices([file]).join('\n');
  assert.match(problems, /storageAccounts 'st' must set properties.allowSharedKeyAccess: false/);
  assert.match(problems, /namespaces 'sb' must set properties.disableLocalAuth: true/);
  assert.match(problems, /no Microsoft.KeyVault\/vaults is provisioned/);
});

void test('no Bicep file reads an account key, a SAS key or a connection string', async () => {
  assert.deepEqual(checkNoSecretsRead(await infra()), []);
  const file = await bicep(`
resource st 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: 'st'
}
var storage = 'DefaultEndpointsProtocol=https;AccountName=st;AccountKey=\${st.listKeys().keys[0].value}'
var bus = listKeys(resourceId('Microsoft.ServiceBus/namespaces/authorizationRules', 'sb', 'RootManageSharedAccessKey'), '2024-01-01').primaryConnectionString
`);
  const problems = checkNoSecretsRead([file]).join('\n');
  assert.match(problems, /AccountKey=/);
  assert.match(problems, /listKeys\(\) reads secrets/);
});

void test('role assignments: allowed roles only, named guid(scope, principal, role), in one module, Service Bus on the queue', async () => {
  assert.deepEqual(checkRoleAssignments(await infra()), []);
});

void test('the role rule catches Contributor, a stray assignment, a bad name, a namespace-wide Service Bus role and a wildcard role', async () => {
  const stray = await bicep(
    `
resource ns 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: 'sb'
}
var roles = {
  contributor: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b24988ac-6180-42a0-ab88-20f7382dd24c')
  sender: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
  dataOwner: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb09999')
}
resource broad 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roles.contributor)
  properties: {
    principalId: principalId
    roleDefinitionId: roles.contributor
  }
}
resource sender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: 'sender'
  scope: ns
  properties: {
    principalId: principalId
    roleDefinitionId: roles.sender
  }
}
resource everything 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid('everything')
  properties: {
    permissions: [
      {
        actions: [
          '*'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}
`,
    'infra/modules/storage.bicep',
  );
  const problems = checkRoleAssignments([stray]).join('\n');
  assert.match(problems, /refers to the Contributor role/);
  assert.match(problems, /role definition b7e6dc6d-f1e8-4753-8033-0f276bb09999 is not on the allowed list/);
  assert.match(problems, /role assignment 'broad' belongs in infra\/modules\/role-assignments.bicep/);
  assert.match(
    problems,
    /role assignment 'sender' must be named guid\(scope, principalId, roleDefinitionId\)/,
  );
  assert.match(
    problems,
    /'sender' grants Azure Service Bus Data Sender on Microsoft.ServiceBus\/namespaces@2024-01-01; scope it to the queue/,
  );
  assert.match(problems, /custom role 'everything' grants the wildcard \*/);
});

void test('parameters are described Required./Optional., outputs are described and UPPER_SNAKE only in main.bicep', async () => {
  const files = await infra();
  assert.deepEqual(checkParameterDescriptions(files), []);
  assert.deepEqual(checkOutputDescriptions(files), []);
  assert.deepEqual(checkOutputNames(files, MAIN), []);
  const file = await bicep(`
@description('Optional. Has no default.')
param a string
param b int = 1
output SOME_ID string = 'x'
`);
  const problems = [
    ...checkParameterDescriptions([file]),
    ...checkOutputDescriptions([file]),
    ...checkOutputNames([file], MAIN),
  ].join('\n');
  assert.match(problems, /output SOME_ID has no @description/);
  assert.match(problems, /description of a must start with 'Required.'/);
  assert.match(problems, /parameter b has no @description/);
  assert.match(problems, /output SOME_ID is UPPER_SNAKE; only main.bicep outputs are/);
});

void test('azd wiring: azure.yaml deploys this project as a function app, main.parameters.json fills every required parameter', async () => {
  const azureYaml = YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'azure.yaml'), 'utf8')) as {
    services?: Record<string, { project?: string; language?: string; host?: string }>;
  };
  const api = azureYaml.services?.api;
  // What azd deploys (dist, the package hook) is checked in test/deploy/wiring.test.ts.
  assert.deepEqual(
    { project: api?.project, language: api?.language, host: api?.host },
    { project: '.', language: 'ts', host: 'function' },
  );

  const main = (await infra()).find((f) => f.file === MAIN)!;
  assert.match(main.targetScope, /^(subscription|resourceGroup)$/);
  assert.match(
    main.text,
    /var resourceToken = toLower\(uniqueString\(subscription\(\)\.id, environmentName, location\)\)/,
  );
  const parameters = (
    JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'infra', 'main.parameters.json'), 'utf8')) as {
      parameters: Record<string, unknown>;
    }
  ).parameters;
  const declared = new Set(main.params.map((p) => p.name));
  for (const name of Object.keys(parameters))
    assert.ok(declared.has(name), `main.parameters.json sets ${name}, which main.bicep does not declare`);
  for (const p of main.params) {
    if (!p.hasDefault)
      assert.ok(
        p.name in parameters,
        `main.bicep requires ${p.name}; main.parameters.json must fill it from the azd environment`,
      );
  }
  // The function app carries the tag azd deploys by.
  const functionApp = (await infra()).find((f) => f.file === 'infra/modules/function-app.bicep')!;
  assert.match(functionApp.text, /'azd-service-name': 'api'/);
});

void test('every alert and workbook query reads events, metrics and fields the code emits', async () => {
  const queries = kqlQueriesOf(await infra());
  // Six alert rules and six workbook tiles read the app's signals: an empty scan must not pass for nothing.
  assert.ok(
    queries.length >= 12,
    `found ${queries.length} KQL queries: ${queries.map((q) => `${q.file}:${q.line}`).join(', ')}`,
  );
  assert.deepEqual(
    queries.flatMap((q) => checkKqlQuery(q, SIGNAL_EVENTS, SIGNAL_METRICS)),
    [],
  );
  // Every event the alerts are about is queried somewhere.
  const all = queries.map((q) => q.text).join('\n');
  for (const name of [
    'jit.grant.opened',
    'jit.grant.closed',
    'jit.grant.failed',
    'jit.message.poisoned',
    'jit.notification.dead-lettered',
    'jit.reconcile.completed',
    'jit.drift.found',
    'jit.grant.close-blocked',
    'jit.grant.neutralised',
  ])
    assert.ok(all.includes(`'${name}'`), `no query reads ${name}`);
});

/** alerts.bicep's log search rules: name, severity and the text of the query variable each one runs. */
function alertRules(file: BicepFile): Array<{ name: string; severity: number; query: string }> {
  const vars = new Map(
    [...file.text.matchAll(/^var (\w+) = (?:replace\()?'''([\s\S]*?)'''/gm)].map((m) => [m[1]!, m[2]!]),
  );
  const list = file.text.slice(file.text.indexOf('var rules = ['));
  return [...list.matchAll(/name: '([\w-]+)'[\s\S]*?severity: (\d+)\s+query: (\w+)/g)].map((m) => ({
    name: m[1]!,
    severity: Number(m[2]),
    query: vars.get(m[3]!) ?? '',
  }));
}

void test('a close a lock blocked or neutralised has its own alert: blocked as severe as open past expiry', async () => {
  const alerts = (await infra()).find((f) => f.file === 'infra/modules/alerts.bicep')!;
  const rules = alertRules(alerts);
  const reading = (event: string) => rules.filter((r) => r.query.includes(`name == '${event}'`));
  const openPastExpiry = rules.find((r) => r.name === 'open-past-expiry');
  assert.ok(openPastExpiry, `rules found: ${rules.map((r) => r.name).join(', ')}`);
  const [blocked, ...moreBlocked] = reading('jit.grant.close-blocked');
  const [neutralised, ...moreNeutralised] = reading('jit.grant.neutralised');
  assert.ok(blocked && !moreBlocked.length, 'one rule fires on jit.grant.close-blocked');
  assert.ok(neutralised && !moreNeutralised.length, 'one rule fires on jit.grant.neutralised');
  // The port is still open: as urgent as the guarantee failing. A Deny rule left in place is not (a higher number).
  assert.equal(blocked.severity, openPastExpiry.severity);
  assert.ok(neutralised.severity > blocked.severity);
});

void test('docs/operations.md lists every signal event with its attributes', () => {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'operations.md'), 'utf8');
  for (const [name, { attributes }] of Object.entries(SIGNAL_EVENTS)) {
    const row = text.split('\n').find((l) => l.startsWith(`| \`${name}\``));
    assert.ok(row, `docs/operations.md's signals table has no row for ${name}`);
    assert.deepEqual(
      row.split('|').at(-2)?.trim().split(/,\s*/),
      [...attributes],
      `the attributes of ${name} in docs/operations.md`,
    );
  }
});

void test('the KQL rule catches an unknown event, a metric read from customEvents and a field the event lacks', async () => {
  const file = await bicep(`
var q1 = '''
customEvents
| where name == 'jit.grant.opend'
'''
var q2 = '''
customEvents
| where name in ('jit.grant.opened', 'jit.grants.opened')
| project vm = tostring(customDimensions.vm), who = tostring(customDimensions['approver'])
'''
var q3 = '''
customMetrics
| summarize count()
'''
`);
  const problems = kqlQueriesOf([file])
    .flatMap((q) => checkKqlQuery(q, SIGNAL_EVENTS, SIGNAL_METRICS))
    .join('\n');
  assert.match(problems, /jit\.grant\.opend is neither an event nor a metric/);
  assert.match(problems, /jit\.grants\.opened is a metric \(customMetrics\), which this query does not read/);
  assert.match(problems, /customDimensions\.approver is not an attribute of jit\.grant\.opened/);
  assert.doesNotMatch(problems, /customDimensions\.vm /);
  assert.match(problems, /the query names no event or metric/);
});

void test('host.json retries a queue message as often as the code expects, and the anchor container is immutable', async () => {
  const host = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'host.json'), 'utf8')) as {
    extensions: { queues: { maxDequeueCount: number } };
  };
  assert.equal(host.extensions.queues.maxDequeueCount, MAX_DEQUEUE_COUNT);
  const storage = (await infra()).find((f) => f.file === 'infra/modules/storage.bicep')!;
  const container = storage.resources.find(
    (r) =>
      r.type.startsWith('Microsoft.Storage/storageAccounts/blobServices/containers@') &&
      resourceNames(storage, r)?.includes(CONTAINERS.auditAnchors),
  );
  assert.ok(container, `container ${CONTAINERS.auditAnchors} is provisioned`);
  const policy = storage.resources.find((r) =>
    r.type.startsWith('Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@'),
  );
  assert.ok(policy, 'the container has an immutability policy');
  assert.equal(objectProperties(policy.body).get('parent')?.text, container.symbol);
  const props = objectProperties(objectProperties(policy.body).get('properties'));
  assert.ok(props.get('immutabilityPeriodSinceCreationInDays'), 'a retention period');
  assert.equal(props.get('allowProtectedAppendWrites')?.text, 'false');
});
