/**
 * The only reader of process.env (STYLE.md §3). Settings are validated once, when the services are built, in two
 * kinds (docs/operations.md, "When a setting is broken"):
 * - the core (storage, Service Bus, ARM, priority bands, durations, the reconciler): what expiry, revoke, applyGrant
 *   and the reconciler need. A bad core setting stops the app with a message naming the setting and what it must
 *   hold: nothing can work without it.
 * - features (caller authentication, approval links, mail, request limits), each validated on its own. A bad
 *   feature setting switches that feature off and is reported, and the rest keeps working: a mistyped mail host or
 *   a Key Vault reference App Service could not resolve must never keep a port open past its expiry.
 * No message repeats a setting's value: it may be a secret.
 * local.settings.sample.json lists every key in SETTINGS; infra/ sets exactly these in Azure.
 */
import { z } from 'zod';
import { parseDurationToSeconds } from './domain/duration';
import { looksLikeMailAddress } from './domain/approval';
import { ConfigurationError, FeatureUnavailable } from './domain/errors';
import { NOTIFICATION_KINDS } from './domain/notifications';
import { tenantOfIssuer } from './domain/platformAuth';
import type { NotifyTarget } from './domain/notifications';

export type AuthMode = 'dev' | 'easyauth' | 'jwt';

/** How to reach one Azure service: a connection string (local sandbox) or an endpoint plus managed identity. */
export type Connection =
  | { kind: 'connectionString'; connectionString: string }
  | { kind: 'identity'; endpoint: string; clientId?: string };

/** What expiry, revoke, applyGrant and the reconciler need. Without it nothing runs, so it fails fast. */
interface CoreConfig {
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
  closeLeadInSeconds: number;
}

/** Who is calling the HTTP API. Without it no caller can be identified, so routes that need one answer 503. */
export interface AuthenticationConfig {
  authMode: AuthMode;
  /** Bearer-token validation, in `jwt` mode; `tenantId` is the tenant the issuer names. */
  jwt?: { issuer: string; audiences: string[]; jwksUri: string; tenantId: string };
  /**
   * `easyauth`: the ARM id of this function app, whose authsettingsV2 the app reads at start-up to confirm that
   * App Service Authentication is on and required before it trusts the principal header.
   */
  appResourceId?: string;
  /** How many trusted proxies (Front Door, Application Gateway) precede App Service's own front end. */
  trustedProxyHops: number;
}

/** Approval links: where they point, the keys that sign them, where group approvers' links go. */
interface ApprovalConfig {
  /** Base URL people reach the app at (approval links), without a trailing slash. */
  publicBaseUrl: string;
  /** Keys that sign approval links: the current one signs, both verify (rotation). */
  approvalKeys: ApprovalKeyring;
  /** Mailbox for each approver group (object id, lower-cased), where one is configured. */
  approverGroupMailboxes: Record<string, string>;
  /** Approval decisions one person from one address may post per minute (per instance). */
  approvalAttemptsPerMinute: number;
}

/** Creating requests. */
interface RequestLimits {
  /** Requests one caller may create per minute (per instance). */
  requestsPerMinute: number;
}

/** Application Insights: where the app's signals go (shared/adapters/azureMonitor.ts). */
export interface TelemetryConfig {
  connectionString: string;
  /** Client id of the managed identity that authenticates to ingestion (the component refuses keys). */
  clientId?: string;
}

/** The settings of each feature, by its name. A new feature is one entry here and one loader in FEATURE_LOADERS. */
export interface FeatureConfigs {
  authentication: AuthenticationConfig;
  approval: ApprovalConfig;
  mail: MailConfig;
  requests: RequestLimits;
  /** Application Insights; undefined when not configured (the sandbox): signals then go nowhere. */
  telemetry: TelemetryConfig | undefined;
  /** Chat and webhook targets of notifications; empty for mail only. */
  notifications: NotifyTarget[];
  /** The Blob service holding the audit trail's daily anchors; undefined when not configured. */
  auditAnchors: Connection | undefined;
}

export type FeatureName = keyof FeatureConfigs;

/** A broken setting: its name and what is wrong with it, never its value. */
interface SettingProblem {
  setting: SettingName;
  reason: string;
}

/** A feature is ready with its settings, or switched off by the first of its settings that is broken. */
type FeatureState<T> = { ready: true; settings: T } | { ready: false; problem: SettingProblem };

export type Features = { [K in FeatureName]: FeatureState<FeatureConfigs[K]> };

