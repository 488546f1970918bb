/**
 * Failure modes the soak (bench/soak.ts) found, each pinned down as a deterministic sequence on the sandbox and
 * kept as a guard now that it is fixed: a state change whose audit append fails (storage errors, a crash between
 * the two writes) keeps its event, and a grant ended while its rule write is in flight leaves nothing open.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { services } from '../../shared/composition';
import type { AuditEvent } from '../../shared/domain/types';
import { TABLES } from '../../shared/names';
import { PENDING_AUDIT_GRACE_MS } from '../../shared/usecases/auditOutbox';
import { reconcile } from '../../shared/usecases/reconcile';
import { auditActions, view } from '../support/observe';
import { AUTO_POLICIES, api, sleep, startSandbox, waitFor } from '../support/sandbox';
import { isDayPartition } from '../../shared/domain/auditChain';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined };

/** Waits for a request to have run its course. */
const expired = (sandbox: Sandbox, id: string) =>
  waitFor(`request ${id} to expire`, async () => (await view(sandbox, id)).status === 'expired');

/**
 * Makes the audit trail refuse the next append of `action` for requests from `sourcePrefix`, as a storage error
 * or a crash between the request write and the append would. The host runs in this process and shares the
 * trail's writer, so this is the writer every function uses.
 */
function failNextAppend(action: string, sourcePrefix: string): { restore: () => void; failed: () => number } {
  const audit = services().deps.audit;
  const original = audit.append.bind(audit);
  let failed = 0;
  audit.append = (e: AuditEvent) => {
    if (failed === 0 && e.action === action && e.sourcePrefix === sourcePrefix) {
      failed++;
      return Promise.reject(new Error(`injected: the ${action} append fails`));
    }
    return original(e);
  };
  return { restore: () => void (audit.append = original), failed: () => failed };
}

const jitRule = (sandbox: Sandbox, nsgId: string, id: string) =>
  sandbox.arm.getNsg(nsgId)?.securityRules.find((r) => r.name === `jit-${id.toLowerCase()}`);

describe('state changes whose audit append fails', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({ policiesFile: AUTO_POLICIES });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('a submission whose event fails is still accepted, and its event is in the trail before the next', async () => {
    const injected = failNextAppend('request.submitted', '203.0.113.41/32');
    try {
      const res = await api(sandbox, 'POST', 'requests', {
        vm: DEMO.linuxVm.id,
        ports: [22],
        sourcePrefix: '203.0.113.41',
        duration: 'PT3S',
      });
      assert.equal(injected.failed(), 1, 'the append was refused');
      assert.equal(res.status, 202, 'the request is stored, so it is accepted');
      const id = res.body.id as string;
      await expired(sandbox, id);
      await waitFor('the trail to hold every change once, in order', async () => {
        const actions = await auditActions(sandbox, id);
        assert.deepEqual(actions, [
          'request.submitted',
          'request.approved',
          'grant.activated',
          'grant.expired',
        ]);
        return true;
      });
    } finally {
      injected.restore();
    }
  });

  test("a final change whose event fails keeps the request on the reconciler's list until the event is in", async () => {
    const injected = failNextAppend('grant.expired', '203.0.113.42/32');
    try {
      const res = await api(sandbox, 'POST', 'requests', {
        vm: DEMO.windowsVm.id,
        ports: [3389],
        sourcePrefix: '203.0.113.42',
        duration: 'PT2S',
      });
      assert.equal(res.status, 202);
      const id = res.body.id as string;
      await expired(sandbox, id);
      assert.equal(injected.failed(), 1, 'the expired event was refused');
      const open = async () => {
        for await (const id2 of services().deps.requests.listOpen()) if (id2 === id) return true;
        return false;
      };
      // The retried expiry message finds the request expired and has nothing to do; the event waits in the row.
      await sleep(1000);
      assert.deepEqual(await auditActions(sandbox, id), [
        'request.submitted',
        'request.approved',
        'grant.activated',
      ]);
      assert.ok(await open(), 'still on the open list');

      await sleep(PENDING_AUDIT_GRACE_MS);
      await reconcile({ ...services().deps, log: quiet });
      assert.deepEqual(await auditActions(sandbox, id), [
        'request.submitted',
        'request.approved',
        'grant.activated',
        'grant.expired',
      ]);
      assert.ok(!(await open()), 'off the open list once its event is in');
      await reconcile({ ...services().deps, log: quiet });
      assert.equal((await auditActions(sandbox, id)).length, 4, 'appended once');
    } finally {
      injected.restore();
    }
  });

  test('an event whose index copies were cut off is found in its day, its copies restored, and not appended again', async () => {
    const trail = services().deps.audit;
    const recordedAt = new Date().toISOString();
    const eventId = `EV${Date.now()}`;
    const requestId = `R${Date.now()}`;
    await trail.append({
      actor: 'system:test',
      action: 'request.submitted',
      requestId,
      vm: DEMO.linuxVm.id,
      eventId,
    });
    // As if storage went away after the chain's transaction and before the copies: remove every copy.
    const table = sandbox.table(TABLES.audit);
    let copies = 0;
    for await (const e of table.listEntities({ queryOptions: { filter: odata`eventId eq ${eventId}` } })) {
      if (isDayPartition(e.partitionKey as string)) continue;
      await table.deleteEntity(e.partitionKey as string, e.rowKey as string);
      copies++;
    }
    assert.equal(copies, 3, 'the event had its VM, actor and request copies');
    assert.deepEqual(await auditActions(sandbox, requestId), []);

    assert.equal(await trail.hasEvent(requestId, eventId, recordedAt), true);
    assert.deepEqual(await auditActions(sandbox, requestId), ['request.submitted']);
    let rows = 0;
    for await (const e of table.listEntities({ queryOptions: { filter: odata`eventId eq ${eventId}` } }))
      if (e) rows++;
    assert.equal(rows, 4, 'one event in its day and its three copies, nothing twice');
    assert.equal(await trail.hasEvent(requestId, 'EV-never-written', recordedAt), false);
  });
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
