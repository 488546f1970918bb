/**
 * Policies as code: the document administrators write and review (YAML or JSON), validated first against
 * schemas/policies.schema.json (the same file editors use) and then against the rules a schema cannot express,
 * converted to the domain's `Policy` and back. Every problem names the line and column it comes from.
 */
import Ajv2020 from 'ajv/dist/2020';
import type { ErrorObject, ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { Document, LineCounter, isMap, isNode, isScalar, parseDocument } from 'yaml';
import type { YAMLError } from 'yaml';
import schema from '../../schemas/policies.schema.json';
import { formatDuration, formatSeconds, parseDurationToSeconds } from './duration';
import { PolicyDocumentInvalid } from './errors';
import type { PolicyProblem } from './errors';
import { INTERNET_TAG, parsePrefix } from './network';
import type { PolicyDocument, PolicyEntry } from './policyEntries';
import { freeTextProblem } from './text';
import type { ApprovalMode, Policy, Protocol } from './types';

/** Where editors find the schema (the `$id` of schemas/policies.schema.json). */
const POLICY_SCHEMA_URL = schema.$id;

/** How long approvers have when a manual policy does not say. */
const DEFAULT_APPROVAL_TIMEOUT_IN_SECONDS = 30 * 60;

/**
 * Longest policy, as JSON. A policy is one table row (string columns hold 32K characters) and its audit event
 * carries it twice (before and after), so it must stay well under half of that.
 */
const MAX_POLICY_JSON_CHARS = 12_000;

/** The only spellings of "any source" a policy accepts: a broad source must be written on purpose. */
const EXPLICIT_ANY_SOURCES = new Set(['*', '0.0.0.0/0', '::/0']);

const SCOPE =
  /^\/subscriptions\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(?:\/resourcegroups\/[^/\s]+(?:\/providers\/microsoft\.compute\/virtualmachines\/[^/\s]+)?)?$/i;

export type { PolicyApprovalEntry, PolicyDocument, PolicyEntry, PolicyPortEntry } from './policyEntries';

export interface PolicyDocumentOptions {
  /** The file name (or `(body)`) every problem names. */
  source: string;
  /** The system's longest grant (JIT_MAX_DURATION), in seconds: no port may allow more. */
  maxDurationInSeconds: number;
  /**
   * Why manual approval cannot work in this deployment (`jwt` mode: approvers have no browser sign-in), if it
   * cannot; a manual policy is then refused with this reason.
   */
  manualApprovalUnavailable?: string;
}

/** The document as the schema admits it: optional fields may be missing. */
interface RawPolicy {
  scope: string;
  description?: string;
  ports: Array<{ port: number; protocol?: Protocol; maxDuration: string }>;
  allowedSourcePrefixes: string[];
  requesters: string[];
  approval?: { mode: ApprovalMode; approvers?: string[]; required?: number; timeout?: string };
  justification?: { required?: boolean; pattern?: string };
  enforce?: boolean;
  cutSessions?: boolean;
}

type Path = Array<string | number>;

/**
 * Parses, validates and converts a policy document. Throws `PolicyDocumentInvalid` listing every problem found,
 * each with its line, column and rule; returns the policies, scopes lower-cased and defaults filled, otherwise.
 */
export function parsePolicyDocument(text: string, options: PolicyDocumentOptions): Policy[] {
  const lineCounter = new LineCounter();
  // JSON is parsed by the YAML parser too (JSON is YAML 1.2), so both get the same positions and messages.
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const where = new Locator(doc, lineCounter, options.source);
  if (doc.errors.length) throw new PolicyDocumentInvalid(doc.errors.map((e) => where.syntaxError(e)));
  let value: unknown;
  try {
    // The alias limit stops a "billion laughs" document from exhausting memory.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new PolicyDocumentInvalid([where.problem([], [], 'syntax', (err as Error).message)]);
  }

  const validate = validator();
  const problems: PolicyProblem[] = [];
  const errorPaths: string[] = [];
  if (!validate(value)) {
    for (const e of validate.errors ?? []) {
      problems.push(where.schemaError(e));
      errorPaths.push(e.instancePath);
    }
  }
  // Without a list of policies there is nothing more to check.
  if (errorPaths.some((p) => p === '' || p === '/policies'))
    throw new PolicyDocumentInvalid(sortProblems(problems));

  const raws = (value as { policies: unknown[] }).policies;
  const policies: Policy[] = [];
  const firstIndexOfScope = new Map<string, number>();
  raws.forEach((raw, i) => {
    if (!isRecord(raw)) return;
    // Each field gets the checks a schema cannot make only where the schema found nothing wrong with it, so
    // one run reports every problem once.
    const clean = (field: string) =>
      !errorPaths.some((p) => p === `/policies/${i}/${field}` || p.startsWith(`/policies/${i}/${field}/`));
    const structurallyValid = !errorPaths.some(
      (p) => p === `/policies/${i}` || p.startsWith(`/policies/${i}/`),
    );
    const check = new PolicyCheck(where, i, options, problems);
    const policy = check.convert(raw, clean, firstIndexOfScope);
    if (policy && structurallyValid) policies.push(policy);
  });
  if (problems.length) throw new PolicyDocumentInvalid(sortProblems(problems));
  return policies;
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

/** The rules a schema cannot express, for one policy, and its conversion to the domain's `Policy`. */
class PolicyCheck {
  private failed = false;

  constructor(
    private readonly where: Locator,
    private readonly index: number,
    private readonly options: PolicyDocumentOptions,
    private readonly problems: PolicyProblem[],
  ) {}

  private report(rest: Path, rule: string, reason: string): void {
    const path = ['policies', this.index, ...rest];
    this.problems.push(this.where.problem(path, path, rule, reason));
    this.failed = true;
  }

  /** The scope, lower-cased, or undefined when it is malformed or taken by an earlier policy. */
  private scope(written: unknown, firstIndexOfScope: Map<string, number>): string | undefined {
    if (typeof written !== 'string') return undefined;
    const scope = written.trim().toLowerCase();
    if (!SCOPE.test(scope)) {
      this.report(
        ['scope'],
        'bad-scope',
        'must be the id of a subscription (/subscriptions/<id>), a resource group (/subscriptions/<id>/resourceGroups/<name>) or a VM (…/resourceGroups/<name>/providers/Microsoft.Compute/virtualMachines/<name>)',
      );
      return undefined;
    }
    const first = firstIndexOfScope.get(scope);
    if (first !== undefined) {
      const other = this.where.position(['policies', first, 'scope']);
      this.report(
        ['scope'],
        'duplicate-scope',
        `${scope} is already the scope of policies[${first}] (line ${other.line}): one policy per scope`,
      );
      return undefined;
    }
    firstIndexOfScope.set(scope, this.index);
    return scope;
  }

  /**
   * Checks each field the schema found nothing wrong with (`clean`) and, when the whole policy is sound, returns
   * it converted: durations in seconds, scope lower-cased, prefixes canonical, defaults filled.
   */
  convert(
    raw: Partial<RawPolicy>,
    clean: (field: keyof RawPolicy) => boolean,
    firstIndexOfScope: Map<string, number>,
  ): Policy | undefined {
    const scope = clean('scope') ? this.scope(raw.scope, firstIndexOfScope) : undefined;
    const ports = raw.ports && clean('ports') ? this.ports(raw.ports) : undefined;
    const allowedSourcePrefixes =
      raw.allowedSourcePrefixes && clean('allowedSourcePrefixes')
        ? raw.allowedSourcePrefixes.map((text, k) => this.sourcePrefix(['allowedSourcePrefixes', k], text))
        : undefined;
    const approval = clean('approval') ? this.approval(raw.approval) : undefined;
    const justification = clean('justification') ? this.justification(raw.justification) : undefined;
    if (
      this.failed ||
      !scope ||
      !ports ||
      !allowedSourcePrefixes ||
      !raw.requesters ||
      !approval ||
      !justification
    )
      return undefined;

    const descriptionProblem = raw.description !== undefined ? freeTextProblem(raw.description) : undefined;
    if (descriptionProblem) {
      this.report(['description'], 'bidi-control', descriptionProblem);
      return undefined;
    }
    const policy: Policy = {
      scope,
      ...(raw.description !== undefined ? { description: raw.description } : {}),
      ports,
      allowedSourcePrefixes,
      requesters: raw.requesters.map((r) => r.trim()),
      approval,
      justification,
      enforce: raw.enforce ?? false,
      ...(raw.cutSessions === true ? { cutSessions: true } : {}),
    };
    const size = JSON.stringify(policy).length;
    if (size > MAX_POLICY_JSON_CHARS) {
      this.report(
        [],
        'policy-too-large',
        `is ${size} characters as JSON, more than ${MAX_POLICY_JSON_CHARS}: name groups rather than many users, or split it by scope`,
      );
      return undefined;
    }
    return policy;
  }

  private ports(raw: RawPolicy['ports']): Policy['ports'] {
    const ports = raw.map((p, j) => ({
      port: p.port,
      protocol: p.protocol ?? 'Tcp',
      maxDurationInSeconds: this.duration(['ports', j, 'maxDuration'], p.maxDuration, true),
    }));
    ports.forEach((p, j) => {
      const k = ports.findIndex(
        (q) => q.port === p.port && (q.protocol === p.protocol || q.protocol === '*' || p.protocol === '*'),
      );
      if (k < j) {
        const other = this.where.position(['policies', this.index, 'ports', k]);
        this.report(
          ['ports', j],
          'duplicate-port',
          `${p.port}/${p.protocol} overlaps ports[${k}] (line ${other.line}): list each port and protocol once`,
        );
      }
    });
    return ports;
  }

  private duration(rest: Path, text: string, capped: boolean): number {
    let seconds: number;
    try {
      seconds = parseDurationToSeconds(text);
    } catch (e) {
      this.report(rest, 'bad-duration', `${text} ${(e as Error).message}`);
      return 0;
    }
    if (capped && seconds > this.options.maxDurationInSeconds) {
      this.report(
        rest,
        'max-duration-over-cap',
        `${text} is longer than the system's maximum, ${formatDuration(this.options.maxDurationInSeconds)} (the JIT_MAX_DURATION setting)`,
      );
    }
    return seconds;
  }

  private sourcePrefix(rest: Path, written: string): string {
    const text = written.trim();
    if (text.toLowerCase() === 'my-ip') return 'my-ip';
    if (EXPLICIT_ANY_SOURCES.has(text)) return text;
    // The Internet service tag, by name: a deliberate choice, narrower than `*` (it leaves out the VNet).
    if (text.toLowerCase() === 'internet') return INTERNET_TAG;
    let prefix;
    try {
      prefix = parsePrefix(text);
    } catch (e) {
      this.report(rest, 'malformed-prefix', `"${text}" ${(e as Error).message}`);
      return text;
    }
    if (prefix.any) {
      this.report(
        rest,
        'implicit-broad-source',
        `"${text}" allows any source; write *, 0.0.0.0/0 or ::/0 if that is really meant`,
      );
      return text;
    }
    return prefix.cidr;
  }

  private approval(raw: RawPolicy['approval']): Policy['approval'] {
    if (!raw || raw.mode === 'auto') {
      for (const key of ['approvers', 'required', 'timeout'] as const) {
        if (raw?.[key] !== undefined)
          this.report(['approval', key], 'approval-field-for-auto', 'applies only when mode is manual');
      }
      return {
        mode: 'auto',
        approvers: [],
        required: 0,
        timeoutInSeconds: DEFAULT_APPROVAL_TIMEOUT_IN_SECONDS,
      };
    }
    if (this.options.manualApprovalUnavailable)
      this.report(
        ['approval', 'mode'],
        'manual-approval-unavailable',
        this.options.manualApprovalUnavailable,
      );
    const approvers = (raw.approvers ?? []).map((a) => a.trim());
    const required = raw.required ?? 1;
    if (approvers.length === 0) {
      this.report(
        raw.approvers ? ['approval', 'approvers'] : ['approval'],
        'approvers-empty',
        'manual approval needs at least one approver (user:<UPN or object id> or group:<group object id>)',
      );
    }
    const seen = new Set<string>();
    approvers.forEach((a, k) => {
      if (seen.has(a.toLowerCase()))
        this.report(['approval', 'approvers', k], 'duplicate-approver', `${a} is listed twice`);
      seen.add(a.toLowerCase());
    });
    // A group may hold any number of people, so the count can be checked only when every approver is a user.
    const onlyUsers = approvers.every((a) => a.toLowerCase().startsWith('user:'));
    if (approvers.length > 0 && onlyUsers && required > seen.size) {
      this.report(
        raw.required !== undefined ? ['approval', 'required'] : ['approval'],
        'required-exceeds-approvers',
        `asks for ${required} approvals but names only ${seen.size} approver${seen.size === 1 ? '' : 's'}`,
      );
    }
    const timeoutInSeconds =
      raw.timeout === undefined
        ? DEFAULT_APPROVAL_TIMEOUT_IN_SECONDS
        : this.duration(['approval', 'timeout'], raw.timeout, false);
    return { mode: 'manual', approvers, required, timeoutInSeconds };
  }

  private justification(raw: RawPolicy['justification']): Policy['justification'] {
    const pattern = raw?.pattern;
    if (pattern !== undefined) {
      try {
        // Compiled the way decide() compiles it, so what passes here works there.
        new RegExp(pattern);
      } catch (e) {
        this.report(
          ['justification', 'pattern'],
          'bad-pattern',
          `is not a valid regular expression: ${(e as Error).message.replace(/^Invalid regular expression: /, '')}`,
        );
      }
    }
    // A pattern nobody has to meet is a trap: it implies that a justification is required, unless stated otherwise.
    const required = raw?.required ?? pattern !== undefined;
    return pattern === undefined ? { required } : { required, pattern };
  }
}

/** A policy as the document writes it: durations in ISO-8601, approval fields only where they mean something. */
export function toPolicyEntry(p: Policy): PolicyEntry {
  return {
    scope: p.scope,
    ...(p.description !== undefined ? { description: p.description } : {}),
    ports: p.ports.map((x) => ({
      port: x.port,
      protocol: x.protocol,
      maxDuration: formatSeconds(x.maxDurationInSeconds),
    })),
    allowedSourcePrefixes: [...p.allowedSourcePrefixes],
    requesters: [...p.requesters],
    approval:
      p.approval.mode === 'manual'
        ? {
            mode: 'manual',
            approvers: [...p.approval.approvers],
            required: p.approval.required,
            timeout: formatSeconds(p.approval.timeoutInSeconds),
          }
        : { mode: 'auto' },
    justification:
      p.justification.pattern === undefined
        ? { required: p.justification.required }
        : { required: p.justification.required, pattern: p.justification.pattern },
    enforce: p.enforce,
    ...(p.cutSessions === true ? { cutSessions: true as const } : {}),
  };
}

/** The document for a set of policies, sorted by scope (a subscription before its groups, a group before its VMs). */
export function toPolicyDocument(policies: Iterable<Policy>): PolicyDocument {
  return {
    policies: [...policies].sort((a, b) => a.scope.localeCompare(b.scope)).map(toPolicyEntry),
  };
}

/** The document as YAML, with the schema named for editors and each port on one line. */
export function policyDocumentToYaml(document: PolicyDocument): string {
  const doc = new Document(document);
  doc.commentBefore = ` yaml-language-server: $schema=${POLICY_SCHEMA_URL}`;
  document.policies.forEach((p, i) =>
    p.ports.forEach((_, j) => {
      const node = doc.getIn(['policies', i, 'ports', j], true);
      if (isMap(node)) node.flow = true;
    }),
  );
  return doc.toString({ lineWidth: 0 });
}

let compiled: ValidateFunction | undefined;

/** The schema's validator, compiled once. */
function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv2020({ allErrors: true, strict: true, verbose: true });
    addFormats(ajv);
    // VS Code's message for a failed pattern; ajv need only know the keyword exists.
    ajv.addVocabulary(['patternErrorMessage']);
    compiled = ajv.compile(schema);
  }
  return compiled;
}

