import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..', '..', '..');

/** The `Test` cells of docs/security.md's threat table: a file in backticks, then a test's title in quotes. */
function citedTests(doc: string): Array<{ file: string; title: string; line: number }> {
  const out: Array<{ file: string; title: string; line: number }> = [];
  doc.split('\n').forEach((line, i) => {
    const m = /`(test\/[^`]+\.test\.ts)` "([^"]+)"\s*\|\s*$/.exec(line);
    if (m) out.push({ file: m[1]!, title: m[2]!, line: i + 1 });
  });
  return out;
}

test('every test docs/security.md cites for a threat exists, under that title', () => {
  const doc = readFileSync(join(ROOT, 'docs', 'security.md'), 'utf8');
  const cited = citedTests(doc);
  const rows = doc.split('\n').filter((l) => /^\| .+ \| .+ \| `test\//.test(l));
  assert.ok(cited.length >= 25, `found ${cited.length} cited tests`);
  assert.equal(cited.length, rows.length, 'every row of the threat table names its test as `file` "title"');
  for (const c of cited) {
    const file = join(ROOT, c.file);
    assert.ok(existsSync(file), `docs/security.md:${c.line} cites ${c.file}, which does not exist`);
    const source = readFileSync(file, 'utf8');
    // The title as written in a test(...) call, in any of the three quotes.
    const quoted = ["'", '`', '"'].some(
      (q) => source.includes(`test(${q}${c.title}${q}`) || source.includes(`test(\n    ${q}${c.title}${q}`),
    );
    assert.ok(quoted, `docs/security.md:${c.line} cites "${c.title}", which ${c.file} does not define`);
  }
});
