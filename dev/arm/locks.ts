/**
 * Management locks (`Microsoft.Authorization/locks`), as ARM applies them to every request.
 *
 * Sources: the REST spec specification/resources/resource-manager/Microsoft.Authorization/locks/stable/2020-05-01/locks.json
 * (the api-version `@azure/arm-locks` 2.1 calls) and https://learn.microsoft.com/azure/azure-resource-manager/management/lock-resources:
 * - "When you apply a lock at a parent scope, all child resources inherit the same lock" (spec, PUT description);
 * - `CanNotDelete`: "authorized users can read and modify a resource, but they can't delete it";
 * - `ReadOnly`: "authorized users can read a resource, but they can't delete or update it";
 * - the lock is checked by Resource Manager before the request reaches the resource provider, so a DELETE of a
 *   rule that does not exist under a locked scope is refused too (`409 ScopeLocked`), not answered 204.
 */
import { armErrors } from './errors';
import { key } from './resource-ids';

export type LockLevel = 'CanNotDelete' | 'ReadOnly';

/** A lock as ARM returns it (ManagementLockObject). */
export interface ManagementLock {
  id: string;
  name: string;
  type: 'Microsoft.Authorization/locks';
  properties: { level: LockLevel; notes?: string; owners?: Array<{ applicationId: string }> };
}

interface LockRecord {
  scope: string;
  name: string;
  level: LockLevel;
  notes?: string;
}

/** Every lock in the emulated cloud, keyed by the lower-cased lock id. */
export class LockRegistry {
  private readonly locks = new Map<string, LockRecord>();

  /** Creates or replaces a lock; returns it and whether it was new (ARM answers 201 then, else 200). */
  put(scope: string, name: string, body: unknown): { lock: ManagementLock; created: boolean } {
    const properties = (body as { properties?: { level?: unknown; notes?: unknown } } | null)?.properties;
    const level = properties?.level;
    if (level !== 'CanNotDelete' && level !== 'ReadOnly') throw armErrors.invalidLockLevel(level);
    const id = lockId(scope, name);
    const created = !this.locks.has(key(id));
    const record: LockRecord = { scope: trimScope(scope), name, level };
    if (typeof properties?.notes === 'string') record.notes = properties.notes;
    this.locks.set(key(id), record);
    return { lock: lockJson(record), created };
  }

  get(scope: string, name: string): ManagementLock | undefined {
    const record = this.locks.get(key(lockId(scope, name)));
    return record && lockJson(record);
  }

  /** Deletes a lock; a missing one is not an error (ARM answers 204). Returns whether one was removed. */
  delete(scope: string, name: string): boolean {
    return this.locks.delete(key(lockId(scope, name)));
  }

  /**
   * The locks a list at `scope` returns: those at the scope, above it (they apply to it by inheritance) and below it.
   * With `$filter=atScope()` only those at or above, i.e. the ones that apply to the scope.
   */
  list(scope: string, atScopeOnly: boolean): ManagementLock[] {
    return [...this.locks.values()]
      .filter((l) => isWithin(scope, l.scope) || (!atScopeOnly && isWithin(l.scope, scope)))
      .map(lockJson);
  }

  /**
   * Throws `409 ScopeLocked` when a lock at or above `resourceId` forbids the operation: any lock forbids a delete,
   * only `ReadOnly` forbids a write.
   */
  assertAllowed(resourceId: string, operation: 'write' | 'delete'): void {
    const blocking = [...this.locks.values()].filter(
      (l) => isWithin(resourceId, l.scope) && (operation === 'delete' || l.level === 'ReadOnly'),
    );
    if (blocking.length === 0) return;
    throw armErrors.scopeLocked(resourceId, operation, [...new Set(blocking.map((l) => l.scope))]);
  }
}

function lockId(scope: string, name: string): string {
  return `${trimScope(scope)}/providers/Microsoft.Authorization/locks/${name}`;
}

function trimScope(scope: string): string {
  return `/${scope.replace(/^\/+|\/+$/g, '')}`;
}

/** Whether `inner` is `outer` or lies under it, segment by segment, ignoring case as ARM does. */
export function isWithin(inner: string, outer: string): boolean {
  const i = key(trimScope(inner));
  const o = key(trimScope(outer));
  return o === '/' || i === o || i.startsWith(`${o}/`);
}

function lockJson(record: LockRecord): ManagementLock {
  const properties: ManagementLock['properties'] = { level: record.level };
  if (record.notes !== undefined) properties.notes = record.notes;
  return {
    id: lockId(record.scope, record.name),
    name: record.name,
    type: 'Microsoft.Authorization/locks',
    properties,
  };
}