export interface Config extends CoreConfig {
  features: Features;
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

type SmtpTls = 'starttls' | 'tls' | 'none';

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
  JIT_CLOSE_LEAD:
    'how long before expiry a grant starts closing, so its port is shut by then, ISO-8601 up to PT1M (default PT10S; never more than a tenth of the grant; PT0S starts at expiry)',
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
  APPLICATIONINSIGHTS_CONNECTION_STRING:
    'Application Insights connection string (names the component; not a secret when its local auth is off); unset: no telemetry',
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING:
    '"ClientId=<managed identity client id>;Authorization=AAD": telemetry is sent with that identity',
  AzureWebJobsStorage__blobServiceUri:
    'Blob service URI of the storage account: the Functions host state, and the immutable audit anchors (container jit-audit-anchors)',
  JIT_NOTIFY_TARGETS:
    'chat and webhook targets of notifications, a JSON array (in Azure a Key Vault reference: the URLs are secrets; see docs/operations.md)',
} as const;

export type SettingName = keyof typeof SETTINGS;

/** One setting that fails its check: which, and why (never its value). */
export class SettingInvalid extends ConfigurationError {
  constructor(
    readonly setting: SettingName,
    readonly reason: string,
  ) {
    super(`Setting ${setting} ${reason} (${SETTINGS[setting]})`);
  }
}

/**
 * When App Service cannot resolve a Key Vault reference, the app gets the reference text itself: "If a reference
 * isn't resolved properly, the reference string is used instead (for example, @Microsoft.KeyVault(...))"
 * (https://learn.microsoft.com/azure/app-service/app-service-key-vault-references#troubleshoot-key-vault-references).
 */
