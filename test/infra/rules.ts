/**
 * The rules infra/ must keep, each a pure function that returns the broken ones as readable problems (empty when
 * all is well). The tests run them on the repository and on small counterexamples, so each rule is shown to fail
 * when it should.
 */
import type { Node } from 'web-tree-sitter';
import { ARM_OPERATION_ACTIONS } from './armOperations';
import type { ArmCall } from './armOperations';
import {
  callOf,
  descendants,
  objectProperties,
  propertyAt,
  resolve,
  resourceNames,
  stringArray,
  stringValue,
} from './bicepModel';
import type { BicepFile, ResourceDecl } from './bicepModel';

// ---------------------------------------------------------------------------------------------------------------
// App settings
// ---------------------------------------------------------------------------------------------------------------

/** Settings of shared/config.ts that must NOT be set in Azure, and why. */
export const NOT_IN_AZURE: Readonly<Record<string, string>> = {
  AzureWebJobsStorage: 'a storage connection string, for the local sandbox; loadConfig refuses it in Azure',
  ServiceBusConnection:
    'a Service Bus connection string, for the local sandbox; loadConfig refuses it in Azure',
  JIT_SMTP_USER:
    'SMTP relay credentials are not provisioned: the deployment mails through ACS with its identity; in smtp mode set them as Key Vault references',
  JIT_SMTP_PASSWORD:
    'SMTP relay credentials are not provisioned: the deployment mails through ACS with its identity; in smtp mode set them as Key Vault references',
  JIT_JWT_ISSUER:
    'jwt mode only; this deployment signs callers in with App Service Authentication (easyauth)',
  JIT_JWT_AUDIENCE:
    'jwt mode only; this deployment signs callers in with App Service Authentication (easyauth)',
  JIT_JWT_JWKS_URI:
    'jwt mode only; this deployment signs callers in with App Service Authentication (easyauth)',
};

/** Settings the Functions host or App Service reads itself, which the code never does, and why each is set. */
export const HOST_ONLY: Readonly<Record<string, string>> = {
  AzureWebJobsStorage__credential:
    'tells the Functions host to use a managed identity for AzureWebJobsStorage',
  ServiceBusConnection__credential: 'tells the Service Bus trigger to use a managed identity',
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID:
    'App Service Authentication signs in with this identity instead of a client secret',
  WEBSITE_AUTH_AAD_ALLOWED_TENANTS: 'App Service Authentication accepts tokens from this tenant only',
  FUNCTIONS_REQUEST_BODY_SIZE_LIMIT:
    'the Functions host refuses larger bodies itself (default 100 MB), before the app reads its own smaller limits',
};

/** Keys of local.settings.sample.json that only the local host reads. */
export const SAMPLE_ONLY: Readonly<Record<string, string>> = {
  FUNCTIONS_WORKER_RUNTIME:
    'Core Tools and the local host; Flex Consumption sets the runtime in functionAppConfig',
};

