/**
 * Exactly one live scheduled message per purpose (expiry, start, approval deadline), whatever the races: the use
 * cases are driven directly, with a step paused or failed at the worst moment, against the sandbox's Service Bus
 * emulator with duplicate detection on as Azure has it. Assertions are on what an operator could see: the
 * emulator's scheduled messages, the request, and the rule leaving the NSGs at the expiry.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DEMO } from '../../dev/arm/emulator';
import type { Sandbox } from '../../dev/sandbox';
import { AccessAlreadyEnded } from '../../shared/domain/errors';
import type { SchedulePurpose } from '../../shared/domain/scheduledMessages';
import type { AccessRequest, Principal } from '../../shared/domain/types';
import { SERVICE_BUS_QUEUES } from '../../shared/names';
import type { Deps } from '../../shared/usecases/deps';
import { applyGrant } from '../../shared/usecases/applying';
import { evaluateRequest } from '../../shared/usecases/evaluation';
import { expireGrant } from '../../shared/usecases/expiry';
import { extendRequest, revokeRequest } from '../../shared/usecases/lifecycle';
import { submitRequest } from '../../shared/usecases/requests';
import { appDeps } from '../support/network';
import { closingBegins, rulesInAll, rulesInNone, scheduledFor } from '../support/observe';
import { sleep, startSandbox, waitFor } from '../support/sandbox';
import { person } from '../support/principals';

const ALICE: Principal = person('alice@example.com');
const NSGS = DEMO.linuxVm.nsgIds;
/** Short, so that a retry can come after it as a crashed invocation's retry may come after Azure's hour. */
const DUPLICATE_WINDOW_IN_MS = 2000;

/** The application's dependencies, with the storage-queue hops switched off: the test runs each step itself. */
function deps(): Deps {
  return {
    ...appDeps(),
    queues: { enqueueEvaluation: async () => undefined, enqueueGrant: async () => undefined },
  };
}

/** How a test schedules one purpose's messages in place of the application (usually calling it, then misbehaving). */
type Schedule = (requestId: string, dueAt: string, enqueueAt?: string) => Promise<string>;

/** The dependencies with `purpose`'s scheduling replaced; every other purpose, and every cancel, as they are. */
function withSchedule(d: Deps, purpose: SchedulePurpose, schedule: Schedule): Deps {
  const real = d.scheduledMessages;
  return {
    ...d,
    scheduledMessages: {
      schedule: (p, requestId, dueAt, enqueueAt) =>
        p === purpose ? schedule(requestId, dueAt, enqueueAt) : real.schedule(p, requestId, dueAt, enqueueAt),
      cancel: (p, sequenceNumber) => real.cancel(p, sequenceNumber),
    },
  };
}

function withExpiries(d: Deps, scheduleExpiry: Schedule): Deps {
  return withSchedule(d, 'expire', scheduleExpiry);
}

function withStarts(d: Deps, scheduleStart: Schedule): Deps {
  return withSchedule(d, 'start', scheduleStart);
}

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { opened, open };
}

async function request(d: Deps, id: string): Promise<AccessRequest> {
  const found = await d.requests.get(id);
  assert.ok(found, `request ${id} exists`);
  return found.value;
}

let sourceCount = 0;

/** Submits a request to the Linux demo VM (auto-approved) and has the policy decide it. */
async function submit(d: Deps, body: Record<string, unknown>): Promise<string> {
  const source = `203.0.113.${100 + ++sourceCount}`;
  const r = await submitRequest(
    d,
    ALICE,
    { vm: DEMO.linuxVm.id, ports: [22], sourcePrefix: source, ...body },
    source,
  );
  return r.id;
}

async function approved(d: Deps, duration: string): Promise<string> {
  const id = await submit(d, { duration });
  await evaluateRequest(d, id);
  assert.equal((await request(d, id)).status, 'approved');
  return id;
}

