/**
 * README.md and docs/ against the code, so that a rename or a new setting, event, parameter, option or problem
 * type that the docs do not follow fails here: policy snippets against the schema, the audit table against the
 * vocabulary, settings against SETTINGS and infra/, deploy.md against main.bicep, docs/cli.md against the `jit`
 * command tree, problem types against docs/api.md's headings.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { buildProgram } from '../../cli/jit';
import { CLI_DOCS } from '../../cli/errors';
import { SETTINGS as CLI_SETTINGS } from '../../cli/settings';
import { SETTINGS } from '../../shared/config';
import { AUDIT_ACTIONS } from '../../shared/domain/auditActions';
import * as errors from '../../shared/domain/errors';
import { parsePolicyDocument } from '../../shared/domain/policyDocument';
import { toProblem } from '../../shared/http/problem';
import { loadBicep, REPO_ROOT } from '../infra/bicepModel';
import { appSettingsOf, HOST_ONLY, NOT_IN_AZURE } from '../infra/rules';
import { listBicepFiles } from '../infra/bicepModel';

const DOC_FILES = ['README.md', ...readdirSync(join(REPO_ROOT, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
);
const read = (file: string) => readFileSync(join(REPO_ROOT, file), 'utf8');

interface Block {
  file: string;
  line: number;
  lang: string;
  text: string;
}

/** Fenced code blocks, with their language and first line. */
export function codeBlocks(file: string, markdown = read(file)): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w*)/.exec(lines[i]!);
    if (!open) continue;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && !/^\s*```\s*$/.test(lines[j]!); j++)
      body.push(lines[j]!.slice(open[1]!.length));
    blocks.push({ file, line: i + 1, lang: open[2] ?? '', text: body.join('\n') });
    i = j;
  }
  return blocks;
}

/** The text outside fenced blocks. */
function prose(markdown: string): string {
  return markdown.replace(/^\s*```[\s\S]*?^\s*```\s*$/gm, '');
}

/** Inline code spans (`…`) outside fenced blocks. */
function inlineCode(markdown: string): string[] {
  return [...prose(markdown).matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
}

/** The rows of every table whose header's first cell matches, as cells. */
function tableRows(markdown: string, firstHeader: RegExp): string[][] {
  const rows: string[][] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const cells = splitRow(lines[i]!);
    if (!cells || !firstHeader.test(cells[0] ?? '') || !/^\|\s*-/.test(lines[i + 1] ?? '')) continue;
    for (let j = i + 2; j < lines.length; j++) {
      const row = splitRow(lines[j]!);
      if (!row) break;
      rows.push(row);
    }
  }
  return rows;
}

function splitRow(line: string): string[] | undefined {
  if (!line.trim().startsWith('|')) return undefined;
  return line
    .trim()
    .replace(/^\||\|$/g, '')
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  return new Set([...read(file).matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchor(m[1]!)));
}

describe('policy snippets', () => {
  /**
   * What the docs write in angle brackets, as values the schema takes. A placeholder not listed here fails, so a
   * new one is a conscious choice.
   */
  const PLACEHOLDERS: Record<string, string> = {
    '<id>': '00000000-0000-0000-0000-000000000001',
    '<subscription id>': '00000000-0000-0000-0000-000000000001',
    '<Entra group object id>': '11111111-1111-1111-1111-111111111111',
    '<group object id>': '11111111-1111-1111-1111-111111111111',
    '<sub-id>': '00000000-0000-0000-0000-000000000001',
    '<vm>': 'vm1',
    '<you>@<your domain>': 'you@example.com',
  };
  /** What only a policy holds (an `approval` key alone is also in /api/health's features). */
  const POLICY_FIELD =
    /\b(maxDuration|allowedSourcePrefixes|requesters|approvers)\b|"?mode"?\s*:\s*"?(manual|auto)\b/;

  test('every YAML or JSON block that shows a policy is a whole document the schema accepts', () => {
    const checked: string[] = [];
    for (const file of DOC_FILES) {
      for (const b of codeBlocks(file)) {
        if (!/^(ya?ml|json|jsonc)$/.test(b.lang) || !POLICY_FIELD.test(b.text)) continue;
        const where = `${b.file}:${b.line}`;
        let text = b.text;
        for (const [placeholder, value] of Object.entries(PLACEHOLDERS))
          text = text.split(placeholder).join(value);
        assert.doesNotMatch(text, /<[^>\s]+( [^>]+)*>/, `${where}: a placeholder this test does not know`);
        assert.match(text, /^\s*("policies"|policies)\s*:/m, `${where}: show a whole document (policies: …)`);
        assert.doesNotThrow(
          () => parsePolicyDocument(text, { source: where, maxDurationInSeconds: 86400 }),
          `${where} is refused by the schema`,
        );
        checked.push(where);
      }
    }
    assert.ok(checked.length >= 3, `policy snippets found: ${checked.join(', ')}`);
  });

  test('a policy fragment written inline names only fields the schema has', () => {
    const schema = JSON.parse(read('schemas/policies.schema.json')) as unknown;
    const known = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (typeof node !== 'object' || node === null) return;
      for (const [k, v] of Object.entries(node)) {
        if (k === 'properties' && typeof v === 'object' && v !== null)
          Object.keys(v).forEach((p) => known.add(p));
        walk(v);
      }
    };
    walk(schema);
    const unknown: string[] = [];
    for (const file of DOC_FILES) {
      for (const span of inlineCode(read(file))) {
        if (!/^"?approval"?\s*:\s*\{|^"?ports"?\s*:\s*\[/.test(span)) continue;
        for (const m of span.matchAll(/"?([A-Za-z]+)"?\s*:/g)) {
          if (!known.has(m[1]!)) unknown.push(`${file}: \`${span}\` names ${m[1]}`);
        }
      }
    }
    assert.deepEqual(unknown, []);
  });
});