const KEY_VAULT_REFERENCE = /^@Microsoft\.KeyVault\(/i;

const UNRESOLVED_REFERENCE =
  'is an unresolved Key Vault reference: App Service could not read the secret and passed the reference itself ' +
  '(check that the secret exists and that the app identity may read it)';

/** Reads settings for the loaders below; every failure names the setting and never repeats its value. */
interface SettingsReader {
  /** App Service's own variables (WEBSITE_*), which are not settings of this app. */
  env: NodeJS.ProcessEnv;
  runningInAzure: boolean;
  /** The trimmed value, or undefined when unset or blank. */
  get: (name: SettingName) => string | undefined;
  fail: (name: SettingName, reason: string) => never;
  url: (name: SettingName, value: string) => string;
}

const url = z.url();

function settingsReader(env: NodeJS.ProcessEnv): SettingsReader {
  const fail = (name: SettingName, reason: string): never => {
    throw new SettingInvalid(name, reason);
  };
  return {
    env,
    runningInAzure: Boolean(env.WEBSITE_INSTANCE_ID || env.WEBSITE_SITE_NAME),
    get: (name) => {
      const v = env[name]?.trim();
      if (!v) return undefined;
      if (KEY_VAULT_REFERENCE.test(v)) fail(name, UNRESOLVED_REFERENCE);
      return v;
    },
    fail,
    url: (name, value) => (url.safeParse(value).success ? value : fail(name, 'must be an absolute URL')),
  };
}

const FEATURE_LOADERS: { [K in FeatureName]: (read: SettingsReader) => FeatureConfigs[K] } = {
  authentication: loadAuthentication,
  approval: loadApproval,
  mail: loadMail,
  requests: loadRequestLimits,
  telemetry: loadTelemetry,
  notifications: loadNotifyTargets,
  auditAnchors: loadAuditAnchors,
};

/**
 * Reads and validates the configuration. Throws `SettingInvalid` naming the first bad core setting; a bad feature
 * setting switches that feature off (its `problem` says which setting and why) and loading goes on.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const read = settingsReader(env);
  const core = loadCore(read);
  const features: Partial<Record<FeatureName, FeatureState<unknown>>> = {};
  for (const name of Object.keys(FEATURE_LOADERS) as FeatureName[]) {
    try {
      features[name] = { ready: true, settings: FEATURE_LOADERS[name](read) };
    } catch (err) {
      if (!(err instanceof SettingInvalid)) throw err;
      features[name] = { ready: false, problem: { setting: err.setting, reason: err.reason } };
    }
  }
  return { ...core, features: features as Features };
}

/** A feature's settings, or `FeatureUnavailable` (503, naming the feature) when one of them is broken. */
export function requireFeature<K extends FeatureName>(features: Features, name: K): FeatureConfigs[K] {
  const state = features[name];
  if (!state.ready) throw new FeatureUnavailable(name);
  return state.settings;
}

function loadCore(read: SettingsReader): CoreConfig {
  const { get, fail } = read;
  const storageString = get('AzureWebJobsStorage');
  const storageClientId = get('AzureWebJobsStorage__clientId') ?? get('AZURE_CLIENT_ID');
  const storage = (name: 'AzureWebJobsStorage__tableServiceUri' | 'AzureWebJobsStorage__queueServiceUri') =>
    storageString
      ? { kind: 'connectionString' as const, connectionString: storageString }
      : {
          kind: 'identity' as const,
          endpoint: read.url(name, get(name) ?? fail(name, 'is missing (or set AzureWebJobsStorage)')),
          clientId: storageClientId,
        };
  const tables: Connection = storage('AzureWebJobsStorage__tableServiceUri');
  const queues: Connection = storage('AzureWebJobsStorage__queueServiceUri');
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
  if (read.runningInAzure && (storageString || busString)) {
    fail(
      storageString ? 'AzureWebJobsStorage' : 'ServiceBusConnection',
      'holds a connection string; in Azure use the managed-identity settings',
    );
  }

  const band = (name: SettingName, fallback: string) => {
    const m = /^(\d{3,4})-(\d{3,4})$/.exec(get(name) ?? fallback);
    const lo = Number(m?.[1]);
    const hi = Number(m?.[2]);
    if (!m || lo < 100 || hi > 4096 || lo > hi) fail(name, 'must be "min-max" within 100-4096');
    return { min: lo, max: hi };
  };
  const priorityBand = band('JIT_PRIORITY_RANGE', '1000-1999');
  const { min, max } = priorityBand;
  // By default the baseline band starts right below the JIT band, so a custom JIT band keeps working.
  const baselinePriorityBand = band(
    'JIT_BASELINE_PRIORITY_RANGE',
    `${Math.min(max + 1, 4096)}-${Math.min(max + 1000, 4096)}`,
  );
  // Deny rules must sit below every JIT allow rule, or a grant could never open what the baseline closes.
  if (baselinePriorityBand.min <= max) {
    fail(
      'JIT_BASELINE_PRIORITY_RANGE',
      `must lie entirely above JIT_PRIORITY_RANGE (${min}-${max}), not start at ${baselinePriorityBand.min}`,
    );
  }
  const maxCallsText = get('JIT_RECONCILE_MAX_ARM_CALLS') ?? '200';
  const reconcileMaxArmCalls = Number(maxCallsText);
  if (!/^\d+$/.test(maxCallsText) || reconcileMaxArmCalls < 10 || reconcileMaxArmCalls > 100_000)
    fail('JIT_RECONCILE_MAX_ARM_CALLS', 'must be an integer from 10 to 100000');

  const duration = (name: SettingName, fallback: string, options?: { zero: boolean }) => {
    try {
      return parseDurationToSeconds(get(name) ?? fallback, options);
    } catch (e) {
      return fail(name, (e as Error).message);
    }
  };
  // A lead is seconds (one ARM operation and the wait for a busy NSG); a minute is already far more than that.
  const closeLeadInSeconds = duration('JIT_CLOSE_LEAD', 'PT10S', { zero: true });
  if (closeLeadInSeconds > 60) fail('JIT_CLOSE_LEAD', 'must be at most PT1M');

  return {
    runningInAzure: read.runningInAzure,
    tables,
    queues,
    serviceBus,
    managedIdentityClientId: get('AZURE_CLIENT_ID'),
    armEndpoint: read.url('JIT_ARM_ENDPOINT', get('JIT_ARM_ENDPOINT') ?? 'https://management.azure.com'),
    priorityBand,
    baselinePriorityBand,
    reconcileMaxArmCalls,
    maxDurationInSeconds: duration('JIT_MAX_DURATION', 'P1D'),
    expiryGraceInSeconds: duration('JIT_EXPIRY_GRACE', 'PT2M'),
    closeLeadInSeconds,
  };
}

function loadAuthentication(read: SettingsReader): AuthenticationConfig {
  const { get, fail } = read;
  const authMode = get('JIT_AUTH_MODE') ?? fail('JIT_AUTH_MODE', 'is missing');
  if (authMode !== 'dev' && authMode !== 'easyauth' && authMode !== 'jwt')
    return fail('JIT_AUTH_MODE', 'must be easyauth, jwt or dev');
  if (authMode === 'dev' && read.runningInAzure) {
    fail(
      'JIT_AUTH_MODE',
      'is "dev", which trusts a header naming the user and is refused when running in Azure',
    );
  }
  const hopsText = get('JIT_TRUSTED_PROXY_HOPS') ?? '0';
  if (!/^[0-3]$/.test(hopsText)) fail('JIT_TRUSTED_PROXY_HOPS', 'must be a whole number from 0 to 3');
  const trustedProxyHops = Number(hopsText);
  // The principal header is trusted only after the app has read its own authsettingsV2 and found authentication
  // required (shared/usecases/serving.ts): WEBSITE_AUTH_ENABLED says it is configured, not that it is enforced.
  if (authMode === 'easyauth') {
    const appResourceId =
      get('JIT_APP_RESOURCE_ID') ?? fail('JIT_APP_RESOURCE_ID', 'is missing (JIT_AUTH_MODE is easyauth)');
    const site = SITE_ID.exec(appResourceId);
    if (!site) return fail('JIT_APP_RESOURCE_ID', 'must be the ARM id of a function app');
    // Where the platform says which app this is, the setting must name this very app, or the check would read
    // another app's settings.
    const [, subscription = '', group = '', name = ''] = site;
    const env = read.env;
    const owner = env.WEBSITE_OWNER_NAME?.split('+')[0];
    if (
      (env.WEBSITE_SITE_NAME && env.WEBSITE_SITE_NAME.toLowerCase() !== name.toLowerCase()) ||
      (env.WEBSITE_RESOURCE_GROUP && env.WEBSITE_RESOURCE_GROUP.toLowerCase() !== group.toLowerCase()) ||
      (owner && owner.toLowerCase() !== subscription.toLowerCase())
    )
      fail('JIT_APP_RESOURCE_ID', `must name this app (${env.WEBSITE_SITE_NAME ?? '?'})`);
    return { authMode, appResourceId, trustedProxyHops };
  }
  if (authMode !== 'jwt') return { authMode, trustedProxyHops };
  const issuer = read.url('JIT_JWT_ISSUER', get('JIT_JWT_ISSUER') ?? fail('JIT_JWT_ISSUER', 'is missing'));
  const audiences = (get('JIT_JWT_AUDIENCE') ?? fail('JIT_JWT_AUDIENCE', 'is missing'))
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  // A tenant-specific v2.0 issuer: principals are keyed by tenant, and a token of another tenant is refused.
  const tenantId = tenantOfIssuer(issuer);
  if (!tenantId)
    return fail(
      'JIT_JWT_ISSUER',
      "must be a tenant's v2.0 issuer, https://login.microsoftonline.com/<tenant id>/v2.0",
    );
  const entra = /^https:\/\/login\.microsoftonline\.com\/([^/]+)\/v2\.0\/?$/.exec(issuer);
  const jwksUri = read.url(
    'JIT_JWT_JWKS_URI',
    get('JIT_JWT_JWKS_URI') ??
      (entra
        ? `https://login.microsoftonline.com/${entra[1]}/discovery/v2.0/keys`
        : fail('JIT_JWT_JWKS_URI', 'is missing (the issuer is not Entra ID, so it cannot be derived)')),
  );
  return { authMode, jwt: { issuer, audiences, jwksUri, tenantId }, trustedProxyHops };
}

/** `/subscriptions/<id>/resourceGroups/<name>/providers/Microsoft.Web/sites/<name>`. */
const SITE_ID =
  /^\/subscriptions\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/resourceGroups\/([^/]+)\/providers\/Microsoft\.Web\/sites\/([^/]+)$/i;

function perMinute(read: SettingsReader, name: SettingName, fallback: string): number {
  const text = read.get(name) ?? fallback;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1) read.fail(name, 'must be a whole number of at least 1');
  return n;
}

