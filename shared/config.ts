/**
 * The only reader of process.env (STYLE.md §3). Every setting is validated once, at start-up, and a bad one
 * stops the app with a message that names the setting and what it must hold.
 * local.settings.sample.json lists every key below; infra/ sets exactly these in Azure.
 */
import { z } from 'zod';
import { parseDurationToSeconds } from './domain/duration';
import { looksLikeMailAddress } from './domain/approval';
import { ConfigurationError } from './domain/errors';

export type AuthMode = 'dev' | 'easyauth' | 'jwt';

/** How to reach one Azure service: a connection string (local sandbox) or an endpoint plus managed identity. */
export type Connection =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; endpoint: string; clientId?: string };

export interface Config {
  authMode: AuthMode;
  /** True when the process runs inside Azure App Service / Functions. */
  runningInAzure: boolean;
  tables: Connection;
  queues: Connection;
  serviceBus: Connection;
  /** Client id of the user-assigned managed identity used for ARM (and storage/bus unless they name their own). */
  managedIdentityClientId?: string;
  /** ARM endpoint; the public cloud unless set (sovereign clouds, or the local sandbox). */
  armEndpoint: string;
  priorityBand: { min: number; max: number };
  /** NSG priorities for baseline deny rules (policies with `enforce`); entirely below the JIT band. */
  baselinePriorityBand: { min: number; max: number };
  /** Most ARM calls one reconciler run makes; what is left waits for the next run. */
  reconcileMaxArmCalls: number;
  /** Longest grant the system allows under any policy. */
  maxDurationInSeconds: number;
  /** How long past its expiry a grant may still show open before the reconciler closes it. */
  expiryGraceInSeconds: number;
  /** Bearer-token validation, in `jwt` mode; `tenantId` is the tenant the issuer names. */
  jwt?: { issuer: string; audiences: string[]; jwksUri: string; tenantId: string };
  /**
   * `easyauth`: the ARM id of this function app, whose authsettingsV2 the app reads at start-up to confirm that
   * App Service Authentication is on and required before it trusts the principal header.
   */
  appResourceId?: string;
  /** How many trusted proxies (Front Door, Application Gateway) precede App Service's own front end. */
  trustedProxyHops: number;
  /** Requests one caller may create per minute (per instance). */
  requestsPerMinute: number;
  /** Approval decisions one person from one address may post per minute (per instance). */
  approvalAttemptsPerMinute: number;
  /** Base URL people reach the app at (approval links), without a trailing slash. */
  publicBaseUrl: string;
  /** Keys that sign approval links: the current one signs, both verify (rotation). */
  approvalKeys: ApprovalKeyring;
  mail: MailConfig;
  /** Mailbox for each approver group (object id, lower-cased), where one is configured. */
  approverGroupMailboxes: Record<string, string>;
}

/** An HMAC key for approval links: its id (the JWS `kid`) and at least 32 random bytes. */
export interface SigningKey {
  kid: string;
  secret: Uint8Array;
}

export interface ApprovalKeyring {
  current: SigningKey;
  previous?: SigningKey;
}

export type SmtpTls = 'starttls' | 'tls' | 'none';

export type MailConfig =
  | {
      mode: 'smtp';
      from: string;
      host: string;
      port: number;
      tls: SmtpTls;
      user?: string;
      password?: string;
    }
  | { mode: 'acs'; from: string; endpoint: string };

