/**
 * Two reconciler runs at once over one estate (two instances, or a slot and production sharing storage): the estate
 * ends as one run would leave it — what expired closed, orphans gone, live grants untouched — with every action
 * audited once and no run failing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { odata } from '@azure/data-tables';
import { ulid } from 'ulid';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import type { Deps, Logger } from '../../shared/usecases/deps';
import { runReconciler } from '../../shared/usecases/reconcilerRun';
import { SERVICE_BUS_QUEUES } from '../../shared/names';
import { submitRequest } from '../../shared/usecases/requests';
import { appDeps, auditEvents, recordingLogger } from '../support/network';
import { rulesInAll, rulesInNone } from '../support/observe';
import { api, startSandbox, waitFor } from '../support/sandbox';
import { person } from '../support/principals';

const NSGS = DEMO.linuxVm.nsgIds;

/** The application's dependencies, with the storage-queue hops switched off (nothing else acts meanwhile). */
function deps(log: Logger): Deps {
  return {
    ...appDeps(log),
    queues: { enqueueEvaluation: async () => undefined, enqueueGrant: async () => undefined },
  };
}

async function grant(
  sandbox: Sandbox,
  source: string,
  duration: string,
): Promise<{ id: string; expiresAt: string }> {
  const res = await api(sandbox, 'POST', 'requests', {
    vm: DEMO.linuxVm.id,
    ports: [22],
    sourcePrefix: source,
    duration,
  });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  const id = res.body.id as string;
  return waitFor(`request ${id} to be active`, async () => {
    const v = await api(sandbox, 'GET', `requests/${id}`);
    return v.body.status === 'active' ? { id, expiresAt: v.body.expiresAt as string } : undefined;
  });
}

describe('the reconciler run twice at once', () => {
  let sandbox: Sandbox;
  before(async () => {
    sandbox = await startSandbox({
      reconcileOnStart: false,
      settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *', JIT_EXPIRY_GRACE: 'PT1S' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('leaves the estate as one run would, every action audited once', async () => {
    // Two grants whose expiry messages Service Bus loses, one grant still live, one request nobody handed on, and
    // an orphan rule of a request long gone.
    sandbox.serviceBus.faults.dropScheduled(
      SERVICE_BUS_QUEUES.expirations,
      (body) => (body as { kind?: string }).kind === undefined,
      2,
    );
    const lost = [await grant(sandbox, '203.0.113.61', 'PT8S'), await grant(sandbox, '203.0.113.62', 'PT8S')];
    const live = await grant(sandbox, '203.0.113.63', 'PT10M');
    const quiet = recordingLogger();
    const stalled = await submitRequest(
      deps(quiet),
      person('alice@example.com'),
      { vm: DEMO.linuxVm.id, ports: [22], sourcePrefix: '203.0.113.64', duration: 'PT5M' },
      '203.0.113.64',
    );
    const orphan = `jit-${ulid(Date.now() - 3600_000).toLowerCase()}`;
    sandbox.arm.putRuleDirect(DEMO.subnetNsgId, {
      name: orphan,
      properties: {
        protocol: 'Tcp',
        access: 'Allow',
        direction: 'Inbound',
        priority: 1990,
        sourcePortRange: '*',
        sourceAddressPrefix: '198.51.100.9',
        destinationAddressPrefix: '*',
        destinationPortRange: '22',
      },
    });
    const latest = Math.max(...lost.map((g) => Date.parse(g.expiresAt)));
    await waitFor('the lost grants to be past expiry and grace', () => Date.now() > latest + 1500, 20_000);
    for (const g of lost) assert.ok(rulesInAll(sandbox, NSGS, g.id), 'still open: its message was lost');

    const logs = [recordingLogger(), recordingLogger()];
    const reports = await Promise.all(
      logs.map((log) => runReconciler(deps(log), { staleAfterInSeconds: 0 })),
    );

    const ran = reports.filter((r) => r !== undefined);
    assert.ok(
      ran.every((r) => r.errors === 0),
      JSON.stringify(reports),
    );
    for (const g of lost) {
      assert.ok(rulesInNone(sandbox, NSGS, g.id), `${g.id} closed`);
      const events = await auditEvents(sandbox, odata`requestId eq ${g.id}`);
      const count = (action: string) => events.filter((e) => e.action === action).length;
      assert.equal(count('grant.expired'), 1, `${g.id}: expired once`);
      assert.equal(count('grant.rule-removed'), NSGS.length, `${g.id}: each rule's removal audited once`);
    }
    assert.ok(rulesInAll(sandbox, NSGS, live.id), 'the live grant keeps its rules');
    assert.deepEqual(
      (await auditEvents(sandbox, odata`requestId eq ${live.id}`))
        .map((e) => e.action)
        .filter((a) => a.startsWith('grant.rule-removed') || a === 'grant.expired'),
      [],
    );
    const redriven = await auditEvents(
      sandbox,
      odata`requestId eq ${stalled.id} and action eq 'reconcile.redriven'`,
    );
    assert.equal(redriven.length, 1, 'the stalled request handed on once');
    assert.ok(!sandbox.arm.getNsg(DEMO.subnetNsgId)?.securityRules.some((r) => r.name === orphan));
    const orphans = await auditEvents(sandbox, odata`action eq 'reconcile.orphan-removed'`);
    assert.equal(
      orphans.filter((e) => e.detail?.includes(orphan)).length,
      1,
      'the orphan removal audited once',
    );
    // The run that found the other holding the lease said so, and did nothing.
    assert.equal(reports.filter((r) => r === undefined).length, 1, JSON.stringify(reports));
    assert.ok(logs.some((l) => l.lines.some((line) => line.event === 'reconcile.skipped')));

    await api(sandbox, 'POST', `requests/${live.id}/revoke`);
  });
});
