/**
 * `npm run smoke`: one real grant through a running deployment, checked from outside.
 *
 * It checks GET /api/health, asks the API for two minutes of access from a documentation address (RFC 5737 TEST-NET-3, or what --source
 * names) to a VM, waits until the request is active, reads every NSG in the VM's path through ARM with the
 * operator's own credential to see the rule, revokes through the API, sees the rule gone in ARM, and checks the
 * audit chain. One line per step; the first failure ends the run with exit code 1 and the reason.
 *
 * With --api (or JIT_API_URL) it targets a deployment and signs in with @azure/identity; without, it targets the
 * local sandbox that `npm start` runs (it starts nothing itself). docs/deploy.md#smoke-test-a-deployment has the
 * parameters and the rights the operator needs.
 */
import { X509Certificate } from 'node:crypto';
import { connect } from 'node:tls';
import { ComputeManagementClient } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import type { SecurityRule } from '@azure/arm-network';
import type { TokenCredential } from '@azure/core-auth';
import { DefaultAzureCredential } from '@azure/identity';
import { Command, Option } from 'commander';
import { DEMO } from '../dev/arm/demo';
import { parseResourceId } from '../shared/domain/resourceId';

export interface SmokeOptions {
  /** API base URL, ending in /api. */
  apiUrl: string;
  vmId: string;
  /** Source prefix of the grant: a documentation range, so nobody real is let in. */
  sourcePrefix: string;
  port: number;
  armEndpoint: string;
  /** How long to wait for the request to become active. */
  activeTimeoutInMs: number;
  /** Against the local sandbox: dev-mode headers instead of a token, the ARM emulator's own certificate. */
  sandbox: boolean;
  /** Deployment only: the API's scope (`api://<app id>/.default`). */
  scope?: string;
}

/** A failed step: its message is the reason printed. */
class StepFailed extends Error {}

const fail = (reason: string): never => {
  throw new StepFailed(reason);
};

/**
 * The bearer token for the API, for whoever is signed in (Azure CLI, azd, environment or managed identity, in
 * DefaultAzureCredential's order). App Service Authentication accepts it when its audience is the app registration
 * (`api://<app id>`, docs/deploy.md#register-the-app-in-entra-id), whose API pre-authorizes the Azure CLI. Kept to
 * this one function so a change of sign-in touches nothing else.
 */
export async function apiToken(credential: TokenCredential, scope: string): Promise<string> {
  const token = await credential.getToken(scope);
  return token?.token ?? fail(`no token for ${scope}: sign in with az login (or azd auth login)`);
}

/** The sandbox's ARM emulator accepts any bearer token; it checks that one is sent, as ARM does. */
const sandboxArmCredential: TokenCredential = {
  getToken: async () => ({ token: 'smoke-sandbox', expiresOnTimestamp: Date.now() + 3_600_000 }),
};

interface RequestView {
  id: string;
  status: string;
  statusReason?: string;
  createdAt: string;
  expiresAt?: string;
  rules: Array<{ nsgId: string; ruleName: string; priority?: number }>;
}