/** Every setting the code reads, with what it must hold: the single list docs, samples and Bicep are checked against. */
export const SETTINGS = {
  JIT_AUTH_MODE:
    'how callers authenticate: easyauth (App Service Authentication), jwt (bearer tokens) or dev (local sandbox only)',
  JIT_JWT_ISSUER: 'jwt mode: the token issuer, e.g. https://login.microsoftonline.com/<tenant id>/v2.0',
  JIT_JWT_AUDIENCE: 'jwt mode: accepted audiences, comma-separated (the API app id and/or api://<app id>)',
  JIT_JWT_JWKS_URI: "jwt mode: the issuer's signing keys (default: derived from an Entra ID issuer)",
  JIT_APP_RESOURCE_ID:
    'easyauth mode: ARM id of this function app (/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.Web/sites/<name>); the app reads its authsettingsV2 at start-up and serves only if authentication is required',
  JIT_TRUSTED_PROXY_HOPS:
    "how many trusted proxies (Front Door, Application Gateway) forward to App Service, 0 to 3 (default 0); the caller's address is read that many X-Forwarded-For entries left of the last",
  JIT_RATE_LIMIT_PER_MINUTE: 'requests one caller may create per minute, per instance (default 30)',
  JIT_APPROVAL_ATTEMPTS_PER_MINUTE:
    'approval decisions one person from one address may post per minute, per instance (default 10)',
  AzureWebJobsStorage:
    'storage connection string (local sandbox); in Azure use the __tableServiceUri/__queueServiceUri form',
  AzureWebJobsStorage__tableServiceUri:
    'Table service URI of the storage account, used with the managed identity',
  AzureWebJobsStorage__queueServiceUri:
    'Queue service URI of the storage account, used with the managed identity',
  AzureWebJobsStorage__clientId: 'client id of the user-assigned managed identity for storage',
  ServiceBusConnection:
    'Service Bus connection string (local sandbox); in Azure use __fullyQualifiedNamespace',
  ServiceBusConnection__fullyQualifiedNamespace:
    'Service Bus namespace host name, used with the managed identity',
  ServiceBusConnection__clientId: 'client id of the user-assigned managed identity for Service Bus',
  AZURE_CLIENT_ID: 'client id of the user-assigned managed identity used for ARM',
  JIT_ARM_ENDPOINT: 'Azure Resource Manager endpoint (default https://management.azure.com)',
  JIT_PRIORITY_RANGE: 'NSG priorities JIT rules may use, "min-max" within 100-4096 (default 1000-1999)',
  JIT_BASELINE_PRIORITY_RANGE:
    'NSG priorities of baseline deny rules for policies with enforce, "min-max" above JIT_PRIORITY_RANGE (default: the 1000 priorities right above it, 2000-2999)',
  JIT_RECONCILE_MAX_ARM_CALLS:
    'most ARM calls one reconciler run makes, an integer from 10 to 100000 (default 200); the rest waits for the next run',
  JIT_MAX_DURATION: 'longest grant any policy may allow, ISO-8601 (default P1D)',
  JIT_EXPIRY_GRACE:
    'how long past expiry before the reconciler closes a grant itself, ISO-8601 (default PT2M)',
  JIT_PUBLIC_BASE_URL: 'https URL people reach this app at, for links in mail',
  JIT_APPROVAL_KEY:
    'key that signs approval links, "<kid>:<base64 of at least 32 random bytes>" (e.g. k1:$(openssl rand -base64 32))',
  JIT_APPROVAL_KEY_PREVIOUS:
    'the key before JIT_APPROVAL_KEY, same form and a different kid; links it signed keep working while it is set',
  JIT_MAIL_MODE:
    'how mail is sent: smtp, or acs (Azure Communication Services Email with the managed identity)',
  JIT_MAIL_FROM: 'sender address of every mail (for acs, a verified sender such as DoNotReply@<your domain>)',
  JIT_SMTP_HOST: 'SMTP server host name (JIT_MAIL_MODE=smtp)',
  JIT_SMTP_PORT: 'SMTP server port (default 587)',
  JIT_SMTP_TLS:
    'starttls (default: the server must upgrade), tls (implicit TLS, usually port 465) or none (a local catcher only; refused in Azure)',
  JIT_SMTP_USER: 'SMTP user name, if the server wants one',
  JIT_SMTP_PASSWORD: 'SMTP password (in Azure, a Key Vault reference)',
  JIT_ACS_ENDPOINT:
    'Azure Communication Services endpoint, https://<name>.<region>.communication.azure.com (JIT_MAIL_MODE=acs)',
  JIT_APPROVER_GROUP_MAILBOXES:
    'where links for group approvers go: "<group object id>=<address>", comma-separated (groups without one get no mail)',
  JIT_RECONCILE_SCHEDULE:
    'NCRONTAB schedule of the reconciler, with seconds (read by the timer trigger; e.g. 0 */2 * * * *)',
} as const;

export type SettingName = keyof typeof SETTINGS;

const url = (setting: string) => z.url({ message: `${setting} must be an absolute URL` });

/** `/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.Web/sites/<name>`. */
const SITE_ID =
  /^\/subscriptions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Web\/sites\/([^/]+)$/i;

/** An issuer ending in `/<tenant id>/v2.0`: Entra's, or a local provider shaped like it. */
const TENANT_ISSUER = /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v2\.0\/?$/i;