/** `/policies/0/ports/1` → `['policies', 0, 'ports', 1]`. */
function pointerToPath(pointer: string): Path {
  if (!pointer) return [];
  return pointer
    .split('/')
    .slice(1)
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s));
}

/** `['policies', 0, 'ports', 1]` → `policies[0].ports[1]`. */
function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) out += typeof seg === 'number' ? `[${seg}]` : out ? `.${seg}` : seg;
  return out;
}

function sortProblems(problems: PolicyProblem[]): PolicyProblem[] {
  return problems.sort((a, b) => a.line - b.line || a.column - b.column);
}

const ARTICLE: Record<string, string> = {
  integer: 'an integer',
  object: 'a mapping (object)',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  number: 'a number',
};

/** Finds where a path lies in the source text, through the YAML node ranges. */
class Locator {
  constructor(
    private readonly doc: Document,
    private readonly lineCounter: LineCounter,
    private readonly source: string,
  ) {}

  /**
   * The position of the node at `path`, or of the nearest ancestor that exists (a missing field is reported
   * where its parent starts). With `key`, the position of that key in the mapping at `path`.
   */
  position(path: Path, key?: string): { line: number; column: number } {
    for (let n = path.length; n >= 0; n--) {
      const node: unknown = n === 0 ? this.doc.contents : this.doc.getIn(path.slice(0, n), true);
      if (!isNode(node)) continue;
      let offset = node.range?.[0];
      if (key !== undefined && n === path.length && isMap(node)) {
        const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
        if (pair && isNode(pair.key)) offset = pair.key.range?.[0] ?? offset;
      }
      if (offset !== undefined) {
        const { line, col } = this.lineCounter.linePos(offset);
        return { line, column: col };
      }
    }
    return { line: 1, column: 1 };
  }

