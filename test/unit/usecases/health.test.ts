import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../../shared/config';
import { healthReport } from '../../../shared/usecases/health';
import { readVersion } from '../../../shared/version';
import { person } from '../../support/principals';

const env = {
  JIT_AUTH_MODE: 'dev',
  JIT_PUBLIC_BASE_URL: 'http://127.0.0.1:7071',
  JIT_APPROVAL_KEY: '@Microsoft.KeyVault(SecretUri=https://x.vault.azure.net/secrets/k/)',
  JIT_MAIL_MODE: 'smtp',
  JIT_MAIL_FROM: 'jit@example.com',
  JIT_SMTP_HOST: '127.0.0.1',
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  ServiceBusConnection:
    'Endpoint=sb://127.0.0.1;SharedAccessKeyName=k;SharedAccessKey=v;UseDevelopmentEmulator=true',
};
const version = { version: '1.2.3' };

test('anyone sees the status and version; only an admin sees each feature and why one is off', () => {
  const { features } = loadConfig(env);
  assert.deepEqual(healthReport(features, version, undefined), { status: 'degraded', version: '1.2.3' });
  const someone = person('alice@example.com', [], ['Jit.Auditor']);
  assert.equal(healthReport(features, version, someone).features, undefined);
  const admin = person('ops@example.com', [], ['Jit.Admin']);
  const detail = healthReport(features, version, admin).features!;
  assert.deepEqual(detail.mail, { ready: true });
  assert.equal(detail.approval?.ready, false);
  assert.deepEqual(Object.keys(detail.approval ?? {}).sort(), ['ready', 'reason', 'setting']);
  assert.doesNotMatch(JSON.stringify(detail), /vault\.azure\.net/);
  const sound = loadConfig({ ...env, JIT_APPROVAL_KEY: `k1:${Buffer.alloc(32, 1).toString('base64')}` });
  assert.equal(healthReport(sound.features, version, undefined).status, 'ok');
  // Sound settings, but an instance that refuses callers (its start-up check failed).
  assert.equal(healthReport(sound.features, version, undefined, false).status, 'degraded');
});

test('the version comes from package.json, and the commit from build.json where the package has one', () => {
  const root = mkdtempSync(join(tmpdir(), 'jit-version-'));
  writeFileSync(join(root, 'package.json'), JSON.stringify({ version: '0.9.1' }));
  assert.deepEqual(readVersion(root), { version: '0.9.1' });
  writeFileSync(join(root, 'build.json'), JSON.stringify({ commit: 'not a sha; rm -rf' }));
  assert.deepEqual(readVersion(root), { version: '0.9.1' }, 'only a commit id is shown');
  writeFileSync(join(root, 'build.json'), JSON.stringify({ commit: '0123abcd' }));
  assert.deepEqual(readVersion(root), { version: '0.9.1', commit: '0123abcd' });
});
