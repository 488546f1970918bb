import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalHost, PollingBackoff, compileRoute } from '../../../dev/host/localHost';
import { parseTimeSpan, readHostSettings } from '../../../dev/host/hostJson';
import { configureServices } from '../../../shared/composition';
import { SettingInvalid } from '../../../shared/config';

test('route templates match like Azure Functions routes', () => {
  const r = compileRoute('requests/{id}');
  assert.deepEqual(r.names, ['id']);
  assert.equal(r.regex.exec('requests/01ABC')?.[1], '01ABC');
  assert.equal(r.regex.test('requests'), false);
  assert.equal(r.regex.test('requests/a/b'), false);
  const opt = compileRoute('audit/{day?}');
  assert.equal(opt.regex.test('audit/'), true);
  assert.equal(compileRoute('requests/{id:alpha}/revoke').regex.exec('requests/x1/revoke')?.[1], 'x1');
});

test('host.json TimeSpans are read as milliseconds', () => {
  assert.equal(parseTimeSpan('00:00:02'), 2000);
  assert.equal(parseTimeSpan('00:01:00'), 60000);
  assert.equal(parseTimeSpan('1.00:00:00'), 86400000);
  assert.equal(parseTimeSpan('00:00:00.5'), 500);
  assert.throws(() => parseTimeSpan('2s'), /TimeSpan/);
});

test('queue polling backs off like the Functions host: 100 ms, then ~+100 ms × 2^n, up to maxPollingInterval', () => {
  const b = new PollingBackoff(2000, () => 0.5); // no jitter
  const idle = Array.from({ length: 9 }, () => b.next(false));
  assert.deepEqual(idle, [100, 200, 300, 500, 900, 1700, 2000, 2000, 2000]);
  // A poll that found messages starts the back-off again from the shortest wait.
  assert.equal(b.next(true), 100);
  assert.equal(b.next(false), 200);
  // Jitter stays within ±20% of each step.
  const jittery = new PollingBackoff(60_000, () => 0.999);
  jittery.next(false);
  assert.ok(jittery.next(false) <= 100 + 120);
  // A maximum below the host's minimum is the wait.
  assert.equal(new PollingBackoff(50).next(false), 50);
});

test('host.json: newBatchThreshold is read, with the extension default of half a batch per core', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hostjson-'));
  const file = join(dir, 'host.json');
  writeFileSync(file, JSON.stringify({ extensions: { queues: { batchSize: 16, newBatchThreshold: 8 } } }));
  assert.equal(readHostSettings(file).queues.newBatchThreshold, 8);
  writeFileSync(file, JSON.stringify({ extensions: { queues: { batchSize: 16 } } }));
  assert.equal(readHostSettings(file).queues.newBatchThreshold, 8 * availableParallelism());
});

test('the host does not start when a core setting is missing, and says which', async () => {
  // Run from dist/test/unit/dev: the compiled function files and the project's host.json.
  const root = join(__dirname, '..', '..', '..', '..');
  const settings = { JIT_AUTH_MODE: 'dev' };
  configureServices({ env: settings });
  const host = new LocalHost({
    functionsDir: join(root, 'dist', 'functions'),
    host: readHostSettings(join(root, 'host.json')),
    settings,
    httpPort: 0,
    log: () => undefined,
  });
  await assert.rejects(
    host.start(),
    (err) => err instanceof SettingInvalid && /AzureWebJobsStorage/.test(err.message),
  );
  // Nothing is left listening: the start undid itself.
  await assert.rejects(fetch(host.baseUrl + '/api/health'));
});
