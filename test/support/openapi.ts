/**
 * Checks real answers against openapi.yaml: the status must be documented for the operation, the content type
 * and body must match the documented schema (JSON Schema 2020-12, compiled by ajv from the YAML's own schema
 * objects, and from the JSON Schema files it refers to, e.g. schemas/policies.schema.json), a problem document must
 * carry the status it was answered with, and required headers must be present. Records what was exercised (status
 * and content type), so a test can tell which documented answers it never saw.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { parse } from 'yaml';
import { PROJECT_ROOT } from '../../dev/sandbox';
import type { ApiResponse } from './sandbox';

/* eslint-disable @typescript-eslint/no-explicit-any -- an OpenAPI document is walked as plain JSON */
type Json = any;

const BASE = 'https://azure-jit-access.invalid/openapi';
export const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/**
 * Points `#/components/schemas/X` at the schema registered with ajv under BASE, and a reference to a file (relative
 * to openapi.yaml, as OpenAPI tools resolve it) at that file registered under BASE's origin.
 */
function rebase(node: Json): Json {
  if (Array.isArray(node)) return node.map(rebase);
  if (node && typeof node === 'object') {
    return Object.fromEntries(
      Object.entries(node).map(([k, v]) => [
        k,
        k === '$ref' && typeof v === 'string' ? rebaseRef(v) : rebase(v),
      ]),
    );
  }
  return node;
}

function rebaseRef(ref: string): string {
  if (ref.startsWith('#/components/schemas/'))
    return `${BASE}#/$defs/${ref.slice('#/components/schemas/'.length)}`;
  return ref.startsWith('#') ? ref : new URL(ref, BASE).href;
}

/** The files a document refers to (`$ref: 'schemas/x.json#/…'`), relative to it. */
function referencedFiles(node: Json, out = new Set<string>()): Set<string> {
  if (Array.isArray(node)) for (const v of node) referencedFiles(v, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === '$ref' && typeof v === 'string' && !v.startsWith('#')) out.add(v.split('#')[0]!);
      else referencedFiles(v, out);
    }
  }
  return out;
}

export class OpenApiChecker {
  readonly doc: Json;
  private readonly ajv: Ajv2020;
  private readonly compiled = new Map<string, ValidateFunction>();
  /** `METHOD /path status content-type` of every answer checked (no content type for an answer without a body). */
  readonly seen = new Set<string>();

  constructor(path = join(PROJECT_ROOT, 'openapi.yaml')) {
    this.doc = parse(readFileSync(path, 'utf8'));
    // strict: an unknown keyword or a typo in a schema fails here rather than validating nothing.
    this.ajv = new Ajv2020({ strict: true, allErrors: true });
    addFormats(this.ajv);
    // VS Code's message for a failed pattern, in schemas/policies.schema.json: ajv need only know the keyword.
    this.ajv.addVocabulary(['patternErrorMessage']);
    for (const file of referencedFiles(this.doc)) {
      const schema = JSON.parse(readFileSync(resolve(dirname(path), file), 'utf8'));
      // Registered where the document's relative reference points, whatever `$id` the file gives itself.
      this.ajv.addSchema({ ...schema, $id: new URL(file, BASE).href });
    }
    this.ajv.addSchema({ $id: BASE, $defs: rebase(this.doc.components.schemas) });
    // Compile every named schema up front, so a broken one fails even if no answer uses it.
    for (const name of Object.keys(this.doc.components.schemas))
      this.validator({ $ref: `#/components/schemas/${name}` });
  }

  /** The documented operations, as `METHOD /path` (paths relative to the server URL `/api`). */
  operations(): string[] {
    const out: string[] = [];
    for (const [path, item] of Object.entries<Json>(this.doc.paths)) {
      for (const m of METHODS) if (item[m]) out.push(`${m.toUpperCase()} ${path}`);
    }
    return out.sort();
  }

