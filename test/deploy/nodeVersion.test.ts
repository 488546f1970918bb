/**
 * One Node.js version everywhere: the Flex Consumption runtime (infra), package.json engines, @types/node, CI and the
 * README agree, Azure supports it, and every locked dependency accepts every version engines allows, so `npm ci`
 * prints no EBADENGINE warning on it.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import semver from 'semver';
import { PROJECT_ROOT } from '../../deploy/functionApp';
import { loadBicep, propertyAt, stringValue } from '../infra/bicepModel';

/**
 * Node.js versions Azure Functions 4.x runs, with their end of support, from the supported-languages page
 * (https://learn.microsoft.com/azure/azure-functions/supported-languages?pivots=programming-language-javascript).
 * Node.js 20 left the list on April 30, 2026; per the language runtime support policy
 * (https://learn.microsoft.com/azure/azure-functions/language-support-policy) an app on a retired version still runs
 * but gets no security fixes.
 */
const AZURE_FUNCTIONS_NODE = new Map([
  [22, '2027-04-30'],
  [24, '2028-04-30'],
]);

const read = (file: string) => readFileSync(join(PROJECT_ROOT, file), 'utf8');

interface PackageJson {
  engines?: { node?: string };
  devDependencies: Record<string, string>;
}
const pkg = JSON.parse(read('package.json')) as PackageJson;
const engines = pkg.engines?.node ?? '';

async function azureMajor(): Promise<number> {
  const bicep = await loadBicep('infra/modules/function-app.bicep');
  const site = bicep.resources.find((r) => r.type.startsWith('Microsoft.Web/sites@'));
  const runtime = propertyAt(site?.body, 'properties.functionAppConfig.runtime');
  assert.equal(stringValue(propertyAt(runtime, 'name')), 'node');
  const version = stringValue(propertyAt(runtime, 'version'));
  assert.match(version ?? '', /^\d+$/, 'runtime.version is a major version');
  return Number(version);
}

/** The one major version engines allows (a range across majors would let developers test what Azure never runs). */
function enginesMajor(): number {
  const min = semver.minVersion(engines);
  assert.ok(min, `package.json engines.node (${engines}) is a semver range`);
  assert.ok(
    semver.subset(engines, `${min.major}.x`),
    `engines.node (${engines}) stays within Node.js ${min.major}`,
  );
  return min.major;
}

test('the Flex Consumption runtime is a Node.js version Azure Functions supports', async () => {
  const major = await azureMajor();
  assert.ok(AZURE_FUNCTIONS_NODE.has(major), `Node.js ${major} is not supported by Azure Functions`);
});

test('engines, @types/node, CI and the README name the runtime Azure runs', async () => {
  const major = await azureMajor();
  assert.equal(enginesMajor(), major, 'package.json engines.node');
  assert.equal(semver.major(pkg.devDependencies['@types/node'] ?? '0.0.0'), major, '@types/node');

  const ci = /^NODE_VERSION=(\S+)$/m.exec(read('.ci/run'))?.[1] ?? '';
  assert.ok(semver.valid(ci), `.ci/run pins NODE_VERSION to an exact release, not "${ci}"`);
  assert.ok(semver.satisfies(ci, engines), `.ci/run's Node.js ${ci} is within engines.node (${engines})`);

  // Every "Node.js NN" a newcomer reads before installing names the same major.
  for (const file of ['README.md', 'docs/deploy.md']) {
    const named = [...read(file).matchAll(/\bNode(?:\.js)? (\d+)\b/g)].map((m) => Number(m[1]));
    assert.ok(named.length > 0, `${file} states the Node.js version`);
    assert.deepEqual([...new Set(named)], [major], `${file} names Node.js ${[...new Set(named)].join(', ')}`);
  }
});

test('every locked dependency accepts every Node.js version engines allows (no EBADENGINE)', () => {
  const lock = JSON.parse(read('package-lock.json')) as {
    packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
  };
  const refusing = Object.entries(lock.packages)
    .filter(([path]) => path !== '')
    .flatMap(([path, info]) => {
      const wanted = Array.isArray(info.engines) ? undefined : info.engines?.node;
      return wanted && !semver.subset(engines, wanted, { includePrerelease: false })
        ? [`${path.replace(/^.*node_modules\//, '')}@${info.version} wants node ${wanted}`]
        : [];
    });
  assert.deepEqual(refusing, [], `engines.node is ${engines}`);
});

test('CI runs on the Node.js version it pins', { skip: !process.env.CI && 'only under CI (.ci/run)' }, () => {
  const ci = /^NODE_VERSION=(\S+)$/m.exec(read('.ci/run'))?.[1];
  assert.equal(process.versions.node, ci);
});