/** What a key, SAS or connection string with a secret looks like in Bicep. */
const SECRET_PATTERNS: readonly RegExp[] = [
  /AccountKey=/i,
  /SharedAccessKey/i,
  /SharedAccessSignature/i,
  /\blist\w*Keys?\s*\(/i,
  /\blistConnectionStrings\s*\(/i,
  /\blistSecrets\s*\(/i,
  /\b(primary|secondary)(Key|ConnectionString|MasterKey)\b/i,
  /password|secret/i,
];

/** Finds the `Microsoft.Web/sites/config` resource named `appsettings` and returns its settings by key. */
export function appSettingsOf(
  files: readonly BicepFile[],
): { file: BicepFile; settings: Map<string, Node> } | undefined {
  for (const file of files) {
    for (const r of file.resources) {
      if (
        r.type.startsWith('Microsoft.Web/sites/config@') &&
        stringValue(objectProperties(r.body).get('name')) === 'appsettings'
      ) {
        return { file, settings: objectProperties(objectProperties(r.body).get('properties')) };
      }
    }
  }
  return undefined;
}

/**
 * The Function App's app settings are exactly the SETTINGS that apply in Azure plus the host-only ones, the
 * connection-string settings are absent, and no value holds or fetches a secret.
 */
export function checkAppSettings(
  settings: ReadonlyMap<string, Node>,
  codeSettings: Readonly<Record<string, string>>,
): string[] {
  const problems: string[] = [];
  const inCode = new Set(Object.keys(codeSettings));
  for (const key of Object.keys(HOST_ONLY)) {
    if (inCode.has(key))
      problems.push(`${key} is read by the code now (SETTINGS); take it off the HOST_ONLY list`);
  }
  for (const key of inCode) {
    if (key in NOT_IN_AZURE) {
      if (settings.has(key)) problems.push(`${key} must not be set in Azure: ${NOT_IN_AZURE[key]}`);
    } else if (!settings.has(key)) {
      problems.push(`${key} is in SETTINGS (shared/config.ts) but the Function App does not set it`);
    }
  }
  for (const [key, value] of settings) {
    if (!inCode.has(key) && !(key in HOST_ONLY)) {
      problems.push(
        `${key} is set on the Function App but is neither in SETTINGS nor an allow-listed host setting`,
      );
    }
    // The Application Insights connection string is allowed by name (HOST_ONLY says why); anything else that looks
    // like a secret is not.
    // A Key Vault reference is how a secret should reach an app setting: the value names a vault and a secret,
    // never the secret itself; it must not otherwise look like one.
    // Also as `empty(name) ? '' : '<reference>'`, for a secret the operator may leave out, named by a parameter.
    const reference = String.raw`'@Microsoft\.KeyVault\(VaultName=[^;]+;SecretName=([A-Za-z0-9-]+|\$\{[A-Za-z]+\})\)'`;
    const keyVaultReference = new RegExp(`^(${reference}|empty\\([A-Za-z]+\\) \\? '' : ${reference})$`).test(
      value.text,
    );
    const patterns = (
      key === 'APPLICATIONINSIGHTS_CONNECTION_STRING'
        ? SECRET_PATTERNS
        : [...SECRET_PATTERNS, /ConnectionString/i]
    ).filter((p) => !(keyVaultReference && p.source === 'password|secret'));
    for (const pattern of patterns) {
      if (pattern.test(value.text))
        problems.push(`${key} looks like it holds a secret (${pattern.source}): ${value.text}`);
    }
  }
  const mode = settings.get('JIT_AUTH_MODE');
  if (mode && stringValue(mode) !== 'easyauth')
    problems.push(`JIT_AUTH_MODE must be 'easyauth' in Azure, not ${mode.text}`);
  return problems;
}

/** Every setting the code reads is listed in local.settings.sample.json, and the sample lists nothing else. */
export function checkSample(sample: unknown, codeSettings: Readonly<Record<string, string>>): string[] {
  const values = (sample as { Values?: Record<string, unknown> } | undefined)?.Values;
  if (!values || typeof values !== 'object') return ['local.settings.sample.json has no "Values" object'];
  const problems: string[] = [];
  for (const key of Object.keys(codeSettings)) {
    if (!(key in values)) problems.push(`${key} is in SETTINGS but missing from local.settings.sample.json`);
  }
  for (const key of Object.keys(values)) {
    if (!(key in codeSettings) && !(key in SAMPLE_ONLY))
      problems.push(`local.settings.sample.json lists ${key}, which the code does not read`);
  }
  return problems;
}

/** No Bicep file reads a key or builds a secret-bearing connection string, anywhere. */
export function checkNoSecretsRead(files: readonly BicepFile[]): string[] {
  const problems: string[] = [];
  const patterns = [
    /\blist\w*Keys?\s*\(/i,
    /\blistConnectionStrings\s*\(/i,
    /\blistSecrets\s*\(/i,
    /AccountKey=/i,
    /SharedAccessKey=/i,
  ];
  for (const file of files) {
    for (const node of descendants(file.tree.rootNode)) {
      if (node.type === 'comment' || node.namedChildren.length > 0) continue;
      for (const pattern of patterns)
        if (pattern.test(node.text))
          problems.push(`${file.file}:${node.startPosition.row + 1}: ${node.text}`);
    }
    for (const node of descendants(file.tree.rootNode)) {
      const call = callOf(node);
      if (call && /^list\w*$/i.test(call.fn))
        problems.push(`${file.file}:${node.startPosition.row + 1}: ${call.fn}() reads secrets`);
    }
  }
  return [...new Set(problems)];
}

// ---------------------------------------------------------------------------------------------------------------
// Identity-only services
// ---------------------------------------------------------------------------------------------------------------

function resourcesOfType(
  files: readonly BicepFile[],
  type: string,
): Array<{ file: BicepFile; r: ResourceDecl }> {
  return files.flatMap((file) =>
    file.resources.filter((r) => !r.existing && r.type.split('@')[0] === type).map((r) => ({ file, r })),
  );
}

function requireProperty(
  files: readonly BicepFile[],
  type: string,
  dotted: string,
  expected: string,
  why: string,
): string[] {
  const found = resourcesOfType(files, type);
  if (found.length === 0) return [`no ${type} is provisioned`];
  return found.flatMap(({ file, r }) => {
    const value = propertyAt(r.body, dotted);
    return value?.text === expected
      ? []
      : [
          `${file.file}: ${type} '${r.symbol}' must set ${dotted}: ${expected} (${why}), not ${value?.text ?? 'nothing'}`,
        ];
  });
}

/** Storage refuses shared keys, Service Bus refuses SAS, and the other services are identity-only too. */
export function checkIdentityOnlyServices(files: readonly BicepFile[]): string[] {
  return [
    ...requireProperty(
      files,
      'Microsoft.Storage/storageAccounts',
      'properties.allowSharedKeyAccess',
      'false',
      'no account keys or key-signed SAS',
    ),
    ...requireProperty(
      files,
      'Microsoft.Storage/storageAccounts',
      'properties.allowBlobPublicAccess',
      'false',
      'no anonymous blob reads',
    ),
    ...requireProperty(
      files,
      'Microsoft.Storage/storageAccounts',
      'properties.minimumTlsVersion',
      "'TLS1_2'",
      'TLS 1.2',
    ),
    ...requireProperty(
      files,
      'Microsoft.ServiceBus/namespaces',
      'properties.disableLocalAuth',
      'true',
      'no SAS keys',
    ),
    ...requireProperty(
      files,
      'Microsoft.Insights/components',
      'properties.DisableLocalAuth',
      'true',
      'telemetry only with Entra auth',
    ),
    ...requireProperty(
      files,
      'Microsoft.KeyVault/vaults',
      'properties.enableRbacAuthorization',
      'true',
      'access by role, not access policy',
    ),
    ...requireProperty(
      files,
      'Microsoft.KeyVault/vaults',
      'properties.enablePurgeProtection',
      'true',
      'a deleted signing key cannot be destroyed',
    ),
    ...requireProperty(files, 'Microsoft.Web/sites', 'properties.httpsOnly', 'true', 'HTTPS only'),
    ...requireProperty(
      files,
      'Microsoft.Web/sites',
      'properties.siteConfig.minTlsVersion',
      "'1.2'",
      'TLS 1.2',
    ),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Names the code uses
// ---------------------------------------------------------------------------------------------------------------

export interface CodeNames {
  tables: readonly string[];
  queues: readonly string[];
  serviceBusQueues: readonly string[];
}

function namesOfType(files: readonly BicepFile[], type: string): string[] {
  return resourcesOfType(files, type).flatMap(({ file, r }) => resourceNames(file, r) ?? []);
}

/** Every table, queue (with its poison queue) and Service Bus queue in shared/names.ts is provisioned. */
export function checkProvisionedNames(files: readonly BicepFile[], names: CodeNames): string[] {
  const tables = new Set(namesOfType(files, 'Microsoft.Storage/storageAccounts/tableServices/tables'));
  const queues = new Set(namesOfType(files, 'Microsoft.Storage/storageAccounts/queueServices/queues'));
  const busQueues = new Set(namesOfType(files, 'Microsoft.ServiceBus/namespaces/queues'));
  return [
    ...names.tables
      .filter((t) => !tables.has(t))
      .map((t) => `table ${t} (shared/names.ts) is not provisioned`),
    ...names.queues
      .flatMap((q) => [q, `${q}-poison`])
      .filter((q) => !queues.has(q))
      .map((q) => `queue ${q} is not provisioned`),
    ...names.serviceBusQueues
      .filter((q) => !busQueues.has(q))
      .map((q) => `Service Bus queue ${q} is not provisioned`),
  ];
}

/** The expirations queue has the properties the code relies on. */
export function checkExpirationsQueue(files: readonly BicepFile[], queueName: string): string[] {
  const found = resourcesOfType(files, 'Microsoft.ServiceBus/namespaces/queues').find(({ file, r }) =>
    resourceNames(file, r)?.includes(queueName),
  );
  if (!found) return [`Service Bus queue ${queueName} is not provisioned`];
  const props = objectProperties(objectProperties(found.r.body).get('properties'));
  const expect: Record<string, string> = {
    lockDuration: "'PT1M'",
    maxDeliveryCount: '10',
    deadLetteringOnMessageExpiration: 'true',
    requiresDuplicateDetection: 'true',
  };
  const problems = Object.entries(expect)
    .filter(([k, v]) => props.get(k)?.text !== v)
    .map(([k, v]) => `${queueName}: ${k} must be ${v}, not ${props.get(k)?.text ?? 'unset'}`);
  if (!props.has('duplicateDetectionHistoryTimeWindow'))
    problems.push(`${queueName}: duplicateDetectionHistoryTimeWindow must be set`);
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// The custom NSG role
// ---------------------------------------------------------------------------------------------------------------

/**
 * The role's actions are exactly what the ARM calls need: every call is known to the map, every action it needs is
 * in the role, and the role holds nothing more (no wildcard, no spare action).
 */
export function checkNsgRoleActions(roleActions: readonly string[], calls: readonly ArmCall[]): string[] {
  const problems: string[] = [];
  const needed = new Set<string>();
  for (const call of calls) {
    const actions = ARM_OPERATION_ACTIONS[call.operation];
    if (!actions) {
      problems.push(
        `${call.at} calls ARM operation ${call.operation}, which test/infra/armOperations.ts does not map to RBAC actions`,
      );
      continue;
    }
    actions.forEach((a) => needed.add(a.toLowerCase()));
  }
  const granted = new Set(roleActions.map((a) => a.toLowerCase()));
  for (const action of needed)
    if (!granted.has(action)) problems.push(`the NSG role lacks ${action}, which the code's ARM calls need`);
  for (const action of roleActions) {
    if (action.includes('*')) problems.push(`the NSG role grants the wildcard ${action}`);
    else if (!needed.has(action.toLowerCase()))
      problems.push(`the NSG role grants ${action}, which no ARM call in the code needs`);
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Role assignments
// ---------------------------------------------------------------------------------------------------------------

/** Built-in roles the deployment may assign, by definition id. */
export const ALLOWED_BUILT_IN_ROLES: Readonly<Record<string, string>> = {
  'b7e6dc6d-f1e8-4753-8033-0f276bb0955b': 'Storage Blob Data Owner',
  '974c5e8b-45b9-4653-ba55-5f855dd0fb88': 'Storage Queue Data Contributor',
  '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3': 'Storage Table Data Contributor',
  '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39': 'Azure Service Bus Data Sender',
  '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0': 'Azure Service Bus Data Receiver',
  '4633458b-17de-408a-b874-0445c86b69e6': 'Key Vault Secrets User',
  '3913510d-42f4-4e42-8a64-420c390055eb': 'Monitoring Metrics Publisher',
};

/** Roles broader than anything this app needs: refused wherever they appear. */
export const REFUSED_ROLES: Readonly<Record<string, string>> = {
  '8e3af657-a8ff-443c-a75c-2fe8c4bcb635': 'Owner',
  'b24988ac-6180-42a0-ab88-20f7382dd24c': 'Contributor',
  '4d97b98b-1d4f-4787-a291-c67834d212e7': 'Network Contributor',
  '18d7d88d-d35e-4fb5-a5c3-7773c20a72d9': 'User Access Administrator',
  'f58310d9-a9f6-439a-9e8d-f62e7b41a168': 'Role Based Access Control Administrator',
  '9980e02c-c2be-4d73-94e8-173b1dc7cf3c': 'Virtual Machine Contributor',
  '17d1049b-9a84-46fb-8f53-869881c3d3ab': 'Storage Account Contributor (can list account keys)',
  '090c5cfd-751d-490a-894a-3ce6f1109419': 'Azure Service Bus Data Owner',
  '00482a5a-887f-4fb3-b363-3b7fe8e74483': 'Key Vault Administrator',
};

const SERVICE_BUS_DATA_ROLES = new Set([
  '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39',
  '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0',
]);
const GUIDS = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi;
const IS_GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Where role assignments may be declared: the role-assignments module and its scope helpers. */
export function isRoleAssignmentsFile(file: string): boolean {
  return /(^|\/)modules\/role-assignments(\.bicep$|\/)/.test(file);
}

/** The built-in role GUID a roleDefinitionId expression stands for, if it is one. */
function builtInRoleOf(file: BicepFile, expression: Node | undefined): string | undefined {
  const call = callOf(resolve(file, expression));
  if (
    call?.fn !== 'subscriptionResourceId' ||
    stringValue(call.args[0]) !== 'Microsoft.Authorization/roleDefinitions'
  )
    return undefined;
  const role = resolve(file, call.args[1]);
  return stringValue(role)?.toLowerCase();
}

export function checkRoleAssignments(files: readonly BicepFile[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    // No refused role anywhere, in any form.
    for (const match of file.text.matchAll(GUIDS)) {
      const role = REFUSED_ROLES[match[0].toLowerCase()];
      if (role)
        problems.push(
          `${file.file} refers to the ${role} role (${match[0]}), which is broader than this app needs`,
        );
    }
    // Every built-in role referred to is one of the allowed ones.
    for (const node of descendants(file.tree.rootNode)) {
      const call = callOf(node);
      if (
        call?.fn !== 'subscriptionResourceId' ||
        stringValue(call.args[0]) !== 'Microsoft.Authorization/roleDefinitions'
      )
        continue;
      const id = stringValue(resolve(file, call.args[1]));
      if (id && IS_GUID.test(id) && !ALLOWED_BUILT_IN_ROLES[id.toLowerCase()]) {
        problems.push(
          `${file.file}:${node.startPosition.row + 1}: role definition ${id} is not on the allowed list`,
        );
      }
    }
    for (const r of file.resources) {
      if (r.type.startsWith('Microsoft.Authorization/roleDefinitions@') && !r.existing)
        problems.push(...checkCustomRole(file, r));
      if (!r.type.startsWith('Microsoft.Authorization/roleAssignments@') || r.existing) continue;
      if (!isRoleAssignmentsFile(file.file)) {
        problems.push(
          `${file.file}: role assignment '${r.symbol}' belongs in infra/modules/role-assignments.bicep`,
        );
      }
      problems.push(...checkAssignment(file, r));
    }
  }
  return problems;
}

function checkCustomRole(file: BicepFile, r: ResourceDecl): string[] {
  const permissions = resolve(file, propertyAt(r.body, 'properties.permissions'));
  const problems: string[] = [];
  for (const permission of permissions?.namedChildren.filter((c) => c.type === 'object') ?? []) {
    const props = objectProperties(permission);
    for (const key of ['notActions', 'dataActions', 'notDataActions']) {
      const list = stringArray(file, props.get(key));
      if (list === undefined || list.length > 0)
        problems.push(`${file.file}: custom role '${r.symbol}' must have an empty ${key}`);
    }
    const actions = stringArray(file, props.get('actions'));
    for (const action of actions ?? [])
      if (action.includes('*'))
        problems.push(`${file.file}: custom role '${r.symbol}' grants the wildcard ${action}`);
  }
  return problems;
}

function checkAssignment(file: BicepFile, r: ResourceDecl): string[] {
  const problems: string[] = [];
  const body = objectProperties(r.body);
  const props = objectProperties(body.get('properties'));
  const where = `${file.file}: role assignment '${r.symbol}'`;
  const scope = body.get('scope');
  const principal = props.get('principalId');
  const role = props.get('roleDefinitionId');
  // name: guid(scope, principal, role), so a re-run updates the same assignment and two never collide.
  const name = callOf(body.get('name'));
  const expectedScope = scope
    ? `${scope.text}.id`
    : file.targetScope === 'subscription'
      ? 'subscription().id'
      : 'resourceGroup().id';
  if (name?.fn !== 'guid' || name.args.length !== 3) {
    problems.push(`${where} must be named guid(scope, principalId, roleDefinitionId)`);
  } else {
    const [a, b, c] = name.args.map((n) => n.text);
    if (a !== expectedScope)
      problems.push(`${where}: the name's first guid() argument must be ${expectedScope}, not ${a}`);
    if (b !== principal?.text)
      problems.push(
        `${where}: the name's second guid() argument must be the principalId (${principal?.text})`,
      );
    if (c !== role?.text)
      problems.push(
        `${where}: the name's third guid() argument must be the roleDefinitionId (${role?.text})`,
      );
  }
  // Service Bus data roles on the queue the code uses, never the whole namespace.
  const builtIn = builtInRoleOf(file, role);
  if (builtIn && SERVICE_BUS_DATA_ROLES.has(builtIn)) {
    const target = file.resources.find((x) => x.symbol === scope?.text);
    if (target?.type.split('@')[0] !== 'Microsoft.ServiceBus/namespaces/queues') {
      problems.push(
        `${where} grants ${ALLOWED_BUILT_IN_ROLES[builtIn]} on ${target?.type ?? scope?.text ?? 'its deployment scope'}; scope it to the queue`,
      );
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Style of the Bicep (STYLE.md §10)
// ---------------------------------------------------------------------------------------------------------------

/** The text of a declaration's `@description('…')`, when it has one written as a string. */
function descriptionOf(decorators: Node[]): string | undefined {
  const description = decorators.map((d) => callOf(d.namedChildren[0])).find((c) => c?.fn === 'description');
  return stringValue(description?.args[0]);
}

/** Every parameter is described, `Required. …` without a default and `Optional. …` with one. */
export function checkParameterDescriptions(files: readonly BicepFile[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const p of file.params) {
      const text = descriptionOf(p.decorators);
      const prefix = p.hasDefault ? 'Optional. ' : 'Required. ';
      if (!text) problems.push(`${file.file}: parameter ${p.name} has no @description`);
      else if (!text.startsWith(prefix))
        problems.push(`${file.file}: the description of ${p.name} must start with '${prefix.trim()}'`);
    }
  }
  return problems;
}

/**
 * Every output is described, so a module's outputs read as its interface. A `@description` written above a
 * resource by mistake (meant for an output further down) leaves that output without one, and this finds it.
 */
export function checkOutputDescriptions(files: readonly BicepFile[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const o of file.outputs) {
      if (!descriptionOf(o.decorators)) problems.push(`${file.file}: output ${o.name} has no @description`);
    }
  }
  return problems;
}

/** Outputs are UPPER_SNAKE in main.bicep (they become azd environment values) and only there. */
export function checkOutputNames(files: readonly BicepFile[], mainFile: string): string[] {
  const problems: string[] = [];
  for (const file of files) {
    for (const o of file.outputs) {
      const upperSnake = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$/.test(o.name);
      if (file.file === mainFile && !upperSnake)
        problems.push(`${file.file}: output ${o.name} must be UPPER_SNAKE`);
      if (file.file !== mainFile && upperSnake)
        problems.push(`${file.file}: output ${o.name} is UPPER_SNAKE; only main.bicep outputs are`);
    }
  }
  return problems;
}