  private deref(node: Json): Json {
    if (node?.$ref && typeof node.$ref === 'string' && node.$ref.startsWith('#/')) {
      const target = node.$ref
        .slice(2)
        .split('/')
        .reduce((o: Json, seg: string) => o?.[seg], this.doc);
      if (!target) throw new Error(`openapi.yaml: unresolved ${node.$ref}`);
      return this.deref(target);
    }
    return node;
  }

  private validator(schema: Json): ValidateFunction {
    const key = JSON.stringify(schema);
    let v = this.compiled.get(key);
    if (!v) {
      v = this.ajv.compile(rebase(schema));
      this.compiled.set(key, v);
    }
    return v;
  }

  private operation(method: string, path: string): Json {
    const op = this.doc.paths[path]?.[method.toLowerCase()];
    if (!op) throw new Error(`openapi.yaml does not describe ${method} ${path}`);
    return op;
  }

  /** Checks a body the test is about to send against the operation's request body schema. */
  checkRequestBody(method: string, path: string, body: unknown): void {
    const content = this.deref(this.operation(method, path).requestBody)?.content?.['application/json'];
    if (!content) throw new Error(`${method} ${path} documents no JSON request body`);
    const validate = this.validator(content.schema);
    if (!validate(body)) {
      throw new Error(
        `request body for ${method} ${path} does not match openapi.yaml: ${this.ajv.errorsText(validate.errors)}`,
      );
    }
  }

  /** Checks one answer; throws saying what does not match the document. */
  check(method: string, path: string, res: ApiResponse): void {
    const op = this.operation(method, path);
    const status = String(res.status);
    const response = this.deref(op.responses[status] ?? op.responses.default);
    const where = `${method} ${path} -> ${status}`;
    if (!response) throw new Error(`${where} is not documented (body: ${JSON.stringify(res.body)})`);
    for (const [name, header] of Object.entries<Json>(response.headers ?? {})) {
      if (this.deref(header).required && !res.headers.get(name))
        throw new Error(`${where}: header ${name} missing`);
    }
    const contentType = (res.headers.get('content-type') ?? '').split(';')[0]!.trim();
    const media = response.content?.[contentType];
    if (!response.content) {
      if (res.body !== undefined) throw new Error(`${where}: documents no body but got one`);
    } else if (!media) {
      throw new Error(
        `${where}: content type ${contentType} is not one of ${Object.keys(response.content).join(', ')}`,
      );
    } else {
      const validate = this.validator(media.schema);
      if (!validate(res.body)) {
        throw new Error(
          `${where}: body does not match openapi.yaml: ${this.ajv.errorsText(validate.errors)}\n${JSON.stringify(res.body, null, 2)}`,
        );
      }
      // RFC 9457 §3.1.3: a problem's status is the status the answer was sent with.
      const problemStatus = (res.body as { status?: unknown } | undefined)?.status;
      if (contentType === 'application/problem+json' && problemStatus !== res.status)
        throw new Error(`${where}: the problem document says status ${String(problemStatus)}`);
    }
    this.seen.add(
      `${method.toUpperCase()} ${path} ${status} ${response.content ? contentType : ''}`.trimEnd(),
    );
  }

  /**
   * Documented answers never checked, as `METHOD /path status content-type` (each documented content type of an
   * answer counts on its own), except the statuses listed (500 and 503, which a healthy sandbox never gives).
   */
  unexercised(except: readonly string[]): string[] {
    const out: string[] = [];
    for (const [path, item] of Object.entries<Json>(this.doc.paths)) {
      for (const m of METHODS) {
        for (const [status, answer] of Object.entries<Json>(item[m]?.responses ?? {})) {
          if (except.includes(status)) continue;
          const types = Object.keys(this.deref(answer).content ?? {});
          for (const type of types.length ? types : ['']) {
            const key = `${m.toUpperCase()} ${path} ${status} ${type}`.trimEnd();
            if (!this.seen.has(key)) out.push(key);
          }
        }
      }
    }
    return out;
  }

  /** Documented operations with no answer checked at all, as `METHOD /path`. */
  unexercisedOperations(): string[] {
    const called = new Set([...this.seen].map((k) => k.split(' ').slice(0, 2).join(' ')));
    return this.operations().filter((op) => !called.has(op));
  }
}
