/**
 * Who the caller is, in the two production modes, against the sandbox's local OpenID Connect provider and its
 * App-Service-like front end (dev/auth/): principals keyed by tenant and object id, guests that cannot borrow a
 * member's name, apps that must be named, a platform whose enforcement is checked rather than assumed, and
 * approval links that work for an approver who is not signed in yet.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import { SANDBOX_SITE_ID } from '../../dev/auth/identity';
import { DEMO_APPS, DEMO_TENANT_ID, DEMO_USERS } from '../../dev/auth/directory';
import type { Sandbox } from '../../dev/sandbox';
import { resetServices } from '../../shared/composition';
import { TABLES } from '../../shared/names';
import { approvalMail, auditRows, formTokenIn, linkIn, vmWithPolicy } from '../support/approvals';
import { api, countRequests, startSandbox, waitFor } from '../support/sandbox';

const oid = (login: string) => DEMO_USERS.find((u) => u.login === login)!.oid;
const ALICE = 'alice@example.com';
const APPROVER = 'approver@example.com';
const GUEST = 'mallory@fabrikam.example';
const ssh = (sourcePrefix = '203.0.113.7') => ({
  vm: DEMO.linuxVm.id,
  ports: [22],
  duration: 'PT5M',
  sourcePrefix,
});

/** The admin's claims in a principal header the caller wrote: App Service strips such headers. */
const forgedPrincipal = Buffer.from(
  JSON.stringify({
    auth_typ: 'aad',
    claims: [
      { typ: 'tid', val: DEMO_TENANT_ID },
      { typ: 'oid', val: oid('admin@example.com') },
      { typ: 'roles', val: 'Jit.Admin' },
    ],
  }),
).toString('base64');
/** Every header a caller could send to pass for the admin. */
const FORGED_ADMIN: ReadonlyArray<Record<string, string>> = [
  { 'x-ms-client-principal': forgedPrincipal },
  { 'x-ms-client-principal': forgedPrincipal, 'x-ms-client-principal-id': oid('admin@example.com') },
  { 'x-jit-dev-user': 'admin@example.com', 'x-jit-dev-roles': 'Jit.Admin' },
];

/**
 * `GET /api/health` is App Service Authentication's excluded path, so anyone reaches the app there: whatever headers
 * they send, they see the status and version only, while the admin signed in as `admin` also sees each feature.
 */
async function healthShowsAdminDetailOnlyTo(sandbox: Sandbox, admin: Record<string, string>): Promise<void> {
  for (const headers of [{}, ...FORGED_ADMIN]) {
    const res = await api(sandbox, 'GET', 'health', undefined, null, headers);
    assert.equal(res.status, 200, JSON.stringify(headers));
    assert.equal(res.body.status, 'ok', JSON.stringify(headers));
    assert.equal(res.body.features, undefined, JSON.stringify(headers));
  }
  const signedIn = await api(sandbox, 'GET', 'health', undefined, null, admin);
  assert.equal(signedIn.status, 200);
  assert.equal(signedIn.body.features?.authentication?.ready, true, JSON.stringify(signedIn.body));
}

/** A page fetched as a browser with `cookie` would (no redirect followed). */
async function page(url: string, cookie?: string) {
  const res = await fetch(url, { redirect: 'manual', headers: cookie ? { cookie } : {} });
  return { status: res.status, location: res.headers.get('location'), text: await res.text() };
}

