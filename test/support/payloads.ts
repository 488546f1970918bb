/**
 * Checks notification payloads against what their receivers accept:
 * - a Teams message's Adaptive Card with Microsoft's own Adaptive Cards library (the `adaptivecards` package, its
 *   Node-loadable bundle): parse warnings, validation failures, and a round trip that loses nothing (the library
 *   drops what it does not know, so anything dropped is something Teams would not show);
 * - a Slack message against test/schemas/slack-message.schema.json (a Block Kit subset; Slack publishes no schema);
 * - a generic webhook body against schemas/webhook.schema.json, the contract receivers are given.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import addFormats from 'ajv-formats';
import { PROJECT_ROOT } from '../../dev/sandbox';

// The package's `lib/` build is ES modules without file extensions, which Node cannot load; its `dist/` bundle is
// the same library as one CommonJS file.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const AC = require('adaptivecards/dist/adaptivecards.js') as typeof import('adaptivecards');

// strictRequired off: the section block's "text or fields" is an anyOf of `required` alone, as JSON Schema writes it.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false });
addFormats(ajv);
const schema = (file: string) => JSON.parse(readFileSync(join(PROJECT_ROOT, file), 'utf8')) as object;
const slackSchema = ajv.compile(schema('test/schemas/slack-message.schema.json'));
const webhookSchema = ajv.compile(schema('schemas/webhook.schema.json'));

/** Problems of a Teams Workflows message (empty when Teams would render it as sent). */
export function teamsProblems(message: unknown): string[] {
  const m = message as { type?: unknown; attachments?: Array<Record<string, unknown>> };
  const problems: string[] = [];
  if (m?.type !== 'message') problems.push('type must be "message"');
  if (!Array.isArray(m?.attachments) || m.attachments.length !== 1)
    return [...problems, 'one attachment expected'];
  const a = m.attachments[0]!;
  if (a.contentType !== 'application/vnd.microsoft.card.adaptive')
    problems.push('contentType must be application/vnd.microsoft.card.adaptive');
  const content = a.content as Record<string, unknown>;
  if (content?.type !== 'AdaptiveCard') problems.push('content.type must be AdaptiveCard');
  if (content?.version !== '1.4')
    problems.push(`version ${String(content?.version)}: Workflows take 1.4 at most`);
  const card = new AC.AdaptiveCard();
  const context = new AC.SerializationContext();
  card.parse(content, context);
  for (let i = 0; i < context.eventCount; i++) problems.push(`parse: ${context.getEventAt(i).message}`);
  for (const e of card.validateProperties().validationEvents) problems.push(`validate: ${e.message}`);
  const back = sorted(card.toJSON());
  if (JSON.stringify(back) !== JSON.stringify(sorted(content)))
    problems.push(`the card loses something in a round trip: ${JSON.stringify(back)}`);
  return problems;
}

export function slackProblems(message: unknown): string[] {
  return slackSchema(message) ? [] : (slackSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

export function webhookProblems(body: unknown): string[] {
  return webhookSchema(body) ? [] : (webhookSchema.errors ?? []).map((e) => `${e.instancePath} ${e.message}`);
}

/** A JSON value with its object keys sorted, so two serialisations compare by content. */
function sorted(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sorted);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sorted((value as Record<string, unknown>)[k])]),
    );
  return value;
}