function loadRequestLimits(read: SettingsReader): RequestLimits {
  return { requestsPerMinute: perMinute(read, 'JIT_RATE_LIMIT_PER_MINUTE', '30') };
}

function loadApproval(read: SettingsReader): ApprovalConfig {
  const { get, fail } = read;
  const publicBaseUrl = read
    .url('JIT_PUBLIC_BASE_URL', get('JIT_PUBLIC_BASE_URL') ?? fail('JIT_PUBLIC_BASE_URL', 'is missing'))
    .replace(/\/+$/, '');
  if (read.runningInAzure && !publicBaseUrl.startsWith('https://'))
    fail('JIT_PUBLIC_BASE_URL', 'must be an https URL in Azure (approval links carry a token)');

  const current = signingKey(read, 'JIT_APPROVAL_KEY');
  const previous = get('JIT_APPROVAL_KEY_PREVIOUS')
    ? signingKey(read, 'JIT_APPROVAL_KEY_PREVIOUS')
    : undefined;
  if (previous && previous.kid === current.kid)
    fail('JIT_APPROVAL_KEY_PREVIOUS', `must have a different kid from JIT_APPROVAL_KEY ("${current.kid}")`);

  const approverGroupMailboxes: Record<string, string> = {};
  for (const pair of (get('JIT_APPROVER_GROUP_MAILBOXES') ?? '').split(',').filter((p) => p.trim())) {
    const [group, address, ...rest] = pair.split('=').map((x) => x.trim());
    if (!group || !address || rest.length || !looksLikeMailAddress(address))
      fail('JIT_APPROVER_GROUP_MAILBOXES', 'must be "<group id>=<address>" pairs, comma-separated');
    approverGroupMailboxes[(group as string).toLowerCase()] = address as string;
  }
  return {
    publicBaseUrl,
    approvalKeys: { current, previous },
    approverGroupMailboxes,
    approvalAttemptsPerMinute: perMinute(read, 'JIT_APPROVAL_ATTEMPTS_PER_MINUTE', '10'),
  };
}