describe('exactly one live scheduled message per purpose', () => {
  let sandbox: Sandbox;
  const expiries = (id: string) => scheduledFor(sandbox, SERVICE_BUS_QUEUES.expirations, id);
  const starts = (id: string) => scheduledFor(sandbox, SERVICE_BUS_QUEUES.starts, id);

  /** Waits until the request's message on `queue`, due `at`, has come due and been delivered to its handler. */
  async function delivered(queue: string, id: string, at: Date): Promise<void> {
    await waitFor(
      `its message on ${queue} to come due`,
      () => Date.now() > at.getTime() && scheduledFor(sandbox, queue, id).length === 0,
      15_000,
      20,
    );
    // Long enough for the host to hand it to the function, which finds the request a step behind.
    await sleep(1000);
  }

  /**
   * The one expiry message, recorded on the request, for its expiry and enqueued when closing begins; then the rule
   * closes at that time.
   */
  async function assertExpiresOnTime(d: Deps, id: string): Promise<void> {
    const r = await request(d, id);
    const scheduled = expiries(id);
    assert.deepEqual(
      scheduled.map((m) => [String(m.sequenceNumber), m.messageId, m.scheduledEnqueueTime.getTime()]),
      [[r.expirySequenceNumber, `expire:${id}:${Date.parse(r.expiresAt!)}`, closingBegins(r)]],
      'one expiry message, the one the request records, for its expiry, enqueued as closing begins',
    );
    assert.ok(rulesInAll(sandbox, NSGS, id), 'open until then');
    const closedAt = await waitFor(
      'the rule to close',
      () => (rulesInNone(sandbox, NSGS, id) ? Date.now() : undefined),
      30_000,
      50,
    );
    assert.ok(closedAt >= closingBegins(r), `closed ${closingBegins(r) - closedAt} ms before closing began`);
    await waitFor('the request to be expired', async () => (await request(d, id)).status === 'expired');
  }

  before(async () => {
    sandbox = await startSandbox({
      duplicateDetectionWindowInMs: DUPLICATE_WINDOW_IN_MS,
      // The reconciler would heal what these tests must see happen (or not) through the messages alone.
      settings: { JIT_RECONCILE_SCHEDULE: '0 0 0 1 1 *', JIT_EXPIRY_GRACE: 'PT1M' },
    });
  });
  after(async () => {
    await sandbox?.stop();
  });

  test('two applyGrant runs racing: the one whose schedule was dropped as a duplicate wins', async () => {
    const d = deps();
    const id = await approved(d, 'PT6S');
    const scheduled = gate();
    const resume = gate();
    // Run A schedules the expiry, then stalls before recording it; run B, a duplicate delivery, does everything.
    const a = applyGrant(
      withExpiries(d, async (requestId, dueAt, enqueueAt) => {
        const sequenceNumber = await d.scheduledMessages.schedule('expire', requestId, dueAt, enqueueAt);
        scheduled.open();
        await resume.opened;
        return sequenceNumber;
      }),
      id,
    );
    await scheduled.opened;
    await applyGrant(d, id);
    resume.open();
    await a;
    assert.equal((await request(d, id)).status, 'active');
    await assertExpiresOnTime(d, id);
  });

  test('applyGrant retried after a crash between scheduling and recording, then extended', async () => {
    const d = deps();
    const id = await approved(d, 'PT5S');
    const crashing = withExpiries(d, async (requestId, dueAt, enqueueAt) => {
      await d.scheduledMessages.schedule('expire', requestId, dueAt, enqueueAt);
      throw new Error('the instance died after scheduling the expiry');
    });
    await assert.rejects(applyGrant(crashing, id), /died after scheduling/);
    await applyGrant(d, id);
    const active = await request(d, id);
    assert.equal(active.status, 'active');
    assert.deepEqual(
      expiries(id).map((m) => String(m.sequenceNumber)),
      [active.expirySequenceNumber],
      'the retry recorded the message the crashed run scheduled',
    );
    const view = await extendRequest(d, ALICE, id, { duration: 'PT3S' });
    assert.equal(Date.parse(view.expiresAt!) - Date.parse(active.expiresAt!), 3000);
    await assertExpiresOnTime(d, id);
  });

  test('an extension whose first write loses to another writer, retried at once with the same expiry', async () => {
    const d = deps();
    const id = await approved(d, 'PT5S');
    await applyGrant(d, id);
    const before = await request(d, id);
    let touched = false;
    const racing = withExpiries(d, async (requestId, dueAt, enqueueAt) => {
      const sequenceNumber = await d.scheduledMessages.schedule('expire', requestId, dueAt, enqueueAt);
      if (!touched) {
        // Someone writes the row between our schedule and our write (the expiry is unchanged, so the retry
        // schedules the same message id).
        touched = true;
        const found = await d.requests.get(id);
        assert.ok(found);
        await d.requests.update(
          { ...found.value, updatedAt: new Date().toISOString() },
          found.etag,
          found.pendingAudit,
        );
      }
      return sequenceNumber;
    });
    const view = await extendRequest(racing, ALICE, id, { duration: 'PT4S' });
    assert.ok(touched);
    assert.equal(Date.parse(view.expiresAt!) - Date.parse(before.expiresAt!), 4000);
    await waitFor('the old expiry to pass', () => Date.now() > Date.parse(before.expiresAt!) + 500, 15_000);
    assert.equal((await request(d, id)).status, 'active', 'the old expiry closed nothing');
    await assertExpiresOnTime(d, id);
  });

  test('the old expiry firing while an extension is being written: the expiry wins', async () => {
    const d = deps();
    const id = await approved(d, 'PT3S');
    await applyGrant(d, id);
    let fired = false;
    const racing = withExpiries(d, async (requestId, dueAt, enqueueAt) => {
      const sequenceNumber = await d.scheduledMessages.schedule('expire', requestId, dueAt, enqueueAt);
      if (!fired) {
        // The old message comes due now and closes the grant before the extension is recorded.
        fired = true;
        await waitFor(
          'the old expiry to close the grant',
          async () => (await request(d, id)).status === 'expired',
        );
      }
      return sequenceNumber;
    });
    await assert.rejects(extendRequest(racing, ALICE, id, { duration: 'PT1M' }), AccessAlreadyEnded);
    assert.ok(fired);
    assert.ok(rulesInNone(sandbox, NSGS, id));
    assert.deepEqual(expiries(id), [], 'no expiry message is left for ended access');
  });

  test('the old expiry delivered after an extension was recorded changes nothing', async () => {
    const d = deps();
    const id = await approved(d, 'PT4S');
    await applyGrant(d, id);
    const before = await request(d, id);
    await extendRequest(d, ALICE, id, { duration: 'PT3S' });
    // The old message was already on its way when the extension cancelled it.
    await expireGrant(d, { requestId: id, expiresAt: before.expiresAt! });
    assert.equal((await request(d, id)).status, 'active');
    await assertExpiresOnTime(d, id);
  });

  test('a grant whose expiry comes while it is being applied closes as it goes live', async () => {
    const d = deps();
    const id = await approved(d, 'PT1S');
    // The rules take longer to write than the grant lasts: the expiry message comes while the request is still
    // `approved`. Ignored as stale, it would leave the grant open until the reconciler's grace.
    const slow = withExpiries(d, async (requestId, dueAt, enqueueAt) => {
      const sequenceNumber = await d.scheduledMessages.schedule('expire', requestId, dueAt, enqueueAt);
      await delivered(SERVICE_BUS_QUEUES.expirations, id, new Date(dueAt));
      return sequenceNumber;
    });
    await applyGrant(slow, id);
    await waitFor('the grant to be closed', () => rulesInNone(sandbox, NSGS, id), 10_000);
    await waitFor(
      'the request to be expired',
      async () => (await request(d, id)).status === 'expired',
      10_000,
    );
    assert.deepEqual(expiries(id), []);
  });

  test('a start that comes while the request is being scheduled starts it', async () => {
    const d = deps();
    const id = await submit(d, { duration: 'PT1M', startAt: new Date(Date.now() + 1500).toISOString() });
    const slow = withStarts(d, async (requestId, dueAt) => {
      const sequenceNumber = await d.scheduledMessages.schedule('start', requestId, dueAt);
      await delivered(SERVICE_BUS_QUEUES.starts, id, new Date(dueAt));
      return sequenceNumber;
    });
    await evaluateRequest(slow, id);
    await waitFor(
      'the request to be started and handed on to applyGrant',
      async () => (await request(d, id)).status === 'approved',
      10_000,
    );
    await revokeRequest(d, ALICE, id);
  });

  test('a scheduled start retried after a crash between scheduling and recording; a revoke leaves none', async () => {
    const d = deps();
    const id = await submit(d, { duration: 'PT1M', startAt: new Date(Date.now() + 60_000).toISOString() });
    const crashing = withStarts(d, async (requestId, dueAt) => {
      await d.scheduledMessages.schedule('start', requestId, dueAt);
      throw new Error('the instance died after scheduling the start');
    });
    await assert.rejects(evaluateRequest(crashing, id), /died after scheduling/);
    await evaluateRequest(d, id);
    const scheduled = await request(d, id);
    assert.equal(scheduled.status, 'scheduled');
    assert.deepEqual(
      starts(id).map((m) => [String(m.sequenceNumber), m.scheduledEnqueueTime.toISOString()]),
      [[scheduled.startSequenceNumber, scheduled.startAt]],
    );
    await revokeRequest(d, ALICE, id);
    assert.deepEqual(starts(id), [], 'the revoke cancelled the live start message');
  });

  test('an approval retried after its mail failed, later than the duplicate window: one deadline message', async () => {
    const d = deps();
    const source = '203.0.113.250';
    const { id } = await submitRequest(
      d,
      ALICE,
      {
        vm: DEMO.windowsVm.id,
        ports: [3389],
        sourcePrefix: source,
        duration: 'PT10M',
        justification: 'patching',
      },
      source,
    );
    const approvals = d.approvals;
    const mailDown: Deps = {
      ...d,
      approvals: {
        ...approvals,
        mailer: {
          send: async () => {
            throw new Error('the mail relay is down');
          },
        },
      },
    };
    await assert.rejects(evaluateRequest(mailDown, id), /mail relay is down/);
    await new Promise((resolve) => setTimeout(resolve, DUPLICATE_WINDOW_IN_MS + 500));
    await evaluateRequest(d, id);
    const pending = await request(d, id);
    assert.equal(pending.status, 'pending-approval');
    assert.ok(pending.approversNotifiedAt, 'the retry mailed the approvers');
    assert.deepEqual(
      expiries(id).map((m) => [String(m.sequenceNumber), m.scheduledEnqueueTime.toISOString()]),
      [[pending.approvalDeadlineSequenceNumber, pending.approvalDeadline]],
      'one deadline message, the one the request records',
    );
    await revokeRequest(d, ALICE, id);
  });
});