/** Reads and validates the configuration. Throws `ConfigurationError` naming the first bad setting. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const get = (name: SettingName): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const fail = (name: SettingName, what: string): never => {
    throw new ConfigurationError(`Setting ${name} ${what} (${SETTINGS[name]})`);
  };

  const runningInAzure = Boolean(env.WEBSITE_INSTANCE_ID || env.WEBSITE_SITE_NAME);
  const authMode = get('JIT_AUTH_MODE') ?? fail('JIT_AUTH_MODE', 'is missing');
  if (!['dev', 'easyauth', 'jwt'].includes(authMode))
    fail('JIT_AUTH_MODE', `must be easyauth, jwt or dev, not "${authMode}"`);
  if (authMode === 'dev' && runningInAzure) {
    fail(
      'JIT_AUTH_MODE',
      'is "dev", which trusts a header naming the user and is refused when running in Azure',
    );
  }

  const checkUrl = (name: SettingName, value: string) => {
    if (!url(name).safeParse(value).success) fail(name, `must be an absolute URL, not "${value}"`);
    return value;
  };

  // The principal header is trusted only after the app has read its own authsettingsV2 and found authentication
  // required (shared/usecases/serving.ts): WEBSITE_AUTH_ENABLED says it is configured, not that it is enforced.
  let appResourceId: string | undefined;
  if (authMode === 'easyauth') {
    appResourceId =
      get('JIT_APP_RESOURCE_ID') ?? fail('JIT_APP_RESOURCE_ID', 'is missing (JIT_AUTH_MODE is easyauth)');
    const site = SITE_ID.exec(appResourceId);
    if (!site) fail('JIT_APP_RESOURCE_ID', `must be the ARM id of a function app, not "${appResourceId}"`);
    // Where the platform says which app this is, the setting must name this very app, or the check would read
    // another app's settings.
    const [, subscription = '', group = '', name = ''] = site ?? [];
    const owner = env.WEBSITE_OWNER_NAME?.split('+')[0];
    if (
      (env.WEBSITE_SITE_NAME && env.WEBSITE_SITE_NAME.toLowerCase() !== name.toLowerCase()) ||
      (env.WEBSITE_RESOURCE_GROUP && env.WEBSITE_RESOURCE_GROUP.toLowerCase() !== group.toLowerCase()) ||
      (owner && owner.toLowerCase() !== subscription.toLowerCase())
    )
      fail(
        'JIT_APP_RESOURCE_ID',
        `must name this app (${env.WEBSITE_SITE_NAME ?? '?'}), not "${appResourceId}"`,
      );
  }
  let jwt: Config['jwt'];
  if (authMode === 'jwt') {
    const issuer = checkUrl('JIT_JWT_ISSUER', get('JIT_JWT_ISSUER') ?? fail('JIT_JWT_ISSUER', 'is missing'));
    const audiences = (get('JIT_JWT_AUDIENCE') ?? fail('JIT_JWT_AUDIENCE', 'is missing'))
      .split(',')
      .map((a) => a.trim())
      .filter(Boolean);
    // A tenant-specific v2.0 issuer: principals are keyed by tenant, and a token of another tenant is refused.
    const tenant = TENANT_ISSUER.exec(issuer)?.[1];
    if (!tenant)
      fail(
        'JIT_JWT_ISSUER',
        `must be a tenant's v2.0 issuer, https://login.microsoftonline.com/<tenant id>/v2.0, not "${issuer}"`,
      );
    const entra = /^https:\/\/login\.microsoftonline\.com\/([^/]+)\/v2\.0\/?$/.exec(issuer);
    const jwksUri = checkUrl(
      'JIT_JWT_JWKS_URI',
      get('JIT_JWT_JWKS_URI') ??
        (entra
          ? `https://login.microsoftonline.com/${entra[1]}/discovery/v2.0/keys`
          : fail('JIT_JWT_JWKS_URI', 'is missing (the issuer is not Entra ID, so it cannot be derived)')),
    );
    jwt = { issuer, audiences, jwksUri, tenantId: (tenant as string).toLowerCase() };
  }
  const hopsText = get('JIT_TRUSTED_PROXY_HOPS') ?? '0';
  const trustedProxyHops = Number(hopsText);
  if (!/^[0-3]$/.test(hopsText))
    fail('JIT_TRUSTED_PROXY_HOPS', `must be a whole number from 0 to 3, not "${hopsText}"`);
  const rate = Number(get('JIT_RATE_LIMIT_PER_MINUTE') ?? '30');
  if (!Number.isInteger(rate) || rate < 1)
    fail('JIT_RATE_LIMIT_PER_MINUTE', 'must be a whole number of at least 1');
  const approvalAttempts = Number(get('JIT_APPROVAL_ATTEMPTS_PER_MINUTE') ?? '10');
  if (!Number.isInteger(approvalAttempts) || approvalAttempts < 1)
    fail('JIT_APPROVAL_ATTEMPTS_PER_MINUTE', 'must be a whole number of at least 1');

  const storageString = get('AzureWebJobsStorage');
  const storageClientId = get('AzureWebJobsStorage__clientId') ?? get('AZURE_CLIENT_ID');
  const tables: Connection = storageString
    ? { kind: 'connectionString', connectionString: storageString }
    : {
        kind: 'identity',
        endpoint: checkUrl(
          'AzureWebJobsStorage__tableServiceUri',
          get('AzureWebJobsStorage__tableServiceUri') ??
            fail('AzureWebJobsStorage__tableServiceUri', 'is missing (or set AzureWebJobsStorage)'),
        ),
        clientId: storageClientId,
      };
  const queues: Connection = storageString
    ? { kind: 'connectionString', connectionString: storageString }
    : {
        kind: 'identity',
        endpoint: checkUrl(
          'AzureWebJobsStorage__queueServiceUri',
          get('AzureWebJobsStorage__queueServiceUri') ??
            fail('AzureWebJobsStorage__queueServiceUri', 'is missing (or set AzureWebJobsStorage)'),
        ),
        clientId: storageClientId,
      };
  const busString = get('ServiceBusConnection');
  const serviceBus: Connection = busString
    ? { kind: 'connectionString', connectionString: busString }
    : {
        kind: 'identity',
        endpoint:
          get('ServiceBusConnection__fullyQualifiedNamespace') ??
          fail('ServiceBusConnection__fullyQualifiedNamespace', 'is missing (or set ServiceBusConnection)'),
        clientId: get('ServiceBusConnection__clientId') ?? get('AZURE_CLIENT_ID'),
      };
  if (runningInAzure && (storageString || busString)) {
    fail(
      storageString ? 'AzureWebJobsStorage' : 'ServiceBusConnection',
      'holds a connection string; in Azure use the managed-identity settings',
    );
  }

  const band = (name: SettingName, fallback: string) => {
    const text = get(name) ?? fallback;
    const m = /^(\d{3,4})-(\d{3,4})$/.exec(text);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (!m || lo < 100 || hi > 4096 || lo > hi)
      fail(name, `must be "min-max" within 100-4096, not "${text}"`);
    return { min: lo, max: hi };
  };
  const { min, max } = band('JIT_PRIORITY_RANGE', '1000-1999');
  // By default the baseline band starts right below the JIT band, so a custom JIT band keeps working.
  const baselinePriorityBand = band(
    'JIT_BASELINE_PRIORITY_RANGE',
    `${Math.min(max + 1, 4096)}-${Math.min(max + 1000, 4096)}`,
  );
  // Deny rules must sit below every JIT allow rule, or a grant could never open what the baseline closes.
  if (baselinePriorityBand.min <= max) {
    fail(
      'JIT_BASELINE_PRIORITY_RANGE',
      `must lie entirely above JIT_PRIORITY_RANGE (${min}-${max}), not "${baselinePriorityBand.min}-${baselinePriorityBand.max}"`,
    );
  }
  const maxCallsText = get('JIT_RECONCILE_MAX_ARM_CALLS') ?? '200';
  const reconcileMaxArmCalls = Number(maxCallsText);
  if (!/^\d+$/.test(maxCallsText) || reconcileMaxArmCalls < 10 || reconcileMaxArmCalls > 100_000)
    fail('JIT_RECONCILE_MAX_ARM_CALLS', `must be an integer from 10 to 100000, not "${maxCallsText}"`);

  const duration = (name: SettingName, fallback: string) => {
    const text = get(name) ?? fallback;
    try {
      return parseDurationToSeconds(text);
    } catch (e) {
      return fail(name, `${(e as Error).message}, not "${text}"`);
    }
  };

  const publicBaseUrl = checkUrl(
    'JIT_PUBLIC_BASE_URL',
    get('JIT_PUBLIC_BASE_URL') ?? fail('JIT_PUBLIC_BASE_URL', 'is missing'),
  ).replace(/\/+$/, '');
  if (runningInAzure && !publicBaseUrl.startsWith('https://'))
    fail('JIT_PUBLIC_BASE_URL', 'must be an https URL in Azure (approval links carry a token)');

  const current = signingKey('JIT_APPROVAL_KEY', get('JIT_APPROVAL_KEY'), fail);
  const previousText = get('JIT_APPROVAL_KEY_PREVIOUS');
  const previous = previousText ? signingKey('JIT_APPROVAL_KEY_PREVIOUS', previousText, fail) : undefined;
  if (previous && previous.kid === current.kid)
    fail('JIT_APPROVAL_KEY_PREVIOUS', `must have a different kid from JIT_APPROVAL_KEY ("${current.kid}")`);

  const mail = mailConfig(get, fail, runningInAzure, checkUrl);

  const approverGroupMailboxes: Record<string, string> = {};
  for (const pair of (get('JIT_APPROVER_GROUP_MAILBOXES') ?? '').split(',').filter((p) => p.trim())) {
    const [group, address, ...rest] = pair.split('=').map((x) => x.trim());
    if (!group || !address || rest.length || !looksLikeMailAddress(address))
      fail('JIT_APPROVER_GROUP_MAILBOXES', `must be "<group id>=<address>" pairs, not "${pair.trim()}"`);
    approverGroupMailboxes[(group as string).toLowerCase()] = address as string;
  }

  return {
    authMode: authMode as AuthMode,
    runningInAzure,
    tables,
    queues,
    serviceBus,
    managedIdentityClientId: get('AZURE_CLIENT_ID'),
    armEndpoint: checkUrl('JIT_ARM_ENDPOINT', get('JIT_ARM_ENDPOINT') ?? 'https://management.azure.com'),
    priorityBand: { min, max },
    baselinePriorityBand,
    reconcileMaxArmCalls,
    maxDurationInSeconds: duration('JIT_MAX_DURATION', 'P1D'),
    expiryGraceInSeconds: duration('JIT_EXPIRY_GRACE', 'PT2M'),
    jwt,
    appResourceId,
    trustedProxyHops,
    requestsPerMinute: rate,
    approvalAttemptsPerMinute: approvalAttempts,
    publicBaseUrl,
    approvalKeys: { current, previous },
    mail,
    approverGroupMailboxes,
  };
}

type Fail = (name: SettingName, what: string) => never;

/** `kid:base64secret`. The message never repeats the value: it is a secret. */
function signingKey(name: SettingName, text: string | undefined, fail: Fail): SigningKey {
  if (text === undefined)
    return fail(name, 'is missing; generate one with: echo "k1:$(openssl rand -base64 32)"');
  const colon = text.indexOf(':');
  const kid = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (colon < 1 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid))
    fail(name, 'must start with a key id of letters, digits, ".", "_" or "-", then ":" and the secret');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded)) fail(name, `must hold the secret in base64 after "${kid}:"`);
  const secret = Buffer.from(encoded, 'base64');
  if (secret.length < 32)
    fail(
      name,
      `must hold at least 32 bytes of secret (it holds ${secret.length}); use openssl rand -base64 32`,
    );
  return { kid, secret: new Uint8Array(secret) };
}