describe('audit actions', () => {
  test("docs/audit.md's table of actions is the vocabulary of shared/domain/auditActions.ts", () => {
    const documented = tableRows(read('docs/audit.md'), /^`action`$/).map((r) => r[0]!.replace(/`/g, ''));
    assert.deepEqual([...documented].sort(), Object.keys(AUDIT_ACTIONS).sort());
    assert.equal(new Set(documented).size, documented.length, 'each action once');
  });

  test('every audit action the docs name or filter on is in the vocabulary', () => {
    const wrong: string[] = [];
    for (const file of DOC_FILES) {
      const text = read(file);
      for (const m of text.matchAll(/action eq '([^']+)'/g)) {
        if (!(m[1]! in AUDIT_ACTIONS)) wrong.push(`${file}: filters on ${m[1]}`);
      }
      for (const row of tableRows(text, /^`?action`?$/)) {
        for (const m of row[0]!.matchAll(/`([^`]+)`/g)) {
          if (!(m[1]! in AUDIT_ACTIONS)) wrong.push(`${file}: lists ${m[1]}`);
        }
      }
    }
    assert.deepEqual(wrong, []);
  });
});

describe('settings', () => {
  /** What the command line and the sandbox read: environment variables, not app settings. */
  const NOT_APP_SETTINGS = new Set([
    ...Object.values(CLI_SETTINGS).map((s) => s.env),
    'JIT_PROFILE',
    // What npm start reads (its ports, its data folder), as dev/start.ts names them.
    ...[...read('dev/start.ts').matchAll(/JIT_SANDBOX_[A-Z_]+/g)].map((m) => m[0]),
    // What npm run smoke reads besides the API's own settings, as deploy/smoke.ts names them.
    ...[...read('deploy/smoke.ts').matchAll(/\.env\('(JIT_[A-Z_]+)'\)/g)].map((m) => m[1]!),
    // Set by App Service itself when its authentication is on (the app checks it; nobody sets it).
    'WEBSITE_AUTH_ENABLED',
  ]);
  /** `npm run bench` reads its own variables (bench/). */
  const BENCH = /^JIT_BENCH_/;
  const SETTING_NAME =
    /^(JIT_[A-Z0-9_]+|AZURE_[A-Z_]+|AzureWebJobs\w+|ServiceBusConnection(__\w+)?|APPLICATIONINSIGHTS_\w+|WEBSITE_\w+|OVERRIDE_\w+|FUNCTIONS_\w+)$/;
  /** azd environment variables that feed Bicep parameters (infra/main.parameters.json), not app settings. */
  const azdVariables = (): Set<string> =>
    new Set([...read('infra/main.parameters.json').matchAll(/\$\{([A-Z_]+)/g)].map((m) => m[1]!));

  /** Every setting name the docs write in code, with `__x` after a name read as that name's `__x`. */
  function documentedSettings(): Map<string, string> {
    const found = new Map<string, string>();
    for (const file of DOC_FILES) {
      for (const block of read(file).split('\n')) {
        let prefix = '';
        for (const m of block.matchAll(/`([A-Za-z_][\w]*)(=[^`]*)?`/g)) {
          let name = m[1]!;
          if (name.startsWith('__') && prefix) name = `${prefix}${name}`;
          else if (name.includes('__')) prefix = name.slice(0, name.indexOf('__'));
          else prefix = name;
          if (SETTING_NAME.test(name) && !found.has(name)) found.set(name, file);
        }
      }
    }
    return found;
  }

  test("every setting the docs name is read by the code (SETTINGS) or is the host's, the CLI's or the sandbox's", () => {
    const azd = azdVariables();
    const unknown = [...documentedSettings()]
      .filter(
        ([name]) =>
          !(name in SETTINGS) &&
          !(name in HOST_ONLY) &&
          !NOT_APP_SETTINGS.has(name) &&
          !BENCH.test(name) &&
          !azd.has(name) &&
          !/^AZURE_(ENV_NAME|LOCATION|SUBSCRIPTION_ID|MANAGED_IDENTITY_\w+|FUNCTION_\w+|RESOURCE_GROUP)$/.test(
            name,
          ),
      )
      .map(([name, file]) => `${name} (${file})`);
    assert.deepEqual(unknown, []);
  });

  test("every setting of SETTINGS is in README's configuration table, and set in infra/ unless it must not be", async () => {
    const table = new Set<string>();
    for (const row of tableRows(read('README.md'), /^Setting$/)) {
      let prefix = '';
      for (const m of row[0]!.matchAll(/`([\w]+)`/g)) {
        let name = m[1]!;
        if (name.startsWith('__') && prefix) name = `${prefix}${name}`;
        else prefix = name.includes('__') ? name.slice(0, name.indexOf('__')) : name;
        table.add(name);
      }
    }
    const connectionStrings = new Set(Object.keys(NOT_IN_AZURE).filter((k) => !k.startsWith('JIT_')));
    const missing = Object.keys(SETTINGS).filter((k) => !table.has(k) && !connectionStrings.has(k));
    assert.deepEqual(missing, [], 'documented in README.md#configuration');
    const extra = [...table].filter((k) => !(k in SETTINGS));
    assert.deepEqual(extra, [], "in README's table but not read by the code");

    const files = await Promise.all(listBicepFiles().map((f) => loadBicep(f)));
    const app = appSettingsOf(files);
    assert.ok(app, 'the Function App sets app settings');
    const documented = documentedSettings();
    const notInInfra = [...documented.keys()].filter(
      (k) => k in SETTINGS && !(k in NOT_IN_AZURE) && !app.settings.has(k),
    );
    assert.deepEqual(notInInfra, [], 'documented settings the deployment does not set');
    const undocumented = [...app.settings.keys()].filter((k) => !documented.has(k));
    assert.deepEqual(undocumented, [], 'app settings infra/ sets that no doc names');
  });
});

describe('deployment parameters', () => {
  test("docs/deploy.md's parameter table is main.bicep's parameters, with main.parameters.json's azd variables", async () => {
    const main = await loadBicep('infra/main.bicep');
    const rows = tableRows(read('docs/deploy.md'), /^Parameter$/);
    const documented = rows.map((r) => r[0]!.replace(/`/g, ''));
    assert.deepEqual([...documented].sort(), main.params.map((p) => p.name).sort());
    const mapping = JSON.parse(read('infra/main.parameters.json')) as {
      parameters: Record<string, { value: unknown }>;
    };
    for (const row of rows) {
      const name = row[0]!.replace(/`/g, '');
      const value = mapping.parameters[name]?.value;
      const variable = typeof value === 'string' ? /^\$\{([A-Z_]+)/.exec(value)?.[1] : undefined;
      assert.equal(row[1]!.replace(/`/g, ''), variable ?? '—', `${name}: azd variable`);
    }
  });
});

