/**
 * A small, read-only model of Bicep files, built from the tree-sitter-bicep parse tree. No Bicep compiler runs on
 * this machine (its every install route downloads a binary), so the infra tests read the Bicep source itself: the
 * syntax tree to find syntax errors, and the declarations (params, vars, resources, outputs) to check what is
 * provisioned against what the code expects.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Language, LANGUAGE_VERSION, MIN_COMPATIBLE_VERSION, Parser } from 'web-tree-sitter';
import type { Node, Tree } from 'web-tree-sitter';

/** The repository root, from the compiled location `dist/test/infra/`. */
export const REPO_ROOT = path.join(__dirname, '..', '..', '..');
export const INFRA_DIR = path.join(REPO_ROOT, 'infra');

export interface BicepParser {
  parser: Parser;
  language: Language;
}

let loading: Promise<BicepParser> | undefined;

/** The tree-sitter parser with the Bicep grammar, loaded once per process. */
export function bicepParser(): Promise<BicepParser> {
  loading ??= (async () => {
    await Parser.init();
    const language = await Language.load(require.resolve('tree-sitter-bicep/tree-sitter-bicep.wasm'));
    const parser = new Parser();
    parser.setLanguage(language);
    return { parser, language };
  })();
  return loading;
}

/** The ABI versions involved: a grammar loads only if its ABI lies within what the runtime supports. */
export function abiCompatibility(language: Language): {
  grammar: number;
  min: number;
  max: number;
  compatible: boolean;
} {
  const grammar = language.abiVersion;
  return {
    grammar,
    min: MIN_COMPATIBLE_VERSION,
    max: LANGUAGE_VERSION,
    compatible: grammar >= MIN_COMPATIBLE_VERSION && grammar <= LANGUAGE_VERSION,
  };
}

export interface SyntaxProblem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  kind: 'ERROR' | 'MISSING';
  near: string;
}

/** Every ERROR and MISSING node of a parse tree, outermost first. */
export function syntaxProblems(tree: Tree, file: string): SyntaxProblem[] {
  const problems: SyntaxProblem[] = [];
  const visit = (node: Node): void => {
    if (node.isError || node.isMissing) {
      problems.push({
        file,
        line: node.startPosition.row + 1,
        column: node.startPosition.column + 1,
        kind: node.isMissing ? 'MISSING' : 'ERROR',
        near: node.isMissing ? node.type : node.text.split('\n')[0]!.slice(0, 60),
      });
    }
    // Only subtrees that contain an error are worth descending into.
    for (const child of node.children) if (child.hasError || child.isMissing) visit(child);
  };
  visit(tree.rootNode);
  return problems;
}

export function formatSyntaxProblem(p: SyntaxProblem): string {
  return p.kind === 'MISSING'
    ? `${p.file}:${p.line}:${p.column}: missing ${p.near}`
    : `${p.file}:${p.line}:${p.column}: syntax error near "${p.near}"`;
}

