import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, test } from 'node:test';
import { KeyedMutex } from '../../../shared/domain/keyedMutex';

/** A task that records when it starts and ends, and finishes when released. */
function gate(log: string[], name: string) {
  let release: () => void = () => undefined;
  const done = new Promise<void>((r) => (release = r));
  return {
    release: () => release(),
    task: async () => {
      log.push(`${name}:start`);
      await done;
      log.push(`${name}:end`);
      return name;
    },
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('KeyedMutex', () => {
  test('runs the tasks of one key one at a time, in order of arrival', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const [a, b] = [gate(log, 'a'), gate(log, 'b')];
    const results = [m.run('nsg', a.task), m.run('nsg', b.task)];
    await tick();
    assert.deepEqual(log, ['a:start']);
    a.release();
    b.release();
    assert.deepEqual(await Promise.all(results), ['a', 'b']);
    assert.deepEqual(log, ['a:start', 'a:end', 'b:start', 'b:end']);
  });

  test('an urgent task (a close) runs next, ahead of normal ones already waiting; the running one is not cut', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const [open1, open2, open3, close] = ['open1', 'open2', 'open3', 'close'].map((n) => gate(log, n)) as [
      ReturnType<typeof gate>,
      ReturnType<typeof gate>,
      ReturnType<typeof gate>,
      ReturnType<typeof gate>,
    ];
    const all = [
      m.run('nsg', open1.task),
      m.run('nsg', open2.task),
      m.run('nsg', open3.task),
      m.run('nsg', close.task, 'urgent'),
    ];
    await tick();
    assert.deepEqual(log, ['open1:start']);
    [open1, open2, open3, close].forEach((g) => g.release());
    await Promise.all(all);
    assert.deepEqual(
      log.filter((e) => e.endsWith(':start')),
      ['open1:start', 'close:start', 'open2:start', 'open3:start'],
    );
  });

  test('urgent tasks keep their own order of arrival', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const gates = ['open', 'close1', 'close2'].map((n) => gate(log, n));
    const all = [
      m.run('nsg', gates[0]!.task),
      m.run('nsg', gates[1]!.task, 'urgent'),
      m.run('nsg', gates[2]!.task, 'urgent'),
    ];
    gates.forEach((g) => g.release());
    await Promise.all(all);
    assert.deepEqual(
      log.filter((e) => e.endsWith(':start')),
      ['open:start', 'close1:start', 'close2:start'],
    );
  });

  test('a failing task hands its error to its caller and the key moves on', async () => {
    const m = new KeyedMutex();
    const failing = m.run('nsg', async () => {
      throw new Error('AnotherOperationInProgress');
    });
    const throwing = m.run('nsg', () => {
      throw new Error('thrown before any await');
    });
    const next = m.run('nsg', async () => 'ran');
    await assert.rejects(failing, /AnotherOperationInProgress/);
    await assert.rejects(throwing, /thrown before any await/);
    assert.equal(await next, 'ran');
  });

  test("a task that waited runs in its own caller's async context, not in that of the task before it", async () => {
    // Trace spans and invocation logs follow the async context: an open's ARM calls must not be counted as the
    // close's that ran before it.
    const m = new KeyedMutex();
    const caller = new AsyncLocalStorage<string>();
    const log: string[] = [];
    const first = gate(log, 'first');
    const seen: Array<string | undefined> = [];
    const all = [
      caller.run('first', () => m.run('nsg', first.task)),
      caller.run('second', () => m.run('nsg', async () => seen.push(caller.getStore()))),
      caller.run('third', () => m.run('nsg', async () => seen.push(caller.getStore()), 'urgent')),
    ];
    first.release();
    await Promise.all(all);
    assert.deepEqual(seen, ['third', 'second']);
  });

  test('different keys do not wait for each other', async () => {
    const m = new KeyedMutex();
    const log: string[] = [];
    const a = gate(log, 'a');
    const held = m.run('nsg-a', a.task);
    assert.equal(await m.run('nsg-b', async () => 'b'), 'b');
    a.release();
    await held;
  });
});