/** `kid:base64secret`. */
function signingKey(read: SettingsReader, name: SettingName): SigningKey {
  const text =
    read.get(name) ?? read.fail(name, 'is missing; generate one with: echo "k1:$(openssl rand -base64 32)"');
  const colon = text.indexOf(':');
  const kid = text.slice(0, colon);
  const encoded = text.slice(colon + 1);
  if (colon < 1 || !/^[A-Za-z0-9._-]{1,64}$/.test(kid))
    read.fail(name, 'must start with a key id of letters, digits, ".", "_" or "-", then ":" and the secret');
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(encoded))
    read.fail(name, `must hold the secret in base64 after "${kid}:"`);
  const secret = Buffer.from(encoded, 'base64');
  if (secret.length < 32)
    read.fail(
      name,
      `must hold at least 32 bytes of secret (it holds ${secret.length}); use openssl rand -base64 32`,
    );
  return { kid, secret: new Uint8Array(secret) };
}

function loadMail(read: SettingsReader): MailConfig {
  const { get, fail } = read;
  const mode = get('JIT_MAIL_MODE') ?? fail('JIT_MAIL_MODE', 'is missing');
  const from = get('JIT_MAIL_FROM') ?? fail('JIT_MAIL_FROM', 'is missing');
  if (!looksLikeMailAddress(from)) fail('JIT_MAIL_FROM', 'must be a mail address');
  if (mode === 'acs') {
    const endpoint = read.url(
      'JIT_ACS_ENDPOINT',
      get('JIT_ACS_ENDPOINT') ?? fail('JIT_ACS_ENDPOINT', 'is missing (JIT_MAIL_MODE is acs)'),
    );
    if (!endpoint.startsWith('https://')) fail('JIT_ACS_ENDPOINT', 'must be an https URL');
    return { mode, from, endpoint };
  }
  if (mode !== 'smtp') return fail('JIT_MAIL_MODE', 'must be smtp or acs');
  const host = get('JIT_SMTP_HOST') ?? fail('JIT_SMTP_HOST', 'is missing (JIT_MAIL_MODE is smtp)');
  const portText = get('JIT_SMTP_PORT') ?? '587';
  const port = Number(portText);
  if (!/^\d{1,5}$/.test(portText) || port < 1 || port > 65535)
    fail('JIT_SMTP_PORT', 'must be a port number, 1 to 65535');
  const tls = get('JIT_SMTP_TLS') ?? 'starttls';
  if (tls !== 'starttls' && tls !== 'tls' && tls !== 'none')
    return fail('JIT_SMTP_TLS', 'must be starttls, tls or none');
  if (tls === 'none' && read.runningInAzure)
    fail('JIT_SMTP_TLS', 'is "none", which sends approval links in clear text and is refused in Azure');
  const user = get('JIT_SMTP_USER');
  const password = get('JIT_SMTP_PASSWORD');
  if (password && !user) fail('JIT_SMTP_USER', 'is missing while JIT_SMTP_PASSWORD is set');
  return { mode, from, host, port, tls, user, password };
}