/** Runs every step; resolves with the exit code. `print` receives one line per step. */
export async function runSmoke(options: SmokeOptions, print: (line: string) => void): Promise<number> {
  const credential = options.sandbox ? sandboxArmCredential : new DefaultAzureCredential();
  const api = new SmokeApi(options, options.sandbox ? undefined : credential);
  const vmName = parseResourceId(options.vmId).name;
  let live: RequestView | undefined;
  let revoked = false;

  const step = async <T>(name: string, run: () => Promise<{ value: T; line: string }>): Promise<T> => {
    try {
      const { value, line } = await run();
      print(`ok    ${name.padEnd(10)} ${line}`);
      return value;
    } catch (err) {
      print(`FAIL  ${name.padEnd(10)} ${err instanceof Error ? err.message : String(err)}`);
      throw new StepFailed('');
    }
  };

  print(
    `smoke ${options.sandbox ? 'local sandbox' : 'deployment'} ${options.apiUrl}, ARM ${options.armEndpoint}`,
  );
  try {
    await step('health', async () => {
      // Open to anyone; 503 means a setting every function needs is broken, so nothing below could work.
      const r = await api.call<{ status: string; version: string; commit?: string }>('GET', 'health');
      if (r.status !== 200) fail(`GET /api/health answered ${r.status}: ${problemText(r.body)}`);
      const built = r.body.commit ? ` (commit ${r.body.commit.slice(0, 12)})` : '';
      const note =
        r.body.status === 'ok' ? '' : '; a feature is off (GET /api/health with Jit.Admin says which)';
      return { value: undefined, line: `${r.body.status}, version ${r.body.version}${built}${note}` };
    });

    const id = await step('request', async () => {
      const r = await api.call<RequestView>('POST', 'requests', {
        vm: options.vmId,
        ports: [options.port],
        sourcePrefix: options.sourcePrefix,
        duration: 'PT2M',
        justification: 'smoke test (npm run smoke)',
      });
      if (r.status !== 202) fail(`POST /api/requests answered ${r.status}: ${problemText(r.body)}`);
      return {
        value: r.body.id,
        line: `${r.body.id}: port ${options.port} on ${vmName} from ${options.sourcePrefix} for 2 minutes`,
      };
    });

    live = await step('active', async () => {
      const view = await waitForActive(api, id, options.activeTimeoutInMs);
      const nsgs = view.rules.map((r) => parseResourceId(r.nsgId).name).join(', ');
      return { value: view, line: `until ${view.expiresAt}; rule ${view.rules[0]?.ruleName} in ${nsgs}` };
    });
    const request = live;

    const { arm, path } = await step('arm-path', async () => {
      const ca = options.sandbox ? await sandboxCa(options.armEndpoint) : undefined;
      const reader = new ArmReader(options, credential, ca);
      const nsgIds = await reader.nsgsInPath(options.vmId);
      if (nsgIds.length === 0) fail(`${vmName} has no NSG in its path: there is nothing to open`);
      const names = nsgIds.map((n) => parseResourceId(n).name).join(', ');
      return { value: { arm: reader, path: nsgIds }, line: `${vmName} is behind ${names}` };
    });

    const rules = await step('arm-open', async () => {
      const byNsg = new Map(request.rules.map((r) => [r.nsgId.toLowerCase(), r.ruleName]));
      const extra = [...byNsg.keys()].filter((n) => !path.some((p) => p.toLowerCase() === n));
      if (extra.length) fail(`the API reports rules in NSGs outside ${vmName}'s path: ${extra.join(', ')}`);
      const seen: Array<{ nsgId: string; ruleName: string; priority?: number }> = [];
      for (const nsgId of path) {
        const ruleName =
          byNsg.get(nsgId.toLowerCase()) ?? fail(`the API wrote no rule in ${nsgId}, which is in the path`);
        const rule = (await arm.rule(nsgId, ruleName)) ?? fail(`${ruleName} is not in ${nsgId}`);
        checkRule(rule, options);
        seen.push({ nsgId, ruleName, priority: rule.priority });
      }
      const where = seen.map((s) => `${parseResourceId(s.nsgId).name} (priority ${s.priority})`).join(', ');
      return {
        value: seen,
        line: `${seen[0]?.ruleName} allows ${options.sourcePrefix} to port ${options.port} in ${where}`,
      };
    });

    await step('revoke', async () => {
      const r = await api.call<RequestView>('POST', `requests/${id}/revoke`);
      if (r.status !== 200 || r.body.status !== 'revoked')
        fail(`POST /api/requests/${id}/revoke answered ${r.status}: ${problemText(r.body)}`);
      revoked = true;
      return { value: undefined, line: `${id} is ${r.body.status}` };
    });

    await step('arm-closed', async () => {
      for (const { nsgId, ruleName } of rules) {
        const left = await arm.rule(nsgId, ruleName);
        // Turned to Deny: closed, but the app could not delete it (a CanNotDelete lock, or a role without the
        // delete): the deployment is not as docs/deploy.md says, which is what this run is for.
        if (left?.access === 'Deny')
          fail(
            `${ruleName} is still in ${nsgId}, turned to Deny: the app could not delete it (a CanNotDelete lock, or ` +
              'its role lacks securityRules/delete: see grant.rule-neutralised in the audit trail)',
          );
        if (left) fail(`${ruleName} is still in ${nsgId} after the revoke`);
      }
      return { value: undefined, line: `${rules[0]?.ruleName} is gone from ${rules.length} NSG(s)` };
    });

    await step('audit', async () => ({ value: undefined, line: await checkAudit(api, request) }));
  } catch (err) {
    if (!(err instanceof StepFailed)) throw err;
    // A hole this run opened closes at its expiry anyway; end it now where the API lets us.
    if (live && !revoked) {
      const r = await api.call<RequestView>('POST', `requests/${live.id}/revoke`).catch(() => undefined);
      print(
        r?.status === 200
          ? `note  cleanup    ${live.id} revoked`
          : `note  cleanup    ${live.id} could not be revoked; it expires at ${live.expiresAt}`,
      );
    }
    return 1;
  }
  print('smoke passed');
  return 0;
}

