/**
 * The local sandbox: every Azure part this system talks to, on loopback, with no Azure account — Azurite for
 * Tables and Queues, the Service Bus emulator (AMQP 1.0), the ARM emulator (HTTPS), and the local host running
 * the same function declarations Azure runs. `npm start` runs one; integration tests start their own on free ports.
 */
import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { QueueServiceClient } from '@azure/storage-queue';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { configureServices, resetServices, services } from '../shared/composition';
import type { Principal } from '../shared/domain/types';
import { randomBytes } from 'node:crypto';
import type { GrantSettings } from '../shared/usecases/deps';
import { applyPolicies } from '../shared/usecases/policies';
import { CONTAINERS, QUEUES, SERVICE_BUS_QUEUES, TABLES } from '../shared/names';
import type { CompositionOverrides } from '../shared/composition';
import { ArmEmulator, DEMO } from './arm/emulator';
import { AUTH_SETTINGS_ARM_ACTIONS } from '../shared/adapters/armAuthSettings';
import { SANDBOX_SITE_ID, SandboxIdentity } from './auth/identity';
import type { SandboxAuthMode } from './auth/identity';
import type { ArmEmulatorOptions } from './arm/emulator';
import { Azurite } from './azurite';
import { readHostSettings } from './host/hostJson';
import type { HostSettings } from './host/hostJson';
import { HostProcess } from './host/hostProcess';
import { sandboxCredential } from './host/sandboxCredential';
import { LocalHost } from './host/localHost';
import { MailCatcher } from './mail/catcher';
import { ServiceBusEmulator } from './servicebus/emulator';
import { WebhookCatcher } from './webhooks/catcher';

/** The project root (this file is compiled to dist/dev/sandbox.js). */
export const PROJECT_ROOT = join(__dirname, '..', '..');

export interface SandboxOptions {
  /** Fixed ports for a person's sandbox; tests leave them 0 (free ports). */
  httpPort?: number;
  serviceBusPort?: number;
  armPort?: number;
  storagePorts?: { blob: number; queue: number; table: number };
  /** SMTP port of the mail catcher (0: a free one). */
  smtpPort?: number;
  /** Port of the caught-mail web view; none when undefined. */
  mailWebPort?: number;
  /** Keep storage on disk here, so it survives an Azurite restart. */
  storageLocation?: string;
  arm?: ArmEmulatorOptions;
  /** App settings to add or override. */
  settings?: Record<string, string>;
  grantSettings?: Partial<GrantSettings>;
  /** Host.json overrides (tests shorten the retry delay). */
  host?: (settings: HostSettings) => HostSettings;
  /** Lock duration of the jit-expirations queue. */
  expiryLockDurationInMs?: number;
  /** Duplicate detection history of both Service Bus queues; default an hour, as infra/modules/service-bus.bicep. */
  duplicateDetectionWindowInMs?: number;
  /** Start the local host (tests of the emulators alone may not want it). */
  startHost?: boolean;
  /**
   * Run the reconciler once when the in-process host starts, so a fresh sandbox is covered and swept at once.
   * Default true: a sandbox's choice; in Azure the reconciler runs on its schedule only. Hosts started with
   * `spawnHost` behave as Azure instances do and never run it at start.
   */
  reconcileOnStart?: boolean;
  quiet?: boolean;
  /**
   * How callers sign in (JIT_SANDBOX_AUTH): `dev` (default), `easyauth` (a local OpenID Connect provider and an
   * App-Service-like front end) or `jwt` (bearer tokens from the local provider). See dev/auth/identity.ts.
   */
  auth?: SandboxAuthMode;
  /**
   * The policy document applied at start; default dev/policies.yaml, or in `jwt` mode dev/policies-auto.yaml
   * (jwt mode refuses manual approval: approvers could not sign in).
   */
  policiesFile?: string;
  /** Receives the local host's log lines (tests check what is logged); overrides `quiet` for the host. */
  hostLog?: (level: string, functionName: string, message: string) => void;
  /** Port of the webhook catcher (0: a free one). */
  webhookPort?: number;
  /** Point a Teams, a Slack and a webhook target at the catcher (default true; most tests leave them off). */
  chatTargets?: boolean;
  /** Where the app's signals go (tests: in-memory OpenTelemetry providers); in-process hosts only. */
  telemetry?: CompositionOverrides['telemetry'];
  /** Retries of chat and webhook deliveries (tests shorten them). */
  notifyRetry?: CompositionOverrides['notifyRetry'];
}