describe('easyauth: App Service Authentication in front of the app', () => {
  let sandbox: Sandbox;
  const sessions = new Map<string, string>();
  const as = async (login: string) => {
    if (!sessions.has(login)) sessions.set(login, await sandbox.identity.session(login));
    return { cookie: sessions.get(login)! };
  };

  /** Alice asks for RDP to demo-win, whose policy wants an approver: the request's id. */
  const askForRdp = async (sourcePrefix: string) => {
    const created = await api(
      sandbox,
      'POST',
      'requests',
      { vm: DEMO.windowsVm.id, ports: [3389], duration: 'PT30M', sourcePrefix, justification: 'patch night' },
      null,
      await as(ALICE),
    );
    assert.equal(created.status, 202, JSON.stringify(created.body));
    return created.body.id as string;
  };

  before(async () => {
    sandbox = await startSandbox({ auth: 'easyauth' });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('an API call without a session or token is a 401 from the platform, and a forged principal header is stripped', async () => {
    const before = await countRequests(sandbox);
    const anonymous = await api(sandbox, 'POST', 'requests', ssh(), null);
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.headers.get('www-authenticate') ?? '', /^Bearer realm=/);
    for (const headers of FORGED_ADMIN) {
      const res = await api(sandbox, 'GET', 'policies', undefined, null, headers);
      assert.equal(res.status, 401, JSON.stringify(headers));
    }
    // Signed in as Alice, the forged header does not make her an admin either: the platform replaces it.
    const alice = await as(ALICE);
    const mixed = await api(sandbox, 'GET', 'policies', undefined, null, {
      ...alice,
      ...FORGED_ADMIN[0],
    });
    assert.equal(mixed.status, 403);
    assert.equal(await countRequests(sandbox), before);
  });

  test('GET /api/health, open to anyone: no forged header shows the admin detail; the signed-in admin sees it', async () => {
    await healthShowsAdminDetailOnlyTo(sandbox, await as('admin@example.com'));
  });

  test('a signed-in person is keyed by tenant and object id; the audit records the id beside the name', async () => {
    const res = await api(sandbox, 'POST', 'requests', ssh('203.0.113.8'), null, await as(ALICE));
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.equal(res.body.requester, ALICE);
    assert.equal(res.body.requesterId, `${DEMO_TENANT_ID}/${oid(ALICE)}`);
    const [submitted] = await auditRows(sandbox, res.body.id as string);
    assert.equal(submitted?.actor, ALICE);
    assert.equal(submitted?.actorId, `${DEMO_TENANT_ID}/${oid(ALICE)}`);
    // The same person with a bearer token the platform validated is the same requester.
    const token = await sandbox.identity.userToken(ALICE);
    const mine = await api(sandbox, 'GET', 'requests', undefined, null, { authorization: `Bearer ${token}` });
    assert.equal(mine.status, 200);
    assert.ok(mine.body.items.some((r: { id: string }) => r.id === res.body.id));
  });

  test('an approver who is not signed in follows the mail link, signs in, lands on the page and approves', async () => {
    const id = await askForRdp('203.0.113.9');
    const { url } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    // Not signed in: sent to sign in, and back to this very link afterwards (not the bare 401 of Return401).
    const anonymous = await page(url);
    assert.equal(anonymous.status, 302);
    const signIn = new URL(anonymous.location!, sandbox.baseUrl);
    assert.equal(signIn.pathname, '/.auth/login/aad');
    const back = signIn.searchParams.get('post_login_redirect_uri')!;
    assert.equal(`${sandbox.baseUrl}${back}`, url.split('#')[0]);
    // Signed in: the page, with the decision form; the decision by form post makes the request live.
    const session = (await as(APPROVER)).cookie;
    const shown = await page(url, session);
    assert.equal(shown.status, 200, shown.text.slice(0, 300));
    const csrf = formTokenIn(shown.text)!;
    const token = new URL(url).searchParams.get('token')!;
    const decided = await fetch(`${sandbox.baseUrl}/api/approvals`, {
      method: 'POST',
      headers: {
        cookie: session,
        'content-type': 'application/x-www-form-urlencoded',
        origin: sandbox.baseUrl,
        'sec-fetch-site': 'same-origin',
      },
      body: new URLSearchParams({ token, csrf, decision: 'approve', comment: '' }).toString(),
    });
    assert.equal(decided.status, 200, (await decided.text()).slice(0, 300));
    await waitFor('the approved request to go live', async () => {
      const s = await api(sandbox, 'GET', `requests/${id}`, undefined, null, await as(ALICE));
      return s.body.status === 'active';
    });
    const approvedBy = (await auditRows(sandbox, id)).find((e) => e.action === 'approval.approved');
    assert.equal(approvedBy?.actor, APPROVER);
    assert.equal(approvedBy?.actorId, `${DEMO_TENANT_ID}/${oid(APPROVER)}`);
  });

  test('an anonymous decision is refused, and so is a form fetched by someone else', async () => {
    const id = await askForRdp('203.0.113.10');
    const { url, token } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    const csrf = formTokenIn((await page(url, (await as(APPROVER)).cookie)).text)!;
    const post = (cookie?: string) =>
      fetch(`${sandbox.baseUrl}/api/approvals`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
        body: new URLSearchParams({ token, csrf, decision: 'approve' }).toString(),
      });
    assert.equal((await post()).status, 401);
    // Another approver's session with the first approver's form: the form is bound to who it was shown to.
    assert.equal((await post((await as('approver2@example.com')).cookie)).status, 403);
    const s = await api(sandbox, 'GET', `requests/${id}`, undefined, null, await as(ALICE));
    assert.equal(s.body.status, 'pending-approval');
  });

  test('a guest whose mail address is the approver’s UPN cannot approve with the approver’s link', async () => {
    const id = await askForRdp('203.0.113.11');
    const { url } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    const shown = await page(url, (await as(GUEST)).cookie);
    assert.equal(shown.status, 403);
    assert.match(shown.text, /this link was sent to approver@example\.com, but you are signed in as/);
    assert.equal(formTokenIn(shown.text), undefined);
  });

  test('an app named by app:<client id> may ask; another app may not, not even where * may', async () => {
    const { vmId } = await vmWithPolicy(
      sandbox,
      'pipeline-vm',
      { mode: 'auto', approvers: [] },
      { requesters: [`app:${DEMO_APPS.pipeline.clientId}`] },
    );
    const pipeline = { authorization: `Bearer ${await sandbox.identity.appToken(DEMO_APPS.pipeline)}` };
    const stranger = { authorization: `Bearer ${await sandbox.identity.appToken(DEMO_APPS.stranger)}` };
    const body = { vm: vmId, ports: [22], duration: 'PT5M', sourcePrefix: '203.0.113.12' };
    const ok = await api(sandbox, 'POST', 'requests', body, null, pipeline);
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(ok.body.requester, `app:${DEMO_APPS.pipeline.clientId}`);
    assert.equal(ok.body.requesterId, `${DEMO_TENANT_ID}/${DEMO_APPS.pipeline.servicePrincipalId}`);
    assert.equal((await api(sandbox, 'POST', 'requests', body, null, stranger)).status, 403);
    // demo-rg's policy names '*', which means any person: an app-only token is no person.
    assert.equal((await api(sandbox, 'POST', 'requests', ssh('203.0.113.13'), null, stranger)).status, 403);
    assert.equal((await api(sandbox, 'POST', 'requests', ssh('203.0.113.13'), null, pipeline)).status, 403);
  });

  test('the app serves only while its own authsettingsV2 says authentication is required; health says degraded meanwhile', async () => {
    const healthy = sandbox.identity.settings!;
    const broken = [
      { ...healthy, platform: { enabled: false } },
      {
        ...healthy,
        globalValidation: { ...healthy.globalValidation, unauthenticatedClientAction: 'AllowAnonymous' },
      },
      {
        ...healthy,
        globalValidation: { ...healthy.globalValidation, excludedPaths: ['/api/approvals', '/api/requests'] },
      },
      {
        ...healthy,
        identityProviders: {
          azureActiveDirectory: {
            ...healthy.identityProviders.azureActiveDirectory,
            registration: { clientId: 'x', openIdIssuer: 'https://login.microsoftonline.com/common/v2.0' },
          },
        },
      },
    ];
    try {
      for (const settings of broken) {
        sandbox.arm.sites.setAuthSettings(SANDBOX_SITE_ID, { ...settings });
        // A new instance of the app: it checks before it serves.
        await resetServices();
        const res = await api(sandbox, 'GET', 'requests', undefined, null, await as(ALICE));
        assert.equal(res.status, 503, JSON.stringify(settings));
        assert.equal(res.body.title, 'Not serving');
        assert.match(res.body.detail, /App Service Authentication does not protect this app/);
        assert.ok(Number(res.headers.get('retry-after')) >= 1);
        // A probe sees the instance is not answering callers, though every setting is sound.
        const health = await api(sandbox, 'GET', 'health', undefined, null);
        assert.equal(health.body.status, 'degraded', JSON.stringify(settings));
      }
    } finally {
      sandbox.arm.sites.setAuthSettings(SANDBOX_SITE_ID, { ...healthy });
      await resetServices();
    }
    assert.equal((await api(sandbox, 'GET', 'requests', undefined, null, await as(ALICE))).status, 200);
    assert.equal((await api(sandbox, 'GET', 'health', undefined, null)).body.status, 'ok');
  });
});