describe('docs/cli.md', () => {
  const program = buildProgram({ out: () => undefined, err: () => undefined, env: {} }, () => undefined);
  const doc = read('docs/cli.md');
  const visible = (c: Command) => c.commands.filter((s) => !['complete'].includes(s.name()));

  /** Each command with its path (`policy apply`), depth first. */
  function commands(c: Command, path: string[] = []): Array<{ path: string; command: Command }> {
    return visible(c).flatMap((s) => [
      { path: [...path, s.name()].join(' '), command: s },
      ...commands(s, [...path, s.name()]),
    ]);
  }

  /** The text from a heading naming `jit <path>` to the next heading of the same or a higher level. */
  function section(path: string): string | undefined {
    const lines = doc.split('\n');
    const start = lines.findIndex((l) => new RegExp(`^#{2,4} \`jit ${path}( [^\`]*)?\``).test(l));
    if (start < 0) return undefined;
    const level = /^#+/.exec(lines[start]!)![0].length;
    const end = lines.findIndex((l, i) => i > start && /^#+ /.test(l) && /^#+/.exec(l)![0].length <= level);
    return lines.slice(start, end < 0 ? undefined : end).join('\n');
  }

  test('every command has a section, and every option of it is in that section', () => {
    const missing: string[] = [];
    for (const { path, command } of commands(program)) {
      const parent = path.includes(' ') ? section(path.split(' ')[0]!) : undefined;
      const text = section(path) ?? (parent?.includes(`jit ${path}`) ? parent : undefined);
      if (!text) {
        missing.push(`jit ${path}: no section`);
        continue;
      }
      for (const o of command.options) {
        if (o.long && !o.hidden && !text.includes(o.long)) missing.push(`jit ${path}: ${o.long}`);
      }
    }
    assert.deepEqual(missing, []);
  });

  test('every global option is in the settings table, and every exit code in the exit code table', () => {
    const settings = tableRows(doc, /^Setting$/)
      .map((r) => r[0]!)
      .join(' ');
    const missing = program.options.filter((o) => o.long && !settings.includes(o.long)).map((o) => o.long);
    assert.deepEqual(missing, []);
    const codes = tableRows(doc, /^Code$/).map((r) => Number(r[0]));
    const exitSource = read('cli/exitCodes.ts');
    const inCode = [...exitSource.matchAll(/^\s+\w+: (\d+),/gm)].map((m) => Number(m[1]));
    assert.deepEqual(
      [...codes].sort((a, b) => a - b),
      [...inCode].sort((a, b) => a - b),
    );
  });
});

describe('problem types', () => {
  /** One instance of each error the domain defines; a new error class must be added here, and documented. */
  const SAMPLES: Record<string, () => errors.JitError> = {
    InvalidRequest: () => new errors.InvalidRequest([{ field: 'x', reason: 'y' }]),
    PolicyDocumentInvalid: () =>
      new errors.PolicyDocumentInvalid([
        { field: 'x', reason: 'y', source: 's', line: 1, column: 1, rule: 'r' },
      ]),
    RoleRequired: () => new errors.RoleRequired('Jit.Admin'),
    TooManyRequests: () => new errors.TooManyRequests('x', 1000),
    AccessAlreadyEnded: () => new errors.AccessAlreadyEnded('r', 'expired', 'x'),
    ApprovalClosed: () => new errors.ApprovalClosed('denied'),
    AccessNotAllowed: () => new errors.AccessNotAllowed('x', true),
  };

  test('every problem type the API answers has its anchor in docs/api.md', () => {
    const anchors = anchorsOf('docs/api.md');
    const classes = Object.entries(errors).filter(
      ([, v]) =>
        typeof v === 'function' && (v as { prototype: unknown }).prototype instanceof errors.JitError,
    ) as Array<[string, new (...args: unknown[]) => errors.JitError]>;
    assert.ok(classes.length > 10);
    const missing: string[] = [];
    for (const [name, C] of classes) {
      const sample = SAMPLES[name]?.() ?? new C('x');
      const type = toProblem(sample).jsonBody.type;
      const fragment = type.split('#')[1]!;
      assert.ok(type.includes('/docs/api.md#'), `${name}: ${type}`);
      if (!anchors.has(fragment)) missing.push(`${name} → #${fragment}`);
    }
    for (const fragment of ['internalerror', 'transientfailure']) {
      if (!anchors.has(fragment)) missing.push(`#${fragment}`);
    }
    assert.deepEqual(missing, []);
  });

  test("the CLI's own problem types have their anchors in docs/cli.md", () => {
    const anchors = anchorsOf('docs/cli.md');
    const source = read('cli/errors.ts') + read('cli/jit.ts');
    const fragments = [...source.matchAll(/\$\{CLI_DOCS\}#([a-z-]+)/g)].map((m) => m[1]!);
    assert.ok(fragments.length >= 4);
    assert.ok(CLI_DOCS.endsWith('docs/cli.md'));
    assert.deepEqual(
      fragments.filter((f) => !anchors.has(f)),
      [],
    );
  });
});