/** The sandbox's chat and webhook targets: one of each kind, all posting to the webhook catcher. */
export const SANDBOX_TARGETS = { teams: 'sandbox-teams', slack: 'sandbox-slack', webhook: 'sandbox-webhook' };

/** Who applies the sandbox's policy file, as the audit trail records it. */
const SANDBOX_ADMIN: Principal = {
  id: 'system:sandbox',
  kind: 'user',
  name: 'system:sandbox',
  groups: [],
  roles: ['Jit.Admin'],
};

/** The demo policies with every request approved automatically: for `jwt` mode, and tests that drive many grants. */
export const AUTO_POLICIES_FILE = join(PROJECT_ROOT, 'dev', 'policies-auto.yaml');

export class Sandbox {
  readonly azurite: Azurite;
  /** How callers sign in, and the local provider and front end where the mode has them. */
  readonly identity: SandboxIdentity;
  readonly serviceBus: ServiceBusEmulator;
  readonly arm: ArmEmulator;
  /** Every mail the system sends, caught (SMTP on loopback). */
  readonly mail: MailCatcher;
  /** Every Teams, Slack and webhook delivery, caught (HTTP on loopback). */
  readonly webhooks: WebhookCatcher;
  /** The generic webhook target's HMAC key (fresh each start), for checking signatures. */
  readonly webhookSecret = randomBytes(32);
  host?: LocalHost;
  settings: Record<string, string> = {};

  constructor(private readonly options: SandboxOptions = {}) {
    const log = options.quiet ? undefined : (line: string) => console.log(`[azurite] ${line}`);
    this.azurite = new Azurite({
      blobPort: options.storagePorts?.blob ?? 0,
      queuePort: options.storagePorts?.queue ?? 0,
      tablePort: options.storagePorts?.table ?? 0,
      location: options.storageLocation,
      log,
    });
    // Duplicate detection as Bicep turns it on: the scheduling code must cope with a re-send being dropped.
    const duplicates = {
      requiresDuplicateDetection: true,
      duplicateDetectionHistoryTimeWindowInMs: options.duplicateDetectionWindowInMs ?? 3_600_000,
    };
    this.serviceBus = new ServiceBusEmulator({
      port: options.serviceBusPort ?? 0,
      queues: [
        {
          name: SERVICE_BUS_QUEUES.expirations,
          lockDurationInMs: options.expiryLockDurationInMs ?? 30_000,
          maxDeliveryCount: 10,
          ...duplicates,
        },
        { name: SERVICE_BUS_QUEUES.starts, lockDurationInMs: 30_000, maxDeliveryCount: 10, ...duplicates },
      ],
    });
    this.arm = new ArmEmulator({ port: options.armPort ?? 0, ...options.arm });
    this.mail = new MailCatcher({ smtpPort: options.smtpPort ?? 0, webPort: options.mailWebPort });
    this.webhooks = new WebhookCatcher({
      port: options.webhookPort ?? 0,
      secrets: { [SANDBOX_TARGETS.webhook]: this.webhookSecret },
    });
    this.identity = new SandboxIdentity(options.auth ?? 'dev');
  }

  /** Where people and scripts reach the app: the front end in `easyauth` mode, else the local host. */
  get baseUrl(): string {
    if (!this.host) throw new Error('the local host is not running');
    return this.identity.frontEnd?.baseUrl ?? this.host.baseUrl;
  }

