/**
 * `npm start`: the whole system on this machine, on fixed ports, until Ctrl-C.
 * Ports can be moved with JIT_SANDBOX_HTTP_PORT, JIT_SANDBOX_ARM_PORT, JIT_SANDBOX_SERVICEBUS_PORT,
 * JIT_SANDBOX_STORAGE_PORT (the first of three consecutive ports), JIT_SANDBOX_SMTP_PORT, JIT_SANDBOX_MAIL_PORT and
 * JIT_SANDBOX_WEBHOOK_PORT; Azurite's data with JIT_SANDBOX_DATA_DIR (default .sandbox/azurite).
 * JIT_SANDBOX_AUTH chooses how callers sign in: dev (default), easyauth or jwt (dev/auth/identity.ts).
 * JIT_SANDBOX_ARM_PROFILE chooses how Azure-like the ARM emulator is: fast (default: operations end at once) or azure
 * (3 s rule operations, Retry-After 10 s, ARM's throttling; dev/arm/emulator.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEMO } from './arm/emulator';
import { API_APP, CLI_APP, DEMO_TENANT_ID } from './auth/directory';
import type { ArmEmulator, ArmProfile } from './arm/emulator';
import { DEMO_APPROVERS } from './demoPolicies';
import { SANDBOX_AUTH_MODES } from './auth/identity';
import type { SandboxAuthMode } from './auth/identity';
import { PROJECT_ROOT, Sandbox } from './sandbox';

function port(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === '') return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new Error(`${name} must be a port number, not "${v}"`);
  return n;
}

function authMode(): SandboxAuthMode {
  const v = process.env.JIT_SANDBOX_AUTH?.trim() || 'dev';
  if (!(SANDBOX_AUTH_MODES as readonly string[]).includes(v))
    throw new Error(`JIT_SANDBOX_AUTH must be one of ${SANDBOX_AUTH_MODES.join(', ')}, not "${v}"`);
  return v as SandboxAuthMode;
}

const ARM_PROFILES: readonly ArmProfile[] = ['fast', 'azure'];

function armProfile(): ArmProfile {
  const v = process.env.JIT_SANDBOX_ARM_PROFILE?.trim() || 'fast';
  if (!(ARM_PROFILES as readonly string[]).includes(v))
    throw new Error(`JIT_SANDBOX_ARM_PROFILE must be one of ${ARM_PROFILES.join(', ')}, not "${v}"`);
  return v as ArmProfile;
}

/** One line on how Azure-like the ARM emulator runs, from what it was really started with. */
function armBehaviour(profile: ArmProfile, b: ArmEmulator['behaviour']): string {
  return (
    `profile ${profile}: rule operations take ${b.operationLatencyInMs} ms, Retry-After ${b.operationRetryAfterInSeconds} s, ` +
    `ARM throttling ${b.throttled ? 'on' : 'off'} (JIT_SANDBOX_ARM_PROFILE=fast|azure)`
  );
}

async function main(): Promise<void> {
  const httpPort = port('JIT_SANDBOX_HTTP_PORT', 7071);
  const auth = authMode();
  const profile = armProfile();
  const storage = port('JIT_SANDBOX_STORAGE_PORT', 10000);
  const sandbox = new Sandbox({
    httpPort,
    armPort: port('JIT_SANDBOX_ARM_PORT', 8443),
    serviceBusPort: port('JIT_SANDBOX_SERVICEBUS_PORT', 5672),
    storagePorts: { blob: storage, queue: storage + 1, table: storage + 2 },
    storageLocation: process.env.JIT_SANDBOX_DATA_DIR || join(PROJECT_ROOT, '.sandbox', 'azurite'),
    smtpPort: port('JIT_SANDBOX_SMTP_PORT', 2525),
    mailWebPort: port('JIT_SANDBOX_MAIL_PORT', 8025),
    webhookPort: port('JIT_SANDBOX_WEBHOOK_PORT', 8026),
    quiet: false,
    auth,
    arm: { profile },
  });
  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    console.log('\nStopping the sandbox...');
    await sandbox.stop();
    console.log('Stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop());
  process.on('SIGTERM', () => void stop());
  await sandbox.start();

  const api = `http://127.0.0.1:${httpPort}/api`;
  const provider = sandbox.identity.provider;
  if (auth !== 'dev' && provider) {
    // The provider's certificate, for the jit command (another process) to trust: its HTTPS is Entra ID's.
    const ca = join('.sandbox', 'identity-ca.pem');
    mkdirSync(join(PROJECT_ROOT, '.sandbox'), { recursive: true });
    writeFileSync(join(PROJECT_ROOT, ca), provider.caPem);
    console.log(`
Sign-in: ${auth}. The local OpenID Connect provider at ${provider.issuer} signs in the demo
people of dev/auth/directory.ts (alice@example.com, approver@example.com, admin@example.com, …) with any password.
${auth === 'easyauth' ? `Browsers sign in at ${sandbox.baseUrl}/.auth/login/aad; scripts send a bearer token.` : 'Send a bearer token from the provider in the Authorization header.'}
The jit command signs in there as it does with Entra ID (docs/cli.md), in a shell with:
  export JIT_API_URL=${api} JIT_API_SCOPE=api://${API_APP.clientId}/.default JIT_TENANT_ID=${DEMO_TENANT_ID} \\
    JIT_CLIENT_ID=${CLI_APP.clientId} JIT_AUTHORITY_HOST=${provider.authorityHost} NODE_EXTRA_CA_CERTS=${ca}
  npm run jit -- login --use-device-code
The curl lines below use the dev header, which this mode ignores.`);
  }
  console.log(`
azure-jit-access sandbox is running (Ctrl-C stops it)

  API (local host)        ${api}
  ARM emulator (HTTPS)    ${sandbox.arm.endpoint}    NSG rules: ${sandbox.arm.endpoint}/_emulator/nsgs  (or: npm run rules)
                          ${armBehaviour(profile, sandbox.arm.behaviour)}
  Service Bus emulator    ${sandbox.serviceBus.connectionString}
  Azurite (storage)       tables :${sandbox.azurite.tablePort}, queues :${sandbox.azurite.queuePort}, blobs :${sandbox.azurite.blobPort}  (data in ${process.env.JIT_SANDBOX_DATA_DIR || '.sandbox/azurite'})
  Mail catcher            smtp://127.0.0.1:${sandbox.mail.smtpPort}    caught mail: ${sandbox.mail.webUrl ?? ''}
  Webhook catcher         Teams cards, Slack messages and signed webhooks: ${sandbox.webhooks.url}

Ask for SSH to the demo VM for five minutes from a documentation address:

  curl -s -X POST ${api}/requests \\
    -H 'content-type: application/json' -H 'x-jit-dev-user: alice@example.com' \\
    -d '{"vm":"${DEMO.linuxVm.id}","ports":[22],"sourcePrefix":"203.0.113.7/32","duration":"PT5M","justification":"try it"}'

Then follow it (the id is in the answer) and watch the rule appear and, after five minutes, go:

  curl -s ${api}/requests/<id> -H 'x-jit-dev-user: alice@example.com'
  npm run rules

RDP to demo-win needs an approver (${DEMO_APPROVERS.join(' or ')}). Ask, then open the caught mail at
${sandbox.mail.webUrl ?? ''} and follow its Approve link:

  curl -s -X POST ${api}/requests \\
    -H 'content-type: application/json' -H 'x-jit-dev-user: alice@example.com' \\
    -d '{"vm":"${DEMO.windowsVm.id}","ports":[3389],"sourcePrefix":"203.0.113.7/32","duration":"PT30M","justification":"patch night"}'
`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
