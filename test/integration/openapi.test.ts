/**
 * openapi.yaml is the contract: this test calls every route on the sandbox, on its success and error paths, and
 * checks each answer (status, content type, body, required headers) against the document. It also checks that
 * the routes the app serves and the routes the document describes are the same set — a route added without
 * being documented fails here (see docs/api.md).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { declaredFunctions } from '../../shared/hosting/declare';
import type { HttpFunction } from '../../shared/hosting/declare';
import { OpenApiChecker } from '../support/openapi';
import { api, startSandbox, waitFor } from '../support/sandbox';
import type { ApiResponse } from '../support/sandbox';

const VM = DEMO.linuxVm.id;

describe('the API as openapi.yaml describes it', () => {
  let sandbox: Sandbox;
  const spec = new OpenApiChecker();

  /** Calls a documented operation and checks the answer against the document. */
  async function call(
    method: string,
    template: string,
    options: {
      id?: string;
      query?: Record<string, string>;
      body?: unknown;
      user?: string | null;
      headers?: Record<string, string>;
    } = {},
  ): Promise<ApiResponse> {
    let path = template.replace('{id}', encodeURIComponent(options.id ?? ''));
    if (options.query) path += `?${new URLSearchParams(options.query).toString()}`;
    const res = await api(
      sandbox,
      method,
      path,
      options.body,
      options.user === undefined ? 'alice@example.com' : options.user,
      options.headers,
    );
    spec.check(method, template, res);
    return res;
  }

  before(async () => {
    sandbox = await startSandbox();
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

  test('every route answers as documented, on success and on error', async () => {
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
    assert.equal((await call('POST', '/requests', { body: { ...newRequest, ports: [0] } })).status, 400);
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
    const auditor = { user: 'carol@example.com', headers: { 'x-jit-dev-roles': 'Jit.Auditor' } };
    assert.equal((await call('POST', '/requests/{id}/revoke', { id, ...auditor })).status, 403);
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
    assert.equal((await call('POST', '/requests/{id}/revoke', { id: short.body.id })).status, 409);

    // Health: anyone sees the status and version; an admin also sees every feature (all ready in a healthy sandbox).
    const health = await call('GET', '/health', { user: null });
    assert.equal(health.status, 200);
    assert.equal(health.body.status, 'ok');
    assert.equal(health.body.features, undefined);
    const detail = await call('GET', '/health', {
      user: 'ops@example.com',
      headers: { 'x-jit-dev-roles': 'Jit.Admin' },
    });
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

    // Every documented answer of the request routes was seen, but for those a healthy sandbox cannot give.
    // The policy, approval and audit routes are documented (the route check above holds them to it) and tested in their
    // own suites; checking their every answer against the spec here is still to do (noted on the issue).
    const notYetConformanceTested = ['/policies', '/approvals', '/audit'];
    assert.deepEqual(
      spec
        .unexercised(['500', '503'])
        .filter((r) => !notYetConformanceTested.some((p) => r.includes(` ${p}`))),
      [],
    );
  });
});