  async start(): Promise<void> {
    await Promise.all([
      this.azurite.start(),
      this.serviceBus.start(),
      this.arm.start(),
      this.mail.start(),
      this.webhooks.start(),
    ]);
    const authSettings = await this.identity.start(this.options.httpPort ?? 0);
    // What App Service holds as the app's authsettingsV2, read by the app at start-up in easyauth mode.
    if (this.identity.settings) {
      this.arm.sites.setAuthSettings(SANDBOX_SITE_ID, { ...this.identity.settings });
      // The custom role infra gives the app on itself (JIT Access Auth Settings Reader): ARM checks it on the read.
      this.arm.roles.assign({
        principalId: DEMO.identity.objectId,
        scope: SANDBOX_SITE_ID,
        actions: [...AUTH_SETTINGS_ARM_ACTIONS],
      });
    }
    this.settings = {
      AzureWebJobsStorage: this.azurite.connectionString,
      ServiceBusConnection: this.serviceBus.connectionString,
      JIT_ARM_ENDPOINT: this.arm.endpoint,
      JIT_PUBLIC_BASE_URL: `http://127.0.0.1:${this.options.httpPort ?? 7071}`,
      JIT_EXPIRY_GRACE: 'PT5S',
      JIT_RECONCILE_SCHEDULE: '0 */1 * * * *',
      // Generous: tests open dozens of requests as one user; the limit itself is tested with a low setting.
      JIT_RATE_LIMIT_PER_MINUTE: '600',
      JIT_APPROVAL_ATTEMPTS_PER_MINUTE: '600',
      // A fresh key each start: links from an earlier run stop working, as after a rotation without overlap.
      JIT_APPROVAL_KEY: `sandbox-${randomBytes(3).toString('hex')}:${randomBytes(32).toString('base64')}`,
      JIT_MAIL_MODE: 'smtp',
      JIT_MAIL_FROM: 'jit-access@example.com',
      JIT_SMTP_HOST: '127.0.0.1',
      JIT_SMTP_PORT: String(this.mail.smtpPort),
      JIT_SMTP_TLS: 'none',
      JIT_NOTIFY_TARGETS:
        this.options.chatTargets === false
          ? ''
          : JSON.stringify([
              {
                name: SANDBOX_TARGETS.teams,
                type: 'teams',
                url: this.webhooks.endpoint('teams', SANDBOX_TARGETS.teams),
              },
              {
                name: SANDBOX_TARGETS.slack,
                type: 'slack',
                url: this.webhooks.endpoint('slack', SANDBOX_TARGETS.slack),
              },
              {
                name: SANDBOX_TARGETS.webhook,
                type: 'webhook',
                url: this.webhooks.endpoint('webhook', SANDBOX_TARGETS.webhook),
                secret: this.webhookSecret.toString('base64'),
              },
            ]),
      ...authSettings,
      ...this.options.settings,
    };
    await this.provisionStorage();
    configureServices({ env: this.settings, armCredential: sandboxCredential, ...this.overrides() });
    await this.seedPolicies();
    if (this.options.startHost !== false) await this.startHost();
  }

  /** Starts (or restarts) the local host against the running emulators. */
  async startHost(): Promise<void> {
    const hostSettings = readHostSettings(join(PROJECT_ROOT, 'host.json'));
    this.host = new LocalHost({
      functionsDir: join(PROJECT_ROOT, 'dist', 'functions'),
      host: this.options.host ? this.options.host(hostSettings) : hostSettings,
      settings: this.settings,
      // Behind the front end (easyauth) the host itself takes any free port; people reach the front end.
      httpPort: this.identity.frontEnd ? 0 : (this.options.httpPort ?? 0),
      log: this.options.hostLog ?? (this.options.quiet ? () => undefined : undefined),
      runOnStartup: this.options.reconcileOnStart === false ? [] : ['reconcile'],
      // On a free port the links in mail must name the port the host got. The host builds its services after
      // this, at its start (before it binds any other trigger), so they read the address set here.
      onListening: (baseUrl) => {
        this.identity.frontEnd?.forwardTo(baseUrl);
        if (!this.options.settings?.JIT_PUBLIC_BASE_URL && !this.identity.frontEnd)
          this.settings.JIT_PUBLIC_BASE_URL = baseUrl;
      },
    });
    await this.host.start();
  }

