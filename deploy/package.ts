/**
 * `npm run package`: the archive `azd deploy` ships to the Flex Consumption function app.
 *
 * It stages, in `<out>/app`, exactly what the Functions host needs: the compiled files the functions reach (from
 * package.json `main`, see functionApp.ts), host.json, package.json with its lock file, and the production
 * dependencies, installed there by `npm ci --omit=dev` so the lock file decides their versions, and build.json naming
 * the commit (for GET /api/health) when the work tree is that commit. Then it zips that
 * folder to `<out>/<name>-<version>.zip` and prints the archive's path as its last line. azure.yaml runs this
 * before azd packages the service and points azd at `<out>/app` (docs/deploy.md).
 *
 * Options: `--out <dir>` (default `.package` in the repository).
 */
import { execFileSync } from 'node:child_process';
import {
  copyFileSync,
  createWriteStream,
  mkdirSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { parseArgs } from 'node:util';
import { ZipFile } from 'yazl';
import {
  functionEntries,
  PACKAGE_OUT_DIR,
  PROJECT_ROOT,
  productionSet,
  readPackageJson,
  STAGED_APP_DIR,
} from './functionApp';

/** Every entry gets this time, so the archive does not depend on when it was built. */
const ENTRY_TIME = new Date(Date.UTC(2000, 0, 1));

/** The files next to the compiled code that the host reads. */
const HOST_FILES = ['host.json', 'package.json', 'package-lock.json'];

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { out: { type: 'string' } } });
  const out = resolve(values.out ?? join(PROJECT_ROOT, PACKAGE_OUT_DIR));
  const note = (line: string) => console.log(line);

  const pkg = readPackageJson();
  const entries = functionEntries(PROJECT_ROOT, pkg, note);
  const { files, packages } = productionSet(
    PROJECT_ROOT,
    entries,
    new Set(Object.keys(pkg.dependencies ?? {})),
  );
  note(`${entries.length} functions reach ${files.length} compiled files and ${packages.length} packages`);
  // Shipped all the same (npm ci --omit=dev installs every dependency): a dev-only tool listed here by mistake shows.
  const unused = Object.keys(pkg.dependencies ?? {}).filter((d) => !packages.includes(d));
  if (unused.length) note(`in dependencies, not imported by the function app: ${unused.join(', ')}`);

  const stage = join(out, STAGED_APP_DIR);
  rmSync(stage, { recursive: true, force: true });
  for (const file of [...files, ...HOST_FILES]) {
    mkdirSync(dirname(join(stage, file)), { recursive: true });
    copyFileSync(join(PROJECT_ROOT, file), join(stage, file));
  }
  const commit = builtFrom(note);
  if (commit) writeFileSync(join(stage, 'build.json'), `${JSON.stringify({ commit })}\n`);
  // The lock file's production subset, as npm ci installs it (and nothing it has already cached is fetched again).
  // The function app is the root package alone: a workspace (a CLI of its own) is not staged and not installed.
  npm(['ci', '--omit=dev', '--workspaces=false', '--no-audit', '--no-fund', '--prefer-offline'], stage);

  const staged = listFiles(stage);
  const unpacked = staged.reduce((sum, f) => sum + statSync(join(stage, f)).size, 0);
  const archive = join(out, `${pkg.name}-${pkg.version}.zip`);
  await writeZip(stage, staged, archive);
  note(`staged ${staged.length} files (${megabytes(unpacked)} unpacked) in ${stage}`);
  note(`archive ${megabytes(statSync(archive).size)}`);
  console.log(archive);
}

/**
 * The commit the archive is built from, which GET /api/health reports (shared/version.ts reads build.json). None when
 * tracked files differ from it, since the archive would then not be that commit, nor outside a git checkout.
 */
function builtFrom(note: (line: string) => void): string | undefined {
  const git = (args: string[]) =>
    execFileSync('git', args, {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  try {
    const commit = git(['rev-parse', 'HEAD']);
    if (git(['status', '--porcelain', '--untracked-files=no'])) {
      note(`no commit recorded: the work tree differs from ${commit.slice(0, 12)}`);
      return undefined;
    }
    note(`built from commit ${commit}`);
    return commit;
  } catch {
    note('no commit recorded: not a git checkout');
    return undefined;
  }
}

/** npm itself: the one running this script when there is one (npm run package), else the one on PATH. */
function npm(args: string[], cwd: string): void {
  const cli = process.env.npm_execpath;
  const [command, argv] = cli ? [process.execPath, [cli, ...args]] : ['npm', args];
  // npm's output goes to stderr: stdout ends with the archive's path, for scripts that read it.
  execFileSync(command, argv, { cwd, stdio: ['ignore', 2, 2], shell: !cli && process.platform === 'win32' });
}

/**
 * Every file under `dir`, relative, forward slashes, sorted. Symbolic links are left out: npm links package
 * binaries into node_modules/.bin, which a function app never runs, and a zip would store the target's bytes twice.
 */
function listFiles(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...listFiles(dir, rel));
    else if (e.isFile()) out.push(rel);
  }
  return out.sort();
}

async function writeZip(root: string, files: string[], archive: string): Promise<void> {
  const zip = new ZipFile();
  for (const f of files)
    zip.addFile(join(root, f), f, { mtime: ENTRY_TIME, mode: statSync(join(root, f)).mode });
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(archive));
}

function megabytes(bytes: number): string {
  return `${(bytes / 1_000_000).toFixed(1)} MB`;
}

main().catch((err: unknown) => {
  console.error(`npm run package: ${err instanceof Error ? err.message : String(err)}`);
  process.exit(1);
});
