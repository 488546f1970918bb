import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileRoute } from '../../../dev/host/localHost';
import { parseTimeSpan } from '../../../dev/host/hostJson';

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