function loadTelemetry(read: SettingsReader): TelemetryConfig | undefined {
  const { get, fail } = read;
  // Checked even without a connection string: a broken identity setting is reported, not left to surprise later.
  const auth = get('APPLICATIONINSIGHTS_AUTHENTICATION_STRING');
  const identity = auth ? /^\s*ClientId=([0-9a-f-]{36})\s*;\s*Authorization=AAD\s*$/i.exec(auth) : undefined;
  if (auth && !identity)
    fail('APPLICATIONINSIGHTS_AUTHENTICATION_STRING', 'must be "ClientId=<client id>;Authorization=AAD"');
  const connectionString = get('APPLICATIONINSIGHTS_CONNECTION_STRING');
  if (!connectionString) return undefined;
  const ingestion = /(?:^|;)\s*IngestionEndpoint=([^;]+)/i.exec(connectionString)?.[1];
  if (!/(?:^|;)\s*InstrumentationKey=[0-9a-f-]{36}\s*(?:;|$)/i.test(connectionString) || !ingestion)
    fail(
      'APPLICATIONINSIGHTS_CONNECTION_STRING',
      'must hold InstrumentationKey=<guid> and IngestionEndpoint=<url> (copy it from the component)',
    );
  read.url('APPLICATIONINSIGHTS_CONNECTION_STRING', ingestion as string);
  return { connectionString, clientId: identity?.[1] };
}

/** The audit anchors live in the storage account's Blob service: the sandbox's connection string, or its URI. */
function loadAuditAnchors(read: SettingsReader): Connection | undefined {
  const storageString = read.get('AzureWebJobsStorage');
  if (storageString) return { kind: 'connectionString', connectionString: storageString };
  const endpoint = read.get('AzureWebJobsStorage__blobServiceUri');
  if (!endpoint) return undefined;
  return {
    kind: 'identity',
    endpoint: read.url('AzureWebJobsStorage__blobServiceUri', endpoint),
    clientId: read.get('AzureWebJobsStorage__clientId') ?? read.get('AZURE_CLIENT_ID'),
  };
}

const notifyTargetSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, ".", "_" or "-"'),
    type: z.enum(['teams', 'slack', 'webhook']),
    url: z.url(),
    secret: z.string().optional(),
    events: z.array(z.enum(NOTIFICATION_KINDS)).min(1).optional(),
    policies: z.array(z.string().min(1)).min(1).optional(),
  })
  .strict();

/** `JIT_NOTIFY_TARGETS`: a JSON array of targets. Reasons name the target and the field, never a URL or key. */
function loadNotifyTargets(read: SettingsReader): NotifyTarget[] {
  const { fail } = read;
  const text = read.get('JIT_NOTIFY_TARGETS');
  if (!text) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail('JIT_NOTIFY_TARGETS', 'must be a JSON array of targets');
  }
  if (!Array.isArray(json)) return fail('JIT_NOTIFY_TARGETS', 'must be a JSON array of targets');
  const names = new Set<string>();
  return json.map((item, i) => {
    const parsed = notifyTargetSchema.safeParse(item);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return fail(
        'JIT_NOTIFY_TARGETS',
        `target ${i + 1}: ${issue?.path.join('.') || '(target)'} ${issue?.message ?? 'is invalid'}`,
      );
    }
    const t = parsed.data;
    if (names.has(t.name)) fail('JIT_NOTIFY_TARGETS', `target ${i + 1}: the name "${t.name}" is used twice`);
    names.add(t.name);
    if (read.runningInAzure && !t.url.startsWith('https://'))
      fail('JIT_NOTIFY_TARGETS', `target "${t.name}": url must be https in Azure`);
    let secret: Uint8Array | undefined;
    if (t.type === 'webhook') {
      const key = Buffer.from(t.secret ?? '', 'base64');
      if (!t.secret || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(t.secret) || key.length < 32)
        fail(
          'JIT_NOTIFY_TARGETS',
          `target "${t.name}": a webhook needs "secret", at least 32 random bytes in base64 (openssl rand -base64 32)`,
        );
      secret = new Uint8Array(key);
    } else if (t.secret !== undefined) {
      fail('JIT_NOTIFY_TARGETS', `target "${t.name}": only a webhook target takes a secret`);
    }
    return {
      name: t.name,
      type: t.type,
      url: t.url,
      secret,
      events: t.events,
      policies: t.policies?.map((p) => p.trim().toLowerCase()),
    };
  });
}
