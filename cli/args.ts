/**
 * Parsing what people type into what the API takes. Each parser throws commander's InvalidArgumentError, so a bad
 * value is reported against its option with the command's usage, and `jit` exits with the usage code.
 */
import { InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { formatSeconds, parseDuration } from '../shared/domain/duration';
import { parseVmId } from '../shared/domain/resourceId';
import { UsageError } from './errors';

/**
 * `--for`, `--timeout`: the short form (`90s`, `30m`, `1h30m`, `2d`) or ISO-8601 (`PT1H30M`), strictly
 * (shared/domain/duration.ts), as the ISO-8601 the API takes.
 */
export function parseFor(text: string): string {
  try {
    return formatSeconds(parseDuration(text));
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

const dateTime = z.union([
  z.iso.datetime({ offset: true }),
  // People write maintenance windows to the minute.
  z.iso.datetime({ offset: true, precision: -1 }),
]);

/** `--start`: an ISO-8601 date-time with a zone (`2026-12-01T22:00Z`, `…T23:00+01:00`), in UTC. */
export function parseStart(text: string): string {
  const t = text.trim();
  if (!dateTime.safeParse(t).success || Number.isNaN(Date.parse(t))) {
    throw new InvalidArgumentError(
      'must be an ISO-8601 date-time with a zone, e.g. 2026-12-01T22:00Z or 2026-12-01T23:00+01:00.',
    );
  }
  return new Date(t).toISOString();
}

const port = z.coerce.number().int().min(1).max(65535);

/** `--port`, repeatable: collects the ports in the order given. */
export function collectPort(text: string, previous: number[] | undefined): number[] {
  const r = port.safeParse(text);
  if (!r.success) throw new InvalidArgumentError('must be a port number from 1 to 65535.');
  return [...(previous ?? []), r.data];
}

/**
 * A VM as its ARM resource id, or as `<resource group>/<name>` in the default subscription
 * (`--subscription` or JIT_SUBSCRIPTION_ID).
 */
export function resolveVm(text: string, subscription: string | undefined): string {
  const t = text.trim();
  if (t.startsWith('/')) {
    try {
      parseVmId(t);
    } catch (e) {
      throw new UsageError(`VM "${t}" ${(e as Error).message}`);
    }
    return t;
  }
  const parts = t.split('/');
  if (parts.length !== 2 || !parts[0] || !parts[1]) {
    throw new UsageError(`VM "${t}" must be a resource id or <resource group>/<VM name>`);
  }
  if (!subscription) {
    throw new UsageError(
      `VM "${t}" names no subscription: pass --subscription <id> or set JIT_SUBSCRIPTION_ID, or give the VM's resource id`,
    );
  }
  if (!z.guid().safeParse(subscription).success) {
    throw new UsageError(`subscription "${subscription}" must be a subscription id (a GUID)`);
  }
  return `/subscriptions/${subscription}/resourceGroups/${parts[0]}/providers/Microsoft.Compute/virtualMachines/${parts[1]}`;
}