describe('jwt: bearer tokens validated by the app', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ auth: 'jwt' });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a person’s v2 token is accepted and keyed by tenant and object id; an unnamed app’s is refused', async () => {
    const alice = { authorization: `Bearer ${await sandbox.identity.userToken(ALICE)}` };
    const ok = await api(sandbox, 'POST', 'requests', ssh('203.0.113.20'), null, alice);
    assert.equal(ok.status, 202, JSON.stringify(ok.body));
    assert.equal(ok.body.requesterId, `${DEMO_TENANT_ID}/${oid(ALICE)}`);
    const before = await countRequests(sandbox);
    const app = { authorization: `Bearer ${await sandbox.identity.appToken(DEMO_APPS.stranger)}` };
    const refused = await api(sandbox, 'POST', 'requests', ssh('203.0.113.21'), null, app);
    assert.equal(refused.status, 403);
    assert.equal(await countRequests(sandbox), before);
  });

  test('GET /api/health: no forged header shows the admin detail; the admin’s token does', async () => {
    const token = await sandbox.identity.userToken('admin@example.com');
    await healthShowsAdminDetailOnlyTo(sandbox, { authorization: `Bearer ${token}` });
  });

  test('manual approval is refused, with the reason, when applied and when found at start-up; pages say why', async () => {
    const admin = { authorization: `Bearer ${await sandbox.identity.userToken('admin@example.com')}` };
    const doc = {
      policies: [
        {
          scope: '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/demo-rg',
          ports: [{ port: 22, maxDuration: 'PT1H' }],
          allowedSourcePrefixes: ['my-ip'],
          requesters: ['*'],
          approval: { mode: 'manual', approvers: ['user:approver@example.com'] },
        },
      ],
    };
    const applied = await api(sandbox, 'PUT', 'policies', doc, null, admin);
    assert.equal(applied.status, 400);
    assert.equal(applied.body.errors[0].rule, 'manual-approval-unavailable');
    assert.match(applied.body.errors[0].reason, /jwt mode has no browser sign-in/);

    // A manual policy already stored (written before the switch to jwt): the app refuses to serve, saying why.
    await vmWithPolicy(sandbox, 'legacy-manual', { approvers: ['user:approver@example.com'] });
    await resetServices();
    try {
      const res = await api(sandbox, 'GET', 'requests', undefined, null, admin);
      assert.equal(res.status, 503);
      assert.match(
        res.body.detail,
        /asks for manual approval, but manual approval needs approvers to sign in/,
      );
      const approvalPage = await fetch(`${sandbox.baseUrl}/api/approvals?token=x`);
      assert.equal(approvalPage.status, 503);
    } finally {
      await sandbox
        .table(TABLES.policies)
        .deleteEntity(...((await findPolicyKeys(sandbox, 'legacy-manual')) as [string, string]));
      await resetServices();
    }
    const page = await fetch(`${sandbox.baseUrl}/api/approvals?token=x`);
    assert.equal(page.status, 403);
    assert.match(await page.text(), /approval pages are not available/);
  });
});

async function findPolicyKeys(sandbox: Sandbox, vmName: string): Promise<[string, string] | undefined> {
  for await (const e of sandbox.table(TABLES.policies).listEntities())
    if (JSON.stringify(e).toLowerCase().includes(`virtualmachines/${vmName}`))
      return [e.partitionKey as string, e.rowKey as string];
  return undefined;
}
