import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { HttpRequest, InvocationContext } from '@azure/functions';
import { configureServices } from '../../../shared/composition';
import { declaredFunctions } from '../../../shared/hosting/declare';
import type { HttpFunction } from '../../../shared/hosting/declare';

// Under the Functions worker a broken core setting does not stop the host: every invocation is answered with it,
// and GET /api/health says the app is unavailable. Run from dist/test/unit/hosting: the compiled function files.
const functionsDir = join(__dirname, '..', '..', '..', 'functions');
for (const f of readdirSync(functionsDir).filter((f) => f.endsWith('.js')))
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(join(functionsDir, f));

const http = (name: string) => declaredFunctions().find((f) => f.name === name) as HttpFunction;
const context = () => new InvocationContext({ functionName: 'test', logHandler: () => undefined });
const get = (path: string) =>
  new HttpRequest({ method: 'GET', url: `http://localhost/api/${path}`, headers: {} });

test('with a broken core setting, health answers 503 unavailable and another route a 500 problem that leaks nothing', async () => {
  configureServices({ env: { JIT_AUTH_MODE: 'dev' } });
  const health = await http('health').handler(get('health'), context());
  assert.equal(health.status, 503);
  assert.equal((health.jsonBody as { status: string }).status, 'unavailable');
  const other = await http('getRequest').handler(get('requests/x'), context());
  assert.equal(other.status, 500);
  assert.equal((other.headers as Record<string, string>)['Content-Type'], 'application/problem+json');
  assert.doesNotMatch(JSON.stringify(other.jsonBody), /AzureWebJobsStorage/);
});
