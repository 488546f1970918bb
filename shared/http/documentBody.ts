import type { HttpRequest } from '@azure/functions';
import { InvalidRequest } from '../domain/errors';
import { readBodyText } from './handler';

/** Largest policy document accepted: thousands of policies, yet refused before a hostile body is parsed. */
const MAX_POLICY_DOCUMENT_BYTES = 2 * 1024 * 1024;

const YAML_TYPES = /^(application|text)\/(x-)?yaml\b/i;
const JSON_TYPES = /^application\/(.+\+)?json\b/i;

/** Reads a policy document body, sent as YAML (`application/yaml`) or JSON (`application/json`), as text. */
export async function readPolicyDocumentBody(request: HttpRequest): Promise<string> {
  const type = request.headers.get('content-type') ?? '';
  if (!YAML_TYPES.test(type) && !JSON_TYPES.test(type)) {
    throw new InvalidRequest([
      { field: '(body)', reason: 'must be sent as application/yaml or application/json' },
    ]);
  }
  return readBodyText(request, MAX_POLICY_DOCUMENT_BYTES);
}

/** Whether the caller asked for YAML (`Accept: application/yaml`); JSON otherwise. */
export function wantsYaml(request: HttpRequest): boolean {
  return (request.headers.get('accept') ?? '').split(',').some((t) => YAML_TYPES.test(t.trim()));
}

/** A query flag: `?dryRun=true` (or `1`); anything else but `false`/`0`/absent is refused, not guessed. */
export function queryFlag(request: HttpRequest, name: string): boolean {
  const v = request.query.get(name);
  if (v === null || v === '' || v === 'false' || v === '0') return false;
  if (v === 'true' || v === '1') return true;
  throw new InvalidRequest([{ field: name, reason: 'must be true or false' }]);
}
