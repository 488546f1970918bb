/**
 * Failure modes the soak (bench/soak.ts) found, each pinned down as a deterministic sequence on the sandbox.
 * They live in shared/usecases, whose owners are changing that code; until their fixes land these tests are
 * marked `todo` (they run and report, but do not fail `npm test`). Remove the `todo` once a fix lands: the test
 * then guards it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import { TABLES } from '../../shared/names';
import { reconcile } from '../../shared/usecases/reconcile';
import { AUTO_POLICIES, api, sleep, startSandbox, waitFor } from '../support/sandbox';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

async function auditActions(sandbox: Sandbox, requestId: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of sandbox
    .table(TABLES.audit)
    .listEntities<{ action: string }>({ queryOptions: { filter: odata`requestId eq ${requestId}` } }))
    out.push(e.action);
  return out;
}

/** Creates a table again after a test took it away (Azurite allows it at once). */
async function recreate(sandbox: Sandbox, table: string): Promise<void> {
  await waitFor(`table ${table} to be back`, async () => {
    try {
      await sandbox.table(table).createTable();
      return true;
    } catch {
      return false;
    }
  });
}

const jitRule = (sandbox: Sandbox, nsgId: string, id: string) =>
  sandbox.arm.getNsg(nsgId)?.securityRules.find((r) => r.name === `jit-${id.toLowerCase()}`);

describe('failure modes found by the soak', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ policiesFile: AUTO_POLICIES });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test(
    'a request stored behind a failed audit write still gets its request.submitted event',
    { todo: 'submitRequest writes the request before its audit event (shared/usecases/requests.ts)' },
    async () => {
      // The audit write fails after the request row is written (here: its table is briefly gone).
      const audit = sandbox.table(TABLES.audit);
      await audit.deleteTable();
      const res = await api(sandbox, 'POST', 'requests', {
        vm: DEMO.linuxVm.id,
        ports: [22],
        sourcePrefix: '203.0.113.41',
        duration: 'PT1M',
      });
      await recreate(sandbox, TABLES.audit);
      assert.equal(res.status, 500, 'the caller is told the request failed');
      // The request row exists and is listed as open: the reconciler hands it on (after 2 minutes; at once here).
      await reconcile({ ...services().deps, log: quiet }, { staleAfterInSeconds: 0 });
      const stored: Array<{ id: string; status: string }> = [];
      await waitFor('the stored request to be decided', async () => {
        stored.length = 0;
        for await (const e of sandbox.table(TABLES.requests).listEntities<{ status: string }>({
          queryOptions: { filter: odata`RowKey eq ${'request'} and sourcePrefix eq ${'203.0.113.41/32'}` },
        }))
          stored.push({ id: e.partitionKey as string, status: e.status });
        return stored.every((r) => r.status !== 'submitted');
      });
      // Whatever becomes of it, every stored request has its submission audited.
      for (const r of stored)
        assert.ok(
          (await auditActions(sandbox, r.id)).includes('request.submitted'),
          `request ${r.id} is ${r.status} with no request.submitted event (its caller got a 500)`,
        );
    },
  );

  test(
    'a state change whose audit write fails is still audited once the retry runs',
    { todo: 'transition() writes the request row, then the audit event (shared/usecases/grants.ts)' },
    async () => {
      // ARM throttles the rule write once (1 s), which leaves time to take the audit table away.
      sandbox.arm.faults.inject({
        method: 'PUT',
        pathIncludes: '/securityRules/jit-',
        status: 429,
        code: 'TooManyRequests',
        times: 1,
        retryAfterInSeconds: 1,
      });
      const res = await api(sandbox, 'POST', 'requests', {
        vm: DEMO.windowsVm.id,
        ports: [3389],
        sourcePrefix: '203.0.113.42',
        duration: 'PT1M',
      });
      assert.equal(res.status, 202);
      const id = res.body.id as string;
      // Take the audit table away while the grant is applied: the row moves to active, its event fails.
      await waitFor(
        'the grant to be under way',
        async () => (await api(sandbox, 'GET', `requests/${id}`)).body.expiresAt,
        10_000,
        5,
      );
      await sandbox.table(TABLES.audit).deleteTable();
      await waitFor(
        'active',
        async () => (await api(sandbox, 'GET', `requests/${id}`)).body.status === 'active',
      );
      await recreate(sandbox, TABLES.audit);
      // Queue retries come after host.json's visibilityTimeout (200 ms in tests).
      await sleep(3000);
      const actions = await auditActions(sandbox, id);
      assert.ok(actions.includes('grant.activated'), `the activation is audited: ${actions.join(', ')}`);
    },
  );
});

describe('a grant ended while its rule write is still in flight', () => {
  let sandbox: Sandbox;
  before(async () => {
    // Every rule PUT stays InProgress for 8 s, longer than the grant (1 s) plus the expiry grace (5 s).
    sandbox = await startSandbox({ arm: { operationLatencyInMs: 8000 } });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('the reconciler fails it mid-write; the rule that lands afterwards is removed and nothing stays', async () => {
    const res = await api(sandbox, 'POST', 'requests', {
      vm: DEMO.linuxVm.id,
      ports: [22],
      sourcePrefix: '203.0.113.40',
      duration: 'PT1S',
    });
    assert.equal(res.status, 202);
    const id = res.body.id as string;
    const rule = `jit-${id.toLowerCase()}`;
    await waitFor('ARM to accept the rule writes', () =>
      sandbox.arm.log.some((l) => l.method === 'PUT' && l.path.includes(rule) && l.status < 300),
    );
    const expiresAt = (await api(sandbox, 'GET', `requests/${id}`)).body.expiresAt as string;
    // Past expiresAt + JIT_EXPIRY_GRACE (5 s in the sandbox), with the writes still running, the reconciler
    // gives the grant up.
    await sleep(Math.max(0, Date.parse(expiresAt) + 5500 - Date.now()));
    const before = (await api(sandbox, 'GET', `requests/${id}`)).body as { status: string };
    assert.equal(before.status, 'approved', 'the writes are still in flight');
    await reconcile({ ...services().deps, log: quiet });
    assert.equal((await api(sandbox, 'GET', `requests/${id}`)).body.status, 'failed');
    // The writes complete after that; whatever landed is removed again, by the writer or the next reconcile.
    await waitFor(
      'no rule of the failed grant in any NSG',
      () => DEMO.linuxVm.nsgIds.every((nsgId) => jitRule(sandbox, nsgId, id) === undefined),
      40_000,
    );
    await sleep(3000);
    await reconcile({ ...services().deps, log: quiet });
    for (const nsgId of DEMO.linuxVm.nsgIds)
      assert.equal(
        jitRule(sandbox, nsgId, id),
        undefined,
        `a rule of failed request ${id} is back in ${nsgId}`,
      );
    const view = (await api(sandbox, 'GET', `requests/${id}`)).body as {
      status: string;
      rules: Array<{ state: string }>;
    };
    assert.equal(view.status, 'failed');
    assert.ok(
      view.rules.every((r) => r.state === 'removed'),
      JSON.stringify(view.rules),
    );
  });
});
