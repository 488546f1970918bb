/**
 * What the function app is made of, as Azure's Node.js v4 model loads it: package.json `main` names the compiled
 * function files, and each of them reaches the rest of the compiled code and the production dependencies through
 * `require`. `npm run package` ships exactly that set; its test loads it back.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire, isBuiltin } from 'node:module';
import { join, relative, sep } from 'node:path';
import ts from 'typescript';

/** The repository root (this file is compiled to dist/deploy/functionApp.js). */
export const PROJECT_ROOT = join(__dirname, '..', '..');

/** Where `npm run package` writes by default, relative to the repository; azure.yaml's `dist` is its staged app. */
export const PACKAGE_OUT_DIR = '.package';
/** The staged app inside the output folder: what the archive holds. */
export const STAGED_APP_DIR = 'app';

/** Where tsc writes (tsconfig.json `outDir`; `rootDir` is the repository root). */
const OUT_DIR = 'dist';
/** Compiled folders production code must never reach. */
const NOT_PRODUCTION = ['dev', 'test', 'bench'].map((d) => `${OUT_DIR}/${d}/`);
/**
 * Modules the Azure Functions Node.js worker provides by intercepting `require`, not installable from npm
 * (Azure/azure-functions-nodejs-worker, src/setupCoreModule.ts). Production code may ask for them; nothing ships.
 */
const WORKER_PROVIDED = new Set(['@azure/functions-core']);

export interface PackageJson {
  name: string;
  version: string;
  main?: string;
  dependencies?: Record<string, string>;
}

export function readPackageJson(root: string = PROJECT_ROOT): PackageJson {
  return JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as PackageJson;
}

/**
 * The files package.json `main` names, relative to `root`. The Functions host loads every file the glob matches
 * (Azure Functions Node.js developer guide, "Folder structure": https://learn.microsoft.com/azure/azure-functions/functions-reference-node#folder-structure);
 * only the `<folder>/*.js` form is used here, so only that form is accepted.
 */
export function mainEntryFiles(root: string, main: string | undefined): string[] {
  const m = /^((?:[\w.-]+\/)*[\w.-]+)\/\*\.js$/.exec(main ?? '');
  if (!m?.[1])
    throw new Error(`package.json main must be a "<folder>/*.js" glob, not ${JSON.stringify(main)}`);
  const dir = m[1];
  return readdirSync(join(root, dir), { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.js'))
    .map((e) => `${dir}/${e.name}`)
    .sort();
}

/** The names of the functions, one per file in functions/ (each declares the function it is named after). */
export function functionSourceNames(root: string = PROJECT_ROOT): string[] {
  return readdirSync(join(root, 'functions'))
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -'.ts'.length))
    .sort();
}

export interface ProductionSet {
  /** Compiled files (and the JSON they import), relative to the root, forward slashes, sorted. */
  files: string[];
  /** The npm packages production code imports by name, sorted. */
  packages: string[];
}

/**
 * Follows every `require()` and `import()` from the entry files through the compiled code. Fails, naming each
 * offending file, when production code reaches dev/, test/ or bench/, anything outside the compiled output, or a
 * package that is not in package.json `dependencies` (it would be missing from the deployed app, or be there only
 * by accident, as some production package's own dependency).
 */
export function productionSet(root: string, entries: string[], dependencies: Set<string>): ProductionSet {
  const files = new Set<string>();
  const packages = new Set<string>();
  const problems: string[] = [];
  const pending = [...entries];
  for (let file = pending.pop(); file !== undefined; file = pending.pop()) {
    if (files.has(file)) continue;
    files.add(file);
    if (!file.endsWith('.js')) continue;
    const absolute = join(root, file);
    const resolveFrom = createRequire(absolute);
    const imports = ts.preProcessFile(readFileSync(absolute, 'utf8'), true, true).importedFiles;
    for (const { fileName: specifier } of imports) {
      if (isBuiltin(specifier) || WORKER_PROVIDED.has(specifier)) continue;
      if (specifier.startsWith('.') || specifier.startsWith('/')) {
        let target: string;
        try {
          target = relative(root, resolveFrom.resolve(specifier)).split(sep).join('/');
        } catch {
          problems.push(`${file} imports ${specifier}, which does not exist`);
          continue;
        }
        if (!target.startsWith(`${OUT_DIR}/`))
          problems.push(`${file} imports ${target}, outside the compiled output`);
        else if (NOT_PRODUCTION.some((d) => target.startsWith(d)))
          problems.push(
            `${file} imports ${target}: production code must not import ${target.split('/')[1]}/`,
          );
        else pending.push(target);
        continue;
      }
      const parts = specifier.split('/');
      const name = specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
      if (!dependencies.has(name))
        problems.push(`${file} imports ${name}, which is not in package.json dependencies`);
      else packages.add(name);
    }
  }
  if (problems.length)
    throw new Error(`production code reaches what it must not:\n  ${problems.join('\n  ')}`);
  return { files: [...files].sort(), packages: [...packages].sort() };
}

/**
 * The entry files of the function app: what `main` matches, checked against functions/. A compiled file whose source
 * was deleted (tsc does not clean dist/) is left out, with a note; a function whose compiled file `main` does not
 * reach is an error.
 */
export function functionEntries(root: string, pkg: PackageJson, note: (line: string) => void): string[] {
  const matched = mainEntryFiles(root, pkg.main);
  const names = functionSourceNames(root);
  const expected = new Set(names.map((n) => `${OUT_DIR}/functions/${n}.js`));
  const missing = [...expected].filter((f) => !matched.includes(f));
  if (missing.length)
    throw new Error(
      `package.json main (${pkg.main}) does not reach ${missing.join(', ')}: run npm run build, or fix main`,
    );
  for (const stale of matched.filter((f) => !expected.has(f)))
    note(
      `left out ${stale}: no source functions/${stale.split('/').pop()!.replace(/\.js$/, '.ts')} (a stale build)`,
    );
  return matched.filter((f) => expected.has(f));
}