  /**
   * Starts a local host in a child process against the running emulators: one more instance of the Function
   * App, which a test can kill as a crash would. The caller stops or kills it.
   */
  async spawnHost(
    options: {
      /** Settings of this instance only, over the sandbox's (an instance deployed with other settings). */
      settings?: Record<string, string>;
      settingsInEnvironment?: boolean;
    } = {},
  ): Promise<HostProcess> {
    const hostSettings = readHostSettings(join(PROJECT_ROOT, 'host.json'));
    // Providers of this process cannot reach a child's signals: the child keeps the global (no-op) ones.
    const { armCaPem, ...rest } = this.overrides();
    const overrides = { ...rest, telemetry: undefined };
    return HostProcess.start({
      functionsDir: join(PROJECT_ROOT, 'dist', 'functions'),
      host: this.options.host ? this.options.host(hostSettings) : hostSettings,
      settings: { ...this.settings, ...options.settings },
      settingsInEnvironment: options.settingsInEnvironment,
      armCaPem,
      overrides,
    });
  }

  /**
   * How the sandbox's services differ from Azure's: its ARM emulator's CA, quick polls and retries. Against the
   * emulator's `azure` profile the ARM adapter polls operations as deployed (every second), as in Azure.
   */
  private overrides() {
    return {
      armCaPem: this.arm.caPem,
      armPollIntervalInMs: this.options.arm?.profile === 'azure' ? undefined : 50,
      armRetryDelayInMs: 50,
      // A killed host's lease blocks its NSG this long: short, so a crash test recovers quickly.
      nsgLease: { ttlInMs: 3000 },
      settings: { armBackoffInMs: 100, ...this.options.grantSettings },
      telemetry: this.options.telemetry,
      notifyRetry: this.options.notifyRetry,
    };
  }

  async stopHost(): Promise<void> {
    await this.host?.stop();
    this.host = undefined;
    await resetServices();
  }

  async stop(): Promise<void> {
    await this.stopHost();
    await Promise.allSettled([
      this.serviceBus.stop(),
      this.arm.stop(),
      this.azurite.stop(),
      this.mail.stop(),
      this.webhooks.stop(),
      this.identity.stop(),
    ]);
  }

  /** What Bicep provisions in Azure: the tables, the queues and the audit anchors' container. */
  private async provisionStorage(): Promise<void> {
    const cs = this.azurite.connectionString;
    // Azurite has no immutability policies (see shared/adapters/auditAnchorBlobs.ts): a plain container.
    await BlobServiceClient.fromConnectionString(cs)
      .getContainerClient(CONTAINERS.auditAnchors)
      .createIfNotExists();
    await Promise.all(
      Object.values(TABLES).map((t) =>
        TableClient.fromConnectionString(cs, t, { allowInsecureConnection: true }).createTable(),
      ),
    );
    const queues = QueueServiceClient.fromConnectionString(cs);
    await Promise.all(
      Object.values(QUEUES).flatMap((q) => [
        queues.getQueueClient(q).createIfNotExists(),
        queues.getQueueClient(`${q}-poison`).createIfNotExists(),
      ]),
    );
  }

  /** Applies the policy file the way `PUT /api/policies` does: parsed, validated, diffed, audited. */
  private async seedPolicies(): Promise<void> {
    const file =
      this.options.policiesFile ??
      (this.settings.JIT_AUTH_MODE === 'jwt'
        ? AUTO_POLICIES_FILE
        : join(PROJECT_ROOT, 'dev', 'policies.yaml'));
    await applyPolicies(services().deps, SANDBOX_ADMIN, {
      text: readFileSync(file, 'utf8'),
      source: relative(PROJECT_ROOT, file),
    });
    // The services built for this fixed the public URL before the host has its port: drop them, so the first
    // invocation builds them again with the address the host got.
    await resetServices();
  }

  /** A table client on the sandbox's storage, for tests and tools that read rows directly. */
  table(name: string): TableClient {
    return TableClient.fromConnectionString(this.azurite.connectionString, name, {
      allowInsecureConnection: true,
    });
  }
}
