/**
 * azd deploys what `npm run package` staged: azure.yaml runs the package script before azd packages the service,
 * points `dist` at the staged app, and turns remote build off so the staged production node_modules ship as they are.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { PACKAGE_OUT_DIR, PROJECT_ROOT, STAGED_APP_DIR } from '../../deploy/functionApp';

interface ServiceConfig {
  dist?: string;
  remoteBuild?: boolean;
  hooks?: Record<string, { run?: string }>;
}

test('azure.yaml deploys the staged package, built by npm run package before azd packages the service', () => {
  const azureYaml = YAML.parse(readFileSync(join(PROJECT_ROOT, 'azure.yaml'), 'utf8')) as {
    services: Record<string, ServiceConfig>;
  };
  const api = azureYaml.services.api!;
  assert.equal(api.dist, `${PACKAGE_OUT_DIR}/${STAGED_APP_DIR}`);
  // azd zips `dist` with node_modules only when remote build is off, and a remote build would reinstall dev tools.
  assert.equal(api.remoteBuild, false);
  assert.equal(api.hooks?.prepackage?.run, 'npm run package');

  const scripts = (
    JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    }
  ).scripts;
  assert.match(scripts.package ?? '', /^npm run build && node dist\/deploy\/package\.js$/);
});
