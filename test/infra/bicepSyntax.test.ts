/**
 * Syntax check of every Bicep file under infra/. No Bicep compiler can run here, so this is what catches a broken
 * brace or string before `azd up` does: tree-sitter-bicep (WebAssembly) parses each file, and any ERROR or MISSING
 * node fails the test with the file, line and column.
 *
 * It checks syntax only. Types, resource schemas, API versions and scope rules are what `az bicep build` adds;
 * docs/deploy.md lists that as the first step before a production deployment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  abiCompatibility,
  bicepParser,
  formatSyntaxProblem,
  listBicepFiles,
  REPO_ROOT,
  syntaxProblems,
} from './bicepModel';

async function problemsIn(text: string, file: string): Promise<string[]> {
  const { parser } = await bicepParser();
  const tree = parser.parse(text);
  assert.ok(tree, `tree-sitter returned no tree for ${file}`);
  return syntaxProblems(tree, file).map(formatSyntaxProblem);
}

void test('the Bicep grammar is built for an ABI this web-tree-sitter can load', async () => {
  const { language } = await bicepParser();
  const abi = abiCompatibility(language);
  assert.ok(
    abi.compatible,
    `tree-sitter-bicep.wasm has ABI ${abi.grammar}; web-tree-sitter loads ABI ${abi.min}-${abi.max}. Pin versions that agree; do not swap the parser silently.`,
  );
});

void test('every .bicep file under infra/ parses without a syntax error', async () => {
  const files = listBicepFiles();
  // main.bicep and its modules: an empty list would make this test pass for the wrong reason.
  assert.ok(
    files.includes('infra/main.bicep') && files.length >= 10,
    `expected infra/main.bicep and its modules, found ${files.join(', ')}`,
  );
  const problems: string[] = [];
  for (const file of files)
    problems.push(...(await problemsIn(fs.readFileSync(path.join(REPO_ROOT, file), 'utf8'), file)));
  assert.deepEqual(problems, [], `Bicep syntax errors:\n${problems.join('\n')}`);
});

void test('the syntax check reports a broken file with its line and column', async () => {
  const broken = [
    "param location string = 'westeurope'",
    '',
    "resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {",
    '  name: ',
    '  location: location',
    '',
  ].join('\n');
  const problems = await problemsIn(broken, 'infra/broken.bicep');
  assert.ok(problems.length > 0, 'a resource with a property missing its value must not pass');
  assert.match(problems[0]!, /^infra\/broken\.bicep:\d+:\d+: /);
  // The missing value (line 4) or the missing closing brace (end of file): either way, not line 1.
  assert.ok(
    problems.every((p) => !p.startsWith('infra/broken.bicep:1:')),
    problems.join('\n'),
  );

  const unterminated = await problemsIn(
    "var name = 'no closing quote\noutput n string = name\n",
    'infra/unterminated.bicep',
  );
  assert.ok(unterminated.length > 0, 'an unterminated string must not pass');
});