async function waitForActive(api: SmokeApi, id: string, timeoutInMs: number): Promise<RequestView> {
  const deadline = Date.now() + timeoutInMs;
  for (;;) {
    const r = await api.call<RequestView>('GET', `requests/${id}`);
    if (r.status !== 200) fail(`GET /api/requests/${id} answered ${r.status}: ${problemText(r.body)}`);
    const view = r.body;
    if (view.status === 'active') return view;
    if (view.status === 'pending-approval')
      fail(`${id} waits for approvers: name a VM whose policy approves automatically`);
    if (['denied', 'failed', 'expired', 'revoked', 'approval-expired'].includes(view.status))
      fail(`${id} is ${view.status}: ${view.statusReason ?? 'no reason given'}`);
    if (Date.now() > deadline) fail(`${id} is still ${view.status} after ${timeoutInMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

/** The rule must let exactly our source in on our port, inbound. */
function checkRule(rule: SecurityRule, options: SmokeOptions): void {
  const sources = rule.sourceAddressPrefixes?.length
    ? rule.sourceAddressPrefixes
    : [rule.sourceAddressPrefix];
  const ports = rule.destinationPortRanges?.length ? rule.destinationPortRanges : [rule.destinationPortRange];
  const wrong = [
    rule.access !== 'Allow' && `access ${rule.access}`,
    rule.direction !== 'Inbound' && `direction ${rule.direction}`,
    !sources.includes(options.sourcePrefix) && `source ${sources.join(',')}`,
    !ports.includes(String(options.port)) && `ports ${ports.join(',')}`,
  ].filter(Boolean);
  if (wrong.length) fail(`${rule.name} is not the grant asked for: ${wrong.join('; ')}`);
}

/**
 * The chain over the days the request touched verifies, and the request's own events are in it. Audit rows can
 * land a moment after the answer that caused them, so the request's events are read for a few seconds.
 */
async function checkAudit(api: SmokeApi, request: RequestView): Promise<string> {
  const from = `${request.createdAt.slice(0, 10)}T00:00:00Z`;
  const verify = await api.call<{
    ok: boolean;
    events: number;
    problemCount: number;
    problems: Array<{ message: string }>;
  }>('GET', `audit/verify?from=${encodeURIComponent(from)}`);
  if (verify.status !== 200)
    fail(`GET /api/audit/verify answered ${verify.status}: ${problemText(verify.body)}`);
  if (!verify.body.ok)
    fail(
      `the chain is broken (${verify.body.problemCount} problems): ${verify.body.problems[0]?.message ?? ''}`,
    );
  const wanted = ['request.submitted', 'grant.activated', 'grant.revoked'];
  const deadline = Date.now() + 10_000;
  for (;;) {
    const page = await api.call<{ items: Array<{ action: string }> }>(
      'GET',
      `audit?requestId=${request.id}&from=${encodeURIComponent(from)}&pageSize=1000`,
    );
    if (page.status !== 200) fail(`GET /api/audit answered ${page.status}: ${problemText(page.body)}`);
    const actions = new Set(page.body.items.map((i) => i.action));
    const missing = wanted.filter((a) => !actions.has(a));
    if (!missing.length)
      return `chain verified since ${from.slice(0, 10)} (${verify.body.events} events); ${request.id} has ${[...actions].sort().join(', ')}`;
    if (Date.now() > deadline) fail(`the audit trail of ${request.id} lacks ${missing.join(', ')}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

function problemText(body: unknown): string {
  if (body && typeof body === 'object') {
    const p = body as { title?: string; detail?: string; errors?: Array<{ field: string; reason: string }> };
    const fields = p.errors?.map((e) => `${e.field} ${e.reason}`).join('; ');
    return [p.title, p.detail, fields].filter(Boolean).join(': ') || JSON.stringify(body);
  }
  return typeof body === 'string' && body ? body : '(no body)';
}

/** The API as a script calls it: JSON in and out, a bearer token in Azure, the dev-mode headers in the sandbox. */
class SmokeApi {
  constructor(
    private readonly options: SmokeOptions,
    private readonly credential: TokenCredential | undefined,
  ) {}

  async call<T>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const auth: Record<string, string> = this.credential
      ? {
          authorization: `Bearer ${await apiToken(this.credential, this.options.scope ?? fail('no --scope'))}`,
        }
      : // The sandbox names the caller with headers; Jit.Auditor lets it verify the audit chain.
        { 'x-jit-dev-user': 'smoke@example.com', 'x-jit-dev-roles': 'Jit.Auditor' };
    const url = `${this.options.apiUrl.replace(/\/$/, '')}/${path}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: { ...auth, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      return fail(
        `${method} ${url}: ${err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err)}`,
      );
    }
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      // not JSON: keep the text for the message
    }
    return { status: res.status, body: parsed as T };
  }
}

/**
 * Reads what ARM holds, with the operator's credential. It finds the VM's NSGs on its own (NIC and subnet of each IP
 * configuration) rather than through the app's adapter: a check that shares the code under test cannot catch its
 * mistakes.
 */
class ArmReader {
  private readonly network = new Map<string, NetworkManagementClient>();
  private readonly compute = new Map<string, ComputeManagementClient>();

  constructor(
    private readonly options: SmokeOptions,
    private readonly credential: TokenCredential,
    private readonly caPem: string | undefined,
  ) {}

  private clientOptions() {
    return { endpoint: this.options.armEndpoint, ...(this.caPem ? { tlsOptions: { ca: this.caPem } } : {}) };
  }

  /** One client per subscription and kind: a VM's NICs, subnets and NSGs may live in other subscriptions. */
  private client<T>(
    cache: Map<string, T>,
    Client: new (c: TokenCredential, s: string, o: ReturnType<ArmReader['clientOptions']>) => T,
    subscriptionId: string,
  ): T {
    let c = cache.get(subscriptionId);
    if (!c)
      cache.set(subscriptionId, (c = new Client(this.credential, subscriptionId, this.clientOptions())));
    return c;
  }

  private networkClient(subscriptionId: string): NetworkManagementClient {
    return this.client(this.network, NetworkManagementClient, subscriptionId);
  }

  private computeClient(subscriptionId: string): ComputeManagementClient {
    return this.client(this.compute, ComputeManagementClient, subscriptionId);
  }

  /** Every NSG an inbound packet to the VM crosses: each NIC's, and each subnet's its IP configurations sit in. */
  async nsgsInPath(vmId: string): Promise<string[]> {
    const v = parseResourceId(vmId);
    const vm = await this.computeClient(v.subscriptionId).virtualMachines.get(v.resourceGroup, v.name);
    const nsgs = new Map<string, string>();
    const add = (id: string | undefined) => id && nsgs.set(id.toLowerCase(), id);
    for (const ref of vm.networkProfile?.networkInterfaces ?? []) {
      const n = parseResourceId(ref.id ?? fail(`${v.name} lists a network interface without an id`));
      const nic = await this.networkClient(n.subscriptionId).networkInterfaces.get(n.resourceGroup, n.name);
      add(nic.networkSecurityGroup?.id);
      for (const ipc of nic.ipConfigurations ?? []) {
        if (!ipc.subnet?.id) continue;
        const s = parseResourceId(ipc.subnet.id);
        const subnet = await this.networkClient(s.subscriptionId).subnets.get(
          s.resourceGroup,
          s.name,
          s.children[1] ?? '',
        );
        add(subnet.networkSecurityGroup?.id);
      }
    }
    return [...nsgs.values()];
  }

  /** The rule, or undefined when ARM answers 404. */
  async rule(nsgId: string, ruleName: string): Promise<SecurityRule | undefined> {
    const n = parseResourceId(nsgId);
    try {
      return await this.networkClient(n.subscriptionId).securityRules.get(n.resourceGroup, n.name, ruleName);
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }
}

/**
 * The certificate the sandbox's ARM emulator presents. It makes a new self-signed one at every start, so the smoke
 * test takes the one it is shown on loopback, as `npm run rules` does, and then lets the SDK check it normally.
 */
function sandboxCa(endpoint: string): Promise<string> {
  const url = new URL(endpoint);
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: url.hostname, port: Number(url.port || 443), rejectUnauthorized: false },
      () => {
        const raw = socket.getPeerCertificate().raw;
        socket.end();
        resolve(new X509Certificate(raw).toString());
      },
    );
    socket.on('error', (err: Error) =>
      reject(new Error(`no ARM emulator at ${endpoint} (${err.message}): is \`npm start\` running?`)),
    );
  });
}

