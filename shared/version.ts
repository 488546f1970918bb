/**
 * The version this app runs: package.json's `version`, and the commit it was built from where the deployed package
 * records one in `build.json` (`{ "commit": "<git sha>" }`) beside package.json. A build from a work tree has none.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface RunningVersion {
  version: string;
  commit?: string;
}

/** The package root: this file runs as dist/shared/version.js. */
const PACKAGE_ROOT = join(__dirname, '..', '..');

let known: RunningVersion | undefined;

export function runningVersion(): RunningVersion {
  known ??= readVersion(PACKAGE_ROOT);
  return known;
}

export function readVersion(root: string): RunningVersion {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version?: unknown };
  const version = typeof pkg.version === 'string' ? pkg.version : 'unknown';
  let build: { commit?: unknown } = {};
  try {
    build = JSON.parse(readFileSync(join(root, 'build.json'), 'utf8')) as typeof build;
  } catch {
    // No build.json (or not JSON): a build from a work tree, which names no commit.
  }
  const commit =
    typeof build.commit === 'string' && /^[0-9a-f]{7,40}$/i.test(build.commit) ? build.commit : undefined;
  return commit ? { version, commit } : { version };
}
