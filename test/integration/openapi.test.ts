/**
 * openapi.yaml is the contract: this test calls every operation on the sandbox, on its success path and on each
 * error a caller can provoke, and checks each answer (status, content type, body, required headers) against the
 * document. It also checks that the routes the app serves and the routes the document describes are the same set,
 * and, last, that no documented operation or answer went unseen — a route or an answer added without being called
 * here fails (see docs/api.md).
 *
 * Two sandboxes, one after the other (a process holds one in-process host): `dev` mode for everything the app
 * answers itself, and `easyauth` mode for what App Service Authentication in front of it answers as deployed.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { declaredFunctions } from '../../shared/hosting/declare';
import type { HttpFunction } from '../../shared/hosting/declare';
import { approvalMail, formTokenIn, linkIn, sandboxTokens } from '../support/approvals';
import { OpenApiChecker } from '../support/openapi';
import { startSandbox, waitFor } from '../support/sandbox';
import type { ApiResponse } from '../support/sandbox';

const VM = DEMO.linuxVm.id;
const ALICE = 'alice@example.com';
const APPROVER = 'approver@example.com';
const ADMIN = { user: 'ops@example.com', headers: { 'x-jit-dev-roles': 'Jit.Admin' } };
const AUDITOR = { user: 'carol@example.com', headers: { 'x-jit-dev-roles': 'Jit.Auditor' } };
/** Calls of one kind one caller may make a minute here: low enough to reach, high enough for the calls below. */
const LIMIT = 20;
/** A scope no demo policy has: the policy these tests add, change and remove. */
const CONFORMANCE_SCOPE = '/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/conformance-rg';
/** The demo resource group, whose policy covers the demo VMs. */
const DEMO_RG = `/subscriptions/${DEMO.subscriptionId}/resourceGroups/${DEMO.resourceGroup}`;
/** A request id nobody has. */
const NO_SUCH_REQUEST = '01NOSUCHREQUEST';

/** Every answer is checked against openapi.yaml as it arrives; the last test asks what was never seen. */
const spec = new OpenApiChecker();

interface CallOptions {
  id?: string;
  query?: Record<string, string>;
  /** Sent as JSON, or as is when a string with its own `content-type` header. */
  body?: unknown;
  /** The dev-mode user (`x-jit-dev-user`); null for nobody. Default alice. */
  user?: string | null;
  headers?: Record<string, string>;
}

/**
 * Calls a documented operation on `baseUrl` and checks the answer against the document. Redirects are not
 * followed: a 302 is an answer of its own.
 */