/** A documentation address (RFC 5737 TEST-NET-3), different on each run so that runs never share a rule. */
function documentationAddress(): string {
  return `203.0.113.${1 + Math.floor(Math.random() * 254)}/32`;
}

export function optionsFrom(argv: string[], env: NodeJS.ProcessEnv): SmokeOptions {
  const program = new Command('npm run smoke --')
    .description('One real grant through a running deployment (or the local sandbox), checked from outside')
    .addOption(
      new Option('--api <url>', 'deployment: API base URL, https://<app>.azurewebsites.net/api').env(
        'JIT_API_URL',
      ),
    )
    .addOption(
      new Option('--app-id <client id>', 'deployment: the app registration (scope api://<id>/.default)').env(
        'JIT_AUTH_CLIENT_ID',
      ),
    )
    .addOption(
      new Option('--scope <scope>', 'deployment: the API scope, instead of --app-id').env('JIT_API_SCOPE'),
    )
    .addOption(new Option('--vm <id>', 'resource id of the VM (sandbox: demo-vm)').env('JIT_SMOKE_VM'))
    .addOption(
      new Option(
        '--source <prefix>',
        'source prefix to grant (default: a 203.0.113.x/32 documentation address)',
      ),
    )
    .addOption(new Option('--port <port>', 'port to open').default('22'))
    .addOption(new Option('--arm <url>', 'ARM endpoint').env('JIT_ARM_ENDPOINT'))
    .addOption(new Option('--wait <seconds>', 'how long to wait for access to go live').default('120'))
    .exitOverride()
    .parse(argv, { from: 'user' });
  const o = program.opts<Record<string, string | undefined>>();
  const sandbox = !o.api;
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new Error(`--port must be a port number, not ${o.port}`);
  const wait = Number(o.wait);
  if (!(wait > 0)) throw new Error(`--wait must be a number of seconds, not ${o.wait}`);
  const common = { sourcePrefix: o.source ?? documentationAddress(), port, activeTimeoutInMs: wait * 1000 };
  if (sandbox) {
    // The ports `npm start` listens on (dev/start.ts), moved by the same variables.
    return {
      ...common,
      sandbox,
      apiUrl: `http://127.0.0.1:${env.JIT_SANDBOX_HTTP_PORT || 7071}/api`,
      armEndpoint: o.arm ?? `https://127.0.0.1:${env.JIT_SANDBOX_ARM_PORT || 8443}`,
      vmId: o.vm ?? DEMO.linuxVm.id,
    };
  }
  const scope = o.scope ?? (o.appId ? `api://${o.appId}/.default` : undefined);
  if (!scope) throw new Error('with --api, name the app registration: --app-id <client id> (or --scope)');
  if (!o.vm) throw new Error('with --api, name the VM: --vm <resource id>');
  return {
    ...common,
    sandbox,
    apiUrl: o.api!,
    armEndpoint: o.arm ?? 'https://management.azure.com',
    vmId: o.vm,
    scope,
  };
}

async function main(): Promise<void> {
  let options: SmokeOptions;
  try {
    options = optionsFrom(process.argv.slice(2), process.env);
  } catch (err) {
    const code = (err as { exitCode?: number }).exitCode;
    if (code !== undefined) process.exit(code); // commander printed help or its own message
    console.error(`npm run smoke: ${(err as Error).message}`);
    process.exit(2);
  }
  process.exitCode = await runSmoke(options, (line) => console.log(line));
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(`npm run smoke: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