function mailConfig(
  get: (name: SettingName) => string | undefined,
  fail: Fail,
  runningInAzure: boolean,
  checkUrl: (name: SettingName, value: string) => string,
): MailConfig {
  const mode = get('JIT_MAIL_MODE') ?? fail('JIT_MAIL_MODE', 'is missing');
  const from = get('JIT_MAIL_FROM') ?? fail('JIT_MAIL_FROM', 'is missing');
  if (!looksLikeMailAddress(from)) fail('JIT_MAIL_FROM', `must be a mail address, not "${from}"`);
  if (mode === 'acs') {
    const endpoint = checkUrl(
      'JIT_ACS_ENDPOINT',
      get('JIT_ACS_ENDPOINT') ?? fail('JIT_ACS_ENDPOINT', 'is missing (JIT_MAIL_MODE is acs)'),
    );
    if (!endpoint.startsWith('https://')) fail('JIT_ACS_ENDPOINT', 'must be an https URL');
    return { mode, from, endpoint };
  }
  if (mode !== 'smtp') return fail('JIT_MAIL_MODE', `must be smtp or acs, not "${mode}"`);
  const host = get('JIT_SMTP_HOST') ?? fail('JIT_SMTP_HOST', 'is missing (JIT_MAIL_MODE is smtp)');
  const portText = get('JIT_SMTP_PORT') ?? '587';
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)
    fail('JIT_SMTP_PORT', `must be a port number, not "${portText}"`);
  const tls = get('JIT_SMTP_TLS') ?? 'starttls';
  if (!['starttls', 'tls', 'none'].includes(tls))
    fail('JIT_SMTP_TLS', `must be starttls, tls or none, not "${tls}"`);
  if (tls === 'none' && runningInAzure)
    fail('JIT_SMTP_TLS', 'is "none", which sends approval links in clear text and is refused in Azure');
  const user = get('JIT_SMTP_USER');
  const password = get('JIT_SMTP_PASSWORD');
  if (password && !user) fail('JIT_SMTP_USER', 'is missing while JIT_SMTP_PASSWORD is set');
  return { mode, from, host, port, tls: tls as SmtpTls, user, password };
}