/** Every .bicep file under a directory, as paths relative to the repository root, sorted. */
export function listBicepFiles(dir: string = INFRA_DIR): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const full = path.join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.name.endsWith('.bicep'))
        out.push(path.relative(REPO_ROOT, full).split(path.sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

// ---------------------------------------------------------------------------------------------------------------
// Declarations
// ---------------------------------------------------------------------------------------------------------------

export interface Decorated {
  name: string;
  node: Node;
  /** `@name(args)` decorators written above the declaration. */
  decorators: Node[];
}

export interface ParamDecl extends Decorated {
  hasDefault: boolean;
}

export interface ResourceDecl {
  symbol: string;
  /** Full type with API version, nested child types resolved (`Microsoft.ServiceBus/namespaces/queues@2024-01-01`). */
  type: string;
  existing: boolean;
  /** The resource body (the object inside any `for` or `if`). */
  body: Node;
  /** Loop variable and iterable of `[for x in xs: {...}]`. */
  loop?: { item: string; iterable: Node };
  node: Node;
}

export interface ModuleDecl extends Decorated {
  /** The module's path as written (`modules/storage.bicep`). */
  path: string;
  /** The module body (the object inside any `for` or `if`). */
  body: Node;
}

export interface BicepFile {
  /** Path relative to the repository root, forward slashes. */
  file: string;
  text: string;
  tree: Tree;
  targetScope: string;
  params: ParamDecl[];
  vars: Map<string, Node>;
  resources: ResourceDecl[];
  modules: ModuleDecl[];
  outputs: Decorated[];
}

/** Parses Bicep source into the model. `file` names it in messages. */
export async function parseBicep(text: string, file: string): Promise<BicepFile> {
  const { parser } = await bicepParser();
  const tree = parser.parse(text);
  if (!tree) throw new Error(`tree-sitter returned no tree for ${file}`);
  const model: BicepFile = {
    file,
    text,
    tree,
    targetScope: 'resourceGroup',
    params: [],
    vars: new Map(),
    resources: [],
    modules: [],
    outputs: [],
  };
  let decorators: Node[] = [];
  for (const node of tree.rootNode.namedChildren) {
    if (node.type === 'decorators') {
      decorators = node.namedChildren.filter((d) => d.type === 'decorator');
      continue;
    }
    // A comment between the decorators and their declaration still leaves them attached.
    if (node.type === 'comment') continue;
    const name = firstOfType(node, 'identifier')?.text ?? '';
    switch (node.type) {
      case 'target_scope_assignment':
        model.targetScope =
          stringValue(node.namedChildren.find((c) => c.type === 'string')) ?? model.targetScope;
        break;
      case 'parameter_declaration':
        // identifier, type, then the default value if there is one.
        model.params.push({
          name,
          node,
          decorators,
          hasDefault: node.namedChildren.filter((c) => c.type !== 'comment').length > 2,
        });
        break;
      case 'variable_declaration':
        model.vars.set(name, node.namedChildren[node.namedChildren.length - 1]!);
        break;
      case 'resource_declaration':
        collectResources(node, undefined, model.resources);
        break;
      case 'module_declaration':
        model.modules.push({
          name,
          node,
          decorators,
          path: stringValue(firstOfType(node, 'string')) ?? '',
          body: bodyOf(node),
        });
        break;
      case 'output_declaration':
        model.outputs.push({ name, node, decorators });
        break;
    }
    decorators = [];
  }
  return model;
}

/** Reads and parses a Bicep file of the repository. */
export async function loadBicep(file: string): Promise<BicepFile> {
  return parseBicep(fs.readFileSync(path.join(REPO_ROOT, file), 'utf8'), file);
}

function collectResources(node: Node, parent: ResourceDecl | undefined, out: ResourceDecl[]): void {
  const symbol = firstOfType(node, 'identifier')?.text ?? '';
  const declared = stringValue(firstOfType(node, 'string')) ?? '';
  const type = parent && !declared.includes('/') ? childType(parent.type, declared) : declared;
  const last = node.namedChildren[node.namedChildren.length - 1]!;
  const body = bodyOf(node);
  let loop: ResourceDecl['loop'];
  if (last.type === 'for_statement') {
    const ids = last.namedChildren.filter((c) => c.type === 'identifier');
    loop = {
      item: last.childForFieldName('initializer')?.text ?? ids[0]?.text ?? '',
      iterable: ids[1] ?? last.namedChildren[1]!,
    };
  }
  const existing = node.children.some((c) => c.type === 'existing' || c.text === 'existing');
  const decl: ResourceDecl = { symbol, type, existing, body, loop, node };
  out.push(decl);
  // Nested child resources: `resource q 'queues' = {...}` inside the parent's body.
  for (const prop of body.namedChildren) {
    const nested = prop.type === 'object_property' ? firstOfType(prop, 'resource_declaration') : undefined;
    if (nested) collectResources(nested, decl, out);
  }
}

/** The object body of a resource or module declaration, looking inside `[for ...: {...}]` and `if (...) {...}`. */
function bodyOf(node: Node): Node {
  const last = node.namedChildren[node.namedChildren.length - 1]!;
  if (last.type === 'for_statement') return last.childForFieldName('body') ?? last;
  if (last.type === 'if_statement') return firstOfType(last, 'object') ?? last;
  return last;
}

function childType(parentType: string, child: string): string {
  const [parentName, parentVersion] = parentType.split('@');
  const [childName, childVersion] = child.split('@');
  return `${parentName}/${childName}@${childVersion ?? parentVersion ?? ''}`;
}

function firstOfType(node: Node, type: string): Node | undefined {
  return node.namedChildren.find((c) => c.type === type);
}

// ---------------------------------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------------------------------

/** The value of a string literal without interpolation; undefined for anything else. */
export function stringValue(node: Node | null | undefined): string | undefined {
  if (!node || node.type !== 'string') return undefined;
  if (node.namedChildren.some((c) => c.type === 'interpolation')) return undefined;
  const inner = node.text.startsWith("'''") ? node.text.slice(3, -3) : node.text.slice(1, -1);
  return inner.replace(/\\(['\\$nrt])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? c);
}

/** The properties of an object literal, by key. */
export function objectProperties(node: Node | undefined): Map<string, Node> {
  const out = new Map<string, Node>();
  if (!node || node.type !== 'object') return out;
  for (const prop of node.namedChildren) {
    if (prop.type !== 'object_property') continue;
    const [key, value] = prop.namedChildren.filter((c) => c.type !== 'comment');
    if (!key || !value || value.type === 'resource_declaration') continue;
    out.set(key.type === 'string' ? (stringValue(key) ?? key.text) : key.text, value);
  }
  return out;
}

/** A property of an object literal by a dotted path (`properties.disableLocalAuth`). */
export function propertyAt(node: Node | undefined, dotted: string): Node | undefined {
  let current = node;
  for (const key of dotted.split('.')) current = objectProperties(current).get(key);
  return current;
}

/** Follows identifiers and `a.b` member accesses through the file's variables to the expression they stand for. */
export function resolve(file: BicepFile, node: Node | undefined, depth = 0): Node | undefined {
  if (!node || depth > 8) return node;
  if (node.type === 'parenthesized_expression') return resolve(file, node.namedChildren[0], depth + 1);
  if (node.type === 'identifier') {
    const value = file.vars.get(node.text);
    return value ? resolve(file, value, depth + 1) : node;
  }
  if (node.type === 'member_expression') {
    const object = resolve(file, node.childForFieldName('object') ?? undefined, depth + 1);
    const property = node.childForFieldName('property')?.text;
    if (object?.type === 'object' && property) {
      const value = objectProperties(object).get(property);
      return value ? resolve(file, value, depth + 1) : node;
    }
  }
  return node;
}

/** String values of an array literal, or of the variable an identifier names; undefined when not literal. */
export function stringArray(file: BicepFile, node: Node | undefined): string[] | undefined {
  const resolved = resolve(file, node);
  if (!resolved || resolved.type !== 'array') return undefined;
  const values = resolved.namedChildren.filter((c) => c.type !== 'comment').map((c) => stringValue(c));
  return values.every((v): v is string => v !== undefined) ? values : undefined;
}

/** The names a resource declaration creates: its literal name, or each item its loop runs over. */
export function resourceNames(file: BicepFile, resource: ResourceDecl): string[] | undefined {
  const name = objectProperties(resource.body).get('name');
  if (!name) return undefined;
  if (resource.loop && name.type === 'identifier' && name.text === resource.loop.item)
    return stringArray(file, resource.loop.iterable);
  const literal = stringValue(name);
  return literal === undefined ? undefined : [literal];
}

/** Function name and argument nodes of a call expression; undefined for anything else. */
export function callOf(node: Node | undefined): { fn: string; args: Node[] } | undefined {
  if (!node || node.type !== 'call_expression') return undefined;
  const fn = node.childForFieldName('function')?.text ?? '';
  const args = node.childForFieldName('arguments')?.namedChildren.filter((c) => c.type !== 'comment') ?? [];
  return { fn, args };
}

/** The text of a decorator's first string argument, e.g. the description. */
export function decoratorArgument(decorators: Node[], name: string): string | undefined {
  for (const decorator of decorators) {
    const call = callOf(decorator.namedChildren[0]);
    if (call?.fn === name) return stringValue(call.args[0]) ?? call.args[0]?.text;
  }
  return undefined;
}

/** Every node of a subtree, depth first. */
export function* descendants(node: Node): Generator<Node> {
  yield node;
  for (const child of node.namedChildren) yield* descendants(child);
}