async function send(
  baseUrl: string,
  method: string,
  template: string,
  options: CallOptions = {},
): Promise<ApiResponse> {
  let path = template.replace('{id}', encodeURIComponent(options.id ?? ''));
  if (options.query) path += `?${new URLSearchParams(options.query).toString()}`;
  const user = options.user === undefined ? ALICE : options.user;
  const raw = typeof options.body === 'string';
  const res = await fetch(`${baseUrl}/api${path}`, {
    method,
    redirect: 'manual',
    headers: {
      ...(options.body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
      ...(user ? { 'x-jit-dev-user': user } : {}),
      ...options.headers,
    },
    body:
      options.body === undefined ? undefined : raw ? (options.body as string) : JSON.stringify(options.body),
  });
  const text = await res.text();
  let body: unknown = text || undefined;
  if (text && /json/.test(res.headers.get('content-type') ?? '')) body = JSON.parse(text);
  const answer = { status: res.status, headers: res.headers, body };
  spec.check(method, template, answer);
  return answer;
}

/** A form post of the approval page, as the browser sends it. */
const form = (fields: Record<string, string>) => ({
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
});

describe('the API as openapi.yaml describes it (dev mode)', () => {
  let sandbox: Sandbox;
  const call = (method: string, template: string, options?: CallOptions) =>
    send(sandbox.baseUrl, method, template, options);

  before(async () => {
    sandbox = await startSandbox({
      settings: {
        JIT_RATE_LIMIT_PER_MINUTE: String(LIMIT),
        JIT_APPROVAL_ATTEMPTS_PER_MINUTE: String(LIMIT),
      },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('the routes served are exactly the routes documented', () => {
    const served = declaredFunctions()
      .filter((f): f is HttpFunction => f.trigger.type === 'http')
      .flatMap((f) => f.trigger.methods.map((m) => `${m.toUpperCase()} /${f.trigger.route}`))
      .sort();
    assert.ok(served.length > 0, 'the local host loaded the functions');
    assert.deepEqual(served, spec.operations(), 'openapi.yaml paths vs declared HTTP functions');
  });

  test('every documented answer is a well-formed Response Object', () => {
    // A YAML slip (a comma in a plain scalar inside a flow mapping) turns half a description into a key.
    const allowed = new Set(['description', 'headers', 'content', 'links', '$ref']);
    for (const op of spec.operations()) {
      const [method, path] = op.split(' ') as [string, string];
      const responses = spec.doc.paths[path][method.toLowerCase()].responses as Record<string, object>;
      for (const [status, answer] of Object.entries(responses)) {
        const keys = Object.keys(answer);
        assert.deepEqual(
          keys.filter((k) => !allowed.has(k)),
          [],
          `${op} ${status}: unknown keys`,
        );
        if (!('$ref' in answer))
          assert.equal(typeof (answer as { description?: unknown }).description, 'string', `${op} ${status}`);
      }
    }
  });

  test('the request routes, on success and on error', async () => {
    const newRequest = {
      vm: VM,
      ports: [22],
      duration: 'PT10M',
      sourcePrefix: '203.0.113.50',
      justification: 'conformance',
    };
    spec.checkRequestBody('POST', '/requests', newRequest);
    spec.checkRequestBody('POST', '/requests', {
      ...newRequest,
      startAt: new Date(Date.now() + 3600_000).toISOString(),
    });
    spec.checkRequestBody('POST', '/requests/{id}/extend', { duration: 'PT5M' });

    // POST /requests
    const created = await call('POST', '/requests', { body: newRequest });
    assert.equal(created.status, 202);
    const id = created.body.id as string;
    const invalid = await call('POST', '/requests', { body: { ...newRequest, ports: [0] } });
    assert.equal(invalid.status, 400);
    assert.equal(invalid.body.errors[0].field, 'ports[0]');
    assert.equal((await call('POST', '/requests', { body: newRequest, user: null })).status, 401);
    assert.equal((await call('POST', '/requests', { body: { ...newRequest, ports: [5432] } })).status, 403);
    // A VM with no NSG in front of it: there is no rule to open (422, before anything is written).
    sandbox.arm.addVm({
      resourceGroup: DEMO.resourceGroup,
      name: 'bare-vm',
      nics: [
        {
          name: 'bare-vm-nic',
          ipConfigurations: [
            {
              privateIpAddress: '10.0.10.4',
              subnet: { vnet: 'demo-vnet', name: 'bare', addressPrefix: '10.0.10.0/24' },
            },
          ],
        },
      ],
    });
    const bare = VM.replace(/demo-vm$/, 'bare-vm');
    assert.equal((await call('POST', '/requests', { body: { ...newRequest, vm: bare } })).status, 422);
    const later = await call('POST', '/requests', {
      body: { ...newRequest, startAt: new Date(Date.now() + 3600_000).toISOString() },
    });
    assert.equal(later.status, 202);

    // GET /requests/{id}, while it moves through its states
    await waitFor(
      'active',
      async () => (await call('GET', '/requests/{id}', { id })).body.status === 'active',
    );
    await waitFor(
      'scheduled',
      async () => (await call('GET', '/requests/{id}', { id: later.body.id })).body.status === 'scheduled',
    );
    assert.equal((await call('GET', '/requests/{id}', { id, user: 'mallory@example.com' })).status, 404);
    assert.equal((await call('GET', '/requests/{id}', { id, user: null })).status, 401);

    // GET /requests
    const page = await call('GET', '/requests', { query: { limit: '1' } });
    assert.equal(page.status, 200);
    assert.ok(page.body.continuationToken);
    assert.equal(
      (
        await call('GET', '/requests', {
          query: { continuationToken: page.body.continuationToken, status: 'active' },
        })
      ).status,
      200,
    );
    assert.equal((await call('GET', '/requests', { query: { limit: '1000' } })).status, 400);
    assert.equal((await call('GET', '/requests', { query: { requester: 'bob@example.com' } })).status, 403);
    assert.equal((await call('GET', '/requests', { user: null })).status, 401);

    // POST /requests/{id}/extend
    assert.equal(
      (await call('POST', '/requests/{id}/extend', { id, body: { duration: 'PT5M' } })).status,
      200,
    );
    assert.equal(
      (await call('POST', '/requests/{id}/extend', { id, body: { duration: 'later' } })).status,
      400,
    );
    assert.equal(
      (await call('POST', '/requests/{id}/extend', { id, body: { duration: 'PT5H' } })).status,
      403,
    );
    assert.equal(
      (
        await call('POST', '/requests/{id}/extend', {
          id,
          body: { duration: 'PT5M' },
          user: 'mallory@example.com',
        })
      ).status,
      404,
    );
    assert.equal(
      (await call('POST', '/requests/{id}/extend', { id: later.body.id, body: { duration: 'PT5M' } })).status,
      409,
    );
    assert.equal(
      (await call('POST', '/requests/{id}/extend', { id, body: { duration: 'PT5M' }, user: null })).status,
      401,
    );

    // POST /requests/{id}/revoke
    assert.equal((await call('POST', '/requests/{id}/revoke', { id, ...AUDITOR })).status, 403);
    assert.equal((await call('POST', '/requests/{id}/revoke', { id })).status, 200);
    assert.equal((await call('POST', '/requests/{id}/revoke', { id })).status, 200, 'idempotent');
    assert.equal((await call('POST', '/requests/{id}/revoke', { id: later.body.id })).status, 200);
    assert.equal(
      (await call('POST', '/requests/{id}/revoke', { id, user: 'mallory@example.com' })).status,
      404,
    );
    assert.equal((await call('POST', '/requests/{id}/revoke', { id, user: null })).status, 401);
    const short = await call('POST', '/requests', { body: { ...newRequest, duration: 'PT2S' } });
    await waitFor(
      'expired',
      async () => (await call('GET', '/requests/{id}', { id: short.body.id })).body.status === 'expired',
    );
    const ended = await call('POST', '/requests/{id}/revoke', { id: short.body.id });
    assert.equal(ended.status, 409);
    assert.equal(ended.body.requestStatus, 'expired');
  });

  test('GET /health: the status to anyone, every feature to an admin', async () => {
    const health = await call('GET', '/health', { user: null });
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.features, undefined);
    const detail = await call('GET', '/health', ADMIN);
    // Every feature the configuration knows, each ready in a healthy sandbox.
    const ready = { ready: true };
    assert.deepEqual(detail.body.features, {
      authentication: ready,
      approval: ready,
      mail: ready,
      requests: ready,
      telemetry: ready,
      notifications: ready,
      auditAnchors: ready,
    });
  });

  test('the policy routes: read, explain, apply and delete, on success and on error', async () => {
    // GET /policies: the document, as JSON or YAML, or one entry.
    const current = await call('GET', '/policies', ADMIN);
    assert.equal(current.status, 200);
    const original = current.body as { policies: Array<{ scope: string }> };
    assert.ok(original.policies.some((p) => p.scope === DEMO_RG.toLowerCase()));
    const yaml = await call('GET', '/policies', {
      ...ADMIN,
      headers: { ...ADMIN.headers, accept: 'application/yaml' },
    });
    assert.equal(yaml.status, 200);
    assert.match(yaml.body, /^policies:/m);
    const one = await call('GET', '/policies', { ...ADMIN, query: { scope: DEMO_RG } });
    assert.equal(one.body.scope, DEMO_RG.toLowerCase());
    const blank = await call('GET', '/policies', { ...ADMIN, query: { scope: '' } });
    assert.equal(blank.status, 400);
    assert.deepEqual(blank.body.errors, [{ field: 'scope', reason: 'is required' }]);
    assert.equal(
      (await call('GET', '/policies', { ...ADMIN, query: { scope: CONFORMANCE_SCOPE } })).status,
      404,
    );
    assert.equal((await call('GET', '/policies')).status, 403, 'admins only');
    assert.equal((await call('GET', '/policies', { user: null })).status, 401);

    // GET /policies/explain
    const explained = await call('GET', '/policies/explain', { query: { vm: VM, port: '22' } });
    assert.equal(explained.status, 200);
    assert.equal(explained.body.callerIsRequester, true);
    assert.equal(explained.body.port.allowed, true);
    assert.equal((await call('GET', '/policies/explain', { ...ADMIN, query: { vm: VM } })).status, 200);
    const badVm = await call('GET', '/policies/explain', { query: { vm: 'demo-vm' } });
    assert.equal(badVm.status, 400);
    assert.equal(badVm.body.errors[0].field, 'vm');
    const uncovered = VM.replace(DEMO.subscriptionId, '00000000-0000-0000-0000-00000000beef');
    assert.equal((await call('GET', '/policies/explain', { query: { vm: uncovered } })).status, 403);
    assert.equal((await call('GET', '/policies/explain', { query: { vm: VM }, user: null })).status, 401);

    // PUT /policies: a dry run (JSON), then for real (YAML), then again (nothing to do).
    const added = {
      scope: CONFORMANCE_SCOPE,
      description: 'conformance',
      ports: [{ port: 22, protocol: 'Tcp', maxDuration: 'PT1H' }],
      allowedSourcePrefixes: ['203.0.113.0/24'],
      requesters: ['*'],
      approval: { mode: 'auto' },
    };
    const withAdded = { policies: [...original.policies, added] };
    spec.checkRequestBody('PUT', '/policies', withAdded);
    const dry = await call('PUT', '/policies', { ...ADMIN, query: { dryRun: 'true' }, body: withAdded });
    assert.equal(dry.status, 200);
    assert.equal(dry.body.dryRun, true);
    assert.deepEqual(
      dry.body.added.map((p: { scope: string }) => p.scope),
      [CONFORMANCE_SCOPE.toLowerCase()],
    );
    assert.equal(
      (await call('GET', '/policies', { ...ADMIN, query: { scope: CONFORMANCE_SCOPE } })).status,
      404,
    );
    const asYaml = { ...ADMIN, headers: { ...ADMIN.headers, 'content-type': 'application/yaml' } };
    const applied = await call('PUT', '/policies', { ...asYaml, body: yamlWith(yaml.body as string, added) });
    assert.equal(applied.status, 200);
    assert.equal(applied.body.added.length, 1);
    const again = await call('PUT', '/policies', { ...ADMIN, body: withAdded });
    assert.deepEqual([again.body.added, again.body.changed, again.body.removed], [[], [], []]);

    // Mistakes: every problem with its line, column and rule; nothing applied.
    const broken = await call('PUT', '/policies', {
      ...asYaml,
      body: `policies:\n  - scope: ${CONFORMANCE_SCOPE}\n    ports: [{ port: 22, maxDuration: PT1H }]\n    allowedSourcePrefixes: [my-ip]\n    requesters: ['*']\n    colour: blue\n`,
    });
    assert.equal(broken.status, 400);
    assert.match(broken.body.type, /#policydocumentinvalid$/);
    assert.ok(
      broken.body.errors.some(
        (e: { line: number; rule: string; source: string }) =>
          e.line === 6 && e.rule === 'unknown-field' && e.source === '(body)',
      ),
      JSON.stringify(broken.body.errors),
    );
    const notJson = await call('PUT', '/policies', {
      ...ADMIN,
      headers: { ...ADMIN.headers, 'content-type': 'text/plain' },
      body: 'policies: []',
    });
    assert.equal(notJson.status, 400);
    assert.equal(notJson.body.errors[0].field, '(body)');
    assert.equal(
      (await call('PUT', '/policies', { ...ADMIN, query: { dryRun: 'maybe' }, body: withAdded })).status,
      400,
    );
    assert.equal((await call('PUT', '/policies', { body: withAdded })).status, 403);
    assert.equal((await call('PUT', '/policies', { body: withAdded, user: null })).status, 401);

    // Two administrators apply at once: the set is changed conditionally, so one of them is told to try again.
    // (Whether the two reads overlap is the scheduler's business: a few tries make it near certain.)
    let conflict: ApiResponse | undefined;
    for (let round = 0; round < 10 && !conflict; round++) {
      const answers = await Promise.all(
        ['a', 'b'].map((who) =>
          call('PUT', '/policies', {
            ...ADMIN,
            body: { policies: [...original.policies, { ...added, description: `race ${round}${who}` }] },
          }),
        ),
      );
      conflict = answers.find((a) => a.status === 409);
      assert.ok(
        answers.some((a) => a.status === 200),
        'one of the two is applied',
      );
    }
    assert.ok(conflict, 'two applies at once: one answers 409');
    assert.match(conflict.body.type, /#concurrencyconflict$/);

    // DELETE /policies
    const scope = { scope: CONFORMANCE_SCOPE };
    const dryDelete = await call('DELETE', '/policies', { ...ADMIN, query: { ...scope, dryRun: 'true' } });
    assert.equal(dryDelete.status, 200);
    assert.equal(dryDelete.body.removed[0].scope, CONFORMANCE_SCOPE.toLowerCase());
    assert.equal((await call('GET', '/policies', { ...ADMIN, query: scope })).status, 200, 'still there');
    assert.equal((await call('DELETE', '/policies', { ...ADMIN, query: { scope: '' } })).status, 400);
    assert.equal((await call('DELETE', '/policies', { query: scope })).status, 403);
    assert.equal((await call('DELETE', '/policies', { query: scope, user: null })).status, 401);
    // Two administrators delete the same policy at once: one deletes it, the other is told it changed meanwhile
    // (or, when the first was quicker, that it is gone).
    let deleteConflict: ApiResponse | undefined;
    for (let round = 0; round < 10 && !deleteConflict; round++) {
      if (round > 0) await call('PUT', '/policies', { ...ADMIN, body: withAdded });
      const answers = await Promise.all(
        [0, 1].map(() => call('DELETE', '/policies', { ...ADMIN, query: scope })),
      );
      assert.equal(answers.filter((a) => a.status === 200).length, 1, 'one of the two deletes it');
      deleteConflict = answers.find((a) => a.status === 409);
    }
    assert.ok(deleteConflict, 'two deletes at once: one answers 409');
    const gone = await call('DELETE', '/policies', { ...ADMIN, query: scope });
    assert.equal(gone.status, 404);
    assert.match(gone.body.type, /#policynotfound$/);
    const restored = await call('GET', '/policies', ADMIN);
    assert.deepEqual(restored.body, original, 'the set is as it was');
  });

  test('the approval pages: the link, the decision, and every refusal', async () => {
    const asked = await call('POST', '/requests', {
      body: {
        vm: DEMO.windowsVm.id,
        ports: [3389],
        duration: 'PT30M',
        sourcePrefix: '203.0.113.51',
        justification: 'conformance',
      },
    });
    assert.equal(asked.status, 202);
    const id = asked.body.id as string;
    const { token } = linkIn(await approvalMail(sandbox, APPROVER, id), 'approve');
    const page = (t: string, options: CallOptions = {}) =>
      call('GET', '/approvals', { user: null, query: { token: t }, ...options });
    const decide = (fields: Record<string, string>, options: CallOptions = {}) =>
      call('POST', '/approvals', { user: null, ...form(fields), ...options });

    // GET: the page, whose form carries the form token a decision needs.
    const shown = await page(token);
    assert.equal(shown.status, 200);
    const csrf = formTokenIn(shown.body);
    assert.ok(csrf, 'the page offers a decision');
    assert.equal((await page('not-a-link')).status, 400);
    assert.equal(
      (await page(token, { user: 'mallory@example.com' })).status,
      403,
      'signed in as someone else',
    );
    const tokens = sandboxTokens(sandbox);
    const expired = await tokens.issue(
      { requestId: id, approver: `user:${APPROVER}` },
      new Date(Date.now() - 60_000),
    );
    assert.equal((await page(expired)).status, 410);
    // The sandbox's dev mode answers this machine only: nobody elsewhere can be the person on the page.
    const elsewhere = { headers: { 'x-forwarded-for': '203.0.113.9' } };
    assert.equal((await page(token, elsewhere)).status, 401);

    // POST: every refusal first, then the decision, then the same decision again.
    const fields = { token, csrf: csrf, decision: 'approve', comment: 'fine' };
    assert.equal((await decide({ ...fields, token: 'not-a-link' })).status, 400);
    assert.equal((await decide({ ...fields, decision: 'maybe' })).status, 400);
    assert.equal(
      (await call('POST', '/approvals', { user: null, body: JSON.stringify(fields) })).status,
      400,
      'a form, not JSON',
    );
    assert.equal((await decide(fields, { headers: { origin: 'https://evil.example' } })).status, 403);
    assert.equal((await decide({ ...fields, token: expired })).status, 410);
    assert.equal((await decide(fields, elsewhere)).status, 401);
    const decided = await decide(fields);
    assert.equal(decided.status, 200);
    assert.match(decided.body, /You approved the request/);
    assert.equal((await decide(fields)).status, 409, 'a link is good for one decision');
    // The page still opens, to say how the request was settled, and offers no form.
    const settled = await page(token);
    assert.equal(settled.status, 200);
    assert.equal(formTokenIn(settled.body), undefined);
    await waitFor('the approved request to go live', async () => {
      const r = await call('GET', '/requests/{id}', { id });
      return r.body.status === 'active';
    });
  });

  test('the audit routes: a page of events, verification, and refusals', async () => {
    const first = await call('GET', '/audit', { ...AUDITOR, query: { pageSize: '2' } });
    assert.equal(first.status, 200);
    assert.equal(first.body.items.length, 2);
    assert.ok(first.body.continuationToken);
    const next = await call('GET', '/audit', {
      ...AUDITOR,
      query: { pageSize: '2', continuationToken: first.body.continuationToken },
    });
    assert.equal(next.status, 200);
    const mine = await call('GET', '/audit', { ...ADMIN, query: { actor: ALICE, pageSize: '5' } });
    assert.ok(mine.body.items.length > 0);
    assert.ok(mine.body.items.every((e: { actor: string }) => e.actor === ALICE));
    const typo = await call('GET', '/audit', { ...AUDITOR, query: { pagesize: '2' } });
    assert.equal(typo.status, 400);
    assert.deepEqual(typo.body.errors, [{ field: 'pagesize', reason: 'is not a known parameter' }]);
    assert.equal((await call('GET', '/audit')).status, 403, 'auditors and admins only');
    assert.equal((await call('GET', '/audit', { user: null })).status, 401);

    const today = new Date().toISOString().slice(0, 10);
    const verified = await call('GET', '/audit/verify', { ...AUDITOR, query: { from: today } });
    assert.equal(verified.status, 200);
    assert.equal(verified.body.ok, true);
    assert.ok(verified.body.events > 0);
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
    assert.equal(
      (await call('GET', '/audit/verify', { ...AUDITOR, query: { from: today, to: tomorrow } })).status,
      200,
    );
    const noFrom = await call('GET', '/audit/verify', AUDITOR);
    assert.equal(noFrom.status, 400);
    assert.deepEqual(noFrom.body.errors, [{ field: 'from', reason: 'is required' }]);
    assert.equal((await call('GET', '/audit/verify', { query: { from: today } })).status, 403);
    assert.equal((await call('GET', '/audit/verify', { query: { from: today }, user: null })).status, 401);
  });

  test('every route that counts calls answers 429 with Retry-After past the limit, per caller and kind', async () => {
    /** Calls until the limit refuses, as one caller whose calls count nowhere else. */
    async function exhaust(what: string, one: () => Promise<ApiResponse>): Promise<void> {
      for (let i = 1; i <= LIMIT; i++) assert.notEqual((await one()).status, 429, `${what}: call ${i}`);
      const limited = await one();
      assert.equal(limited.status, 429, what);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1, what);
    }
    const flood = (kind: string, extra: Record<string, string> = {}) => ({
      user: `flood-${kind}@example.com`,
      headers: extra,
    });
    const admin = (kind: string) => flood(kind, ADMIN.headers);
    const auditor = (kind: string) => flood(kind, AUDITOR.headers);
    const nothing = { id: NO_SUCH_REQUEST };
    await exhaust('submit', () => call('POST', '/requests', { ...flood('submit'), body: {} }));
    await exhaust('extend', () =>
      call('POST', '/requests/{id}/extend', { ...nothing, ...flood('extend'), body: { duration: 'PT1M' } }),
    );
    await exhaust('revoke', () => call('POST', '/requests/{id}/revoke', { ...nothing, ...flood('revoke') }));
    await exhaust('apply', () => call('PUT', '/policies', { ...admin('apply'), body: { policies: 7 } }));
    await exhaust('delete', () =>
      call('DELETE', '/policies', { ...admin('delete'), query: { scope: CONFORMANCE_SCOPE } }),
    );
    await exhaust('audit', () => call('GET', '/audit', { ...auditor('audit'), query: { pageSize: '1' } }));
    await exhaust('verify', () => call('GET', '/audit/verify', auditor('verify')));
    // Decisions: one person at one address, counted before the link is even looked at.
    await exhaust('decide', () =>
      call('POST', '/approvals', {
        ...flood('decide'),
        ...form({ token: 'x', csrf: 'x', decision: 'approve' }),
      }),
    );
  });
});

describe('the API as openapi.yaml describes it, behind App Service Authentication (easyauth)', () => {
  let sandbox: Sandbox;
  const call = (method: string, template: string, options?: CallOptions) =>
    send(sandbox.baseUrl, method, template, { user: null, ...options });

  before(async () => {
    sandbox = await startSandbox({ auth: 'easyauth' });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a call without a valid token is refused by the platform, before the app, on every route that needs one', async () => {
    const open = ['/approvals', '/health'];
    for (const op of spec.operations()) {
      const [method, path] = op.split(' ') as [string, string];
      if (open.includes(path)) continue;
      for (const headers of [{}, { authorization: 'Bearer not-a-token' }] as Array<Record<string, string>>) {
        const refused = await call(method, path, { id: NO_SUCH_REQUEST, headers });
        assert.equal(refused.status, 401, op);
        assert.match(refused.headers.get('www-authenticate') ?? '', /^Bearer /, op);
      }
    }
  });

  test('the approval link sends a browser nobody is signed in on to sign in; a decision needs someone signed in', async () => {
    const link = await call('GET', '/approvals', { query: { token: 'any' } });
    assert.equal(link.status, 302);
    const to = new URL(link.headers.get('location')!);
    assert.equal(to.pathname, '/.auth/login/aad');
    assert.equal(to.searchParams.get('post_login_redirect_uri'), '/api/approvals?token=any');
    const decision = await call(
      'POST',
      '/approvals',
      form({ token: 'any', csrf: 'any', decision: 'approve' }),
    );
    assert.equal(decision.status, 401);
    assert.match(decision.body, /sign in/i);
  });
});

test('every documented operation was called, and every documented answer seen, but for 500 and 503', () => {
  assert.deepEqual(
    spec.unexercisedOperations(),
    [],
    'operations openapi.yaml documents that were never called',
  );
  // 500 is a fault of the app's, which no caller can provoke; 503 needs a broken setting or an unreachable
  // dependency (test/integration/features.test.ts checks those answers against the document).
  assert.deepEqual(spec.unexercised(['500', '503']), [], 'documented answers never seen');
});

/** The YAML document with one more policy appended (as a person adds one to the file). */
function yamlWith(document: string, policy: Record<string, unknown>): string {
  return `${document.trimEnd()}\n  - ${JSON.stringify(policy)}\n`;
}