  /** A problem with the field `fieldPath`, placed at `at` (the field itself, or where it should be). */
  problem(fieldPath: Path, at: Path, rule: string, reason: string, key?: string): PolicyProblem {
    return {
      source: this.source,
      ...this.position(at, key),
      field: formatPath(fieldPath),
      reason,
      rule,
    };
  }

  syntaxError(e: YAMLError): PolicyProblem {
    const pos = e.linePos?.[0];
    // The parser's message repeats the position and quotes the source after a blank line: keep the sentence.
    const reason = (e.message.split('\n')[0] ?? e.message).replace(/ at line \d+, column \d+:?$/, '');
    return {
      source: this.source,
      line: pos?.line ?? 1,
      column: pos?.col ?? 1,
      field: '',
      reason,
      rule: 'syntax',
    };
  }

  schemaError(e: ErrorObject): PolicyProblem {
    const path = pointerToPath(e.instancePath);
    const params = e.params as Record<string, unknown>;
    const parent = (e.parentSchema ?? {}) as { properties?: object; patternErrorMessage?: string };
    switch (e.keyword) {
      case 'additionalProperties': {
        const key = String(params.additionalProperty);
        const known = Object.keys(parent.properties ?? {}).join(', ');
        return this.problem(
          [...path, key],
          path,
          'unknown-field',
          `is not a known field (known: ${known})`,
          key,
        );
      }
      case 'required': {
        const key = String(params.missingProperty);
        return this.problem([...path, key], path, 'missing-field', 'is required');
      }
      case 'type': {
        const types = ([] as unknown[]).concat(params.type).map((t) => ARTICLE[String(t)] ?? String(t));
        return this.problem(path, path, 'wrong-type', `must be ${types.join(' or ')}`);
      }
      case 'enum': {
        const allowed = (params.allowedValues as unknown[]).map(String).join(', ');
        return this.problem(
          path,
          path,
          'not-allowed-value',
          `must be one of ${allowed}, not ${JSON.stringify(e.data)}`,
        );
      }
      case 'minimum':
      case 'maximum':
        if (path.at(-1) === 'port')
          return this.problem(
            path,
            path,
            'port-out-of-range',
            `must be a port number from 1 to 65535, not ${String(e.data)}`,
          );
        return this.problem(
          path,
          path,
          'out-of-range',
          `must be ${e.keyword === 'minimum' ? 'at least' : 'at most'} ${String(params.limit)}`,
        );
      case 'format':
        return this.problem(
          path,
          path,
          'bad-duration',
          `${JSON.stringify(e.data)} must be an ISO-8601 duration such as PT30M, PT3H or P1D`,
        );
      case 'pattern':
        return this.problem(
          path,
          path,
          'bad-principal',
          `${JSON.stringify(e.data)} ${parent.patternErrorMessage ?? e.message ?? ''}`,
        );
      case 'minItems':
        return this.problem(
          path,
          path,
          'empty-list',
          params.limit === 1
            ? 'must list at least one entry'
            : `must list at least ${String(params.limit)} entries`,
        );
      case 'maxItems':
        return this.problem(path, path, 'too-many', `must list at most ${String(params.limit)} entries`);
      case 'minLength':
        return this.problem(path, path, 'empty-value', 'must not be empty');
      case 'maxLength':
        return this.problem(path, path, 'too-long', `must be at most ${String(params.limit)} characters`);
      default:
        return this.problem(path, path, e.keyword, e.message ?? 'is not valid');
    }
  }
}
