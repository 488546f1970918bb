/**
 * `npm run package` builds what `azd deploy` ships. This unpacks the archive in a fresh folder outside the
 * repository and loads every function from it in a separate node process that sees nothing but the archive's
 * contents: a production file importing a dev dependency (or dev/ code) fails here, as it would in Azure.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { after, test } from 'node:test';
import yauzl from 'yauzl';
import { functionSourceNames, mainEntryFiles, PROJECT_ROOT } from '../../deploy/functionApp';

const scratch: string[] = [];
after(() => scratch.forEach((d) => rmSync(d, { recursive: true, force: true })));

function freshDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  scratch.push(dir);
  return dir;
}

/** Extracts every entry; yauzl refuses absolute paths and `..` in entry names. Resolves with the file names. */
function unzip(archive: string, dest: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(archive, { lazyEntries: true }, (err, zip) => {
      if (err) return reject(err);
      const names: string[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(names));
      zip.on('entry', (entry: yauzl.Entry) => {
        const target = join(dest, entry.fileName);
        mkdirSync(dirname(target), { recursive: true });
        zip.openReadStream(entry, (e, stream) => {
          if (e) return reject(e);
          pipeline(stream, createWriteStream(target)).then(() => {
            names.push(entry.fileName);
            zip.readEntry();
          }, reject);
        });
      });
      zip.readEntry();
    });
  });
}

/** Run in the unpacked folder: requires each entry file, then reports the declared functions and what was loaded. */
const LOADER = `
const path = require('node:path');
for (const f of JSON.parse(process.argv[1])) require(path.resolve(f));
const { declaredFunctions } = require(path.resolve('dist/shared/hosting/declare.js'));
const { runningVersion } = require(path.resolve('dist/shared/version.js'));
console.log('LOADED ' + JSON.stringify({
  names: declaredFunctions().map((d) => d.name).sort(),
  version: runningVersion(),
  loadedFrom: [...new Set(Object.keys(require.cache).map((f) => path.relative(process.cwd(), f).split(path.sep).slice(0, 2).join('/')))].sort(),
}));
`;

test('the package loads every function from a fresh folder with production dependencies only', async () => {
  const out = freshDir('jit-package-');
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as {
    name: string;
    version: string;
    main: string;
    devDependencies: Record<string, string>;
  };
  // As a person runs it with node: npm from PATH, not the npm running this test.
  const env = { ...process.env };
  delete env.npm_execpath;
  const run = spawnSync(
    process.execPath,
    [join(PROJECT_ROOT, 'dist', 'deploy', 'package.js'), '--out', out],
    {
      encoding: 'utf8',
      env,
      timeout: 300_000,
    },
  );
  assert.equal(run.status, 0, `npm run package failed:\n${run.stdout}\n${run.stderr}`);
  const lines = run.stdout.trim().split('\n');
  const archive = lines.at(-1)!;
  assert.equal(archive, join(out, `${pkg.name}-${pkg.version}.zip`), 'the last line is the archive');
  assert.match(run.stdout, /^archive \d+\.\d MB$/m, 'the size is reported');

  const root = freshDir('jit-unpacked-');
  const names = await unzip(archive, root);
  assert.ok(names.includes('host.json') && names.includes('package.json'));
  const compiledDirs = new Set(names.filter((n) => n.startsWith('dist/')).map((n) => n.split('/')[1]));
  assert.deepEqual([...compiledDirs].sort(), ['functions', 'schemas', 'shared']);

  // Nothing the lock file marks as dev-only was installed.
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean }>;
  };
  const devOnly = Object.entries(lock.packages).filter(([p, info]) => p && info.dev);
  assert.ok(devOnly.length > 0);
  assert.deepEqual(
    devOnly.map(([p]) => p).filter((p) => existsSync(join(root, p))),
    [],
    'dev dependencies in the package',
  );
  for (const dev of Object.keys(pkg.devDependencies)) {
    if (lock.packages[`node_modules/${dev}`]?.dev)
      assert.ok(!existsSync(join(root, 'node_modules', dev)), dev);
  }

  // Only PATH: no NODE_PATH or NODE_OPTIONS from this process reaches the repository's node_modules.
  const entries = mainEntryFiles(root, pkg.main);
  const load = spawnSync(process.execPath, ['-e', LOADER, JSON.stringify(entries)], {
    cwd: root,
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '' },
    timeout: 60_000,
  });
  assert.equal(load.status, 0, `loading the functions failed:\n${load.stderr}`);
  const report = JSON.parse(/^LOADED (.*)$/m.exec(load.stdout)?.[1] ?? 'null') as {
    names: string[];
    version: { version: string; commit?: string };
    loadedFrom: string[];
  };
  // What GET /api/health will report: the commit, when the work tree is exactly that commit (as in CI's clone).
  const git = (args: string[]) => execFileSync('git', args, { cwd: PROJECT_ROOT, encoding: 'utf8' }).trim();
  const clean = git(['status', '--porcelain', '--untracked-files=no']) === '';
  assert.deepEqual(
    report.version,
    clean ? { version: pkg.version, commit: git(['rev-parse', 'HEAD']) } : { version: pkg.version },
  );
  assert.deepEqual(report.names, functionSourceNames(), 'declared functions = files in functions/');
  assert.deepEqual(
    report.loadedFrom.filter((d) => d.startsWith('..')),
    [],
    'every module came from the unpacked folder',
  );
  assert.ok(
    report.loadedFrom.includes('dist/functions') && report.loadedFrom.includes('node_modules/@azure'),
  );
});
