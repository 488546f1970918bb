import { z } from 'zod';
import { parseDurationToSeconds } from './duration';
import { InvalidRequest } from './errors';
import type { FieldProblem } from './errors';
import type { AccessAsk } from './policy';
import { parseVmId } from './resourceId';
import { freeTextProblem } from './text';

/** Longest justification kept; longer text is refused rather than truncated. */
const MAX_JUSTIFICATION_LENGTH = 1000;
/** Most ports one request may ask for (one NSG rule carries them all). */
const MAX_PORTS_PER_REQUEST = 16;

export const checked = <T>(check: (v: string) => T) =>
  z.string().superRefine((v, ctx) => {
    try {
      check(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
    }
  });

/** The body of `POST /api/requests`. Unknown fields are refused so that a typo is not silently ignored. */
const requestBodySchema = z.strictObject({
  vm: checked(parseVmId),
  ports: z
    .array(z.int().min(1, 'must be from 1 to 65535').max(65535, 'must be from 1 to 65535'))
    .min(1, 'must name at least one port')
    .max(MAX_PORTS_PER_REQUEST, `must name at most ${MAX_PORTS_PER_REQUEST} ports`)
    .refine((ports) => new Set(ports).size === ports.length, 'must not repeat a port'),
  protocol: z.enum(['Tcp', 'Udp']).optional(),
  sourcePrefix: z.string().max(64, 'is too long').optional(),
  duration: checked(parseDurationToSeconds),
  justification: z
    .string()
    .max(MAX_JUSTIFICATION_LENGTH, `must be at most ${MAX_JUSTIFICATION_LENGTH} characters`)
    .superRefine((v, ctx) => {
      const problem = freeTextProblem(v);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  startAt: z.iso
    .datetime({
      offset: true,
      message: 'must be an RFC 3339 date-time with a zone, e.g. 2026-12-01T22:00:00Z',
    })
    .optional(),
});

/** Turns zod's issues into the API's field problems (`ports[1]: must be from 1 to 65535`). */
export function toFieldProblems(error: z.ZodError): FieldProblem[] {
  return error.issues.map((issue) => {
    let field = '';
    for (const seg of issue.path)
      field += typeof seg === 'number' ? `[${seg}]` : field ? `.${String(seg)}` : String(seg);
    if (issue.code === 'unrecognized_keys') {
      return {
        field: [field, issue.keys.join(', ')].filter(Boolean).join('.'),
        reason: 'is not a known field',
      };
    }
    if (issue.code === 'invalid_type' && issue.input === undefined)
      return { field: field || '(body)', reason: 'is required' };
    return { field: field || '(body)', reason: issue.message };
  });
}

/** Validates a parsed JSON body into an ask. Throws `InvalidRequest` listing every problem at once. */
export function parseRequestBody(body: unknown): AccessAsk {
  const result = requestBodySchema.safeParse(body);
  if (!result.success) throw new InvalidRequest(toFieldProblems(result.error));
  const b = result.data;
  return {
    vmId: b.vm.trim(),
    ports: b.ports,
    protocol: b.protocol,
    sourcePrefix: b.sourcePrefix,
    durationInSeconds: parseDurationToSeconds(b.duration),
    justification: b.justification,
    // Only when asked for: most requests start at once, and their ask reads as it always did.
    ...(b.startAt !== undefined ? { startAt: b.startAt } : {}),
  };
}
