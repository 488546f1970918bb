/**
 * Writing to an NSG safely: one writer per NSG (in this process, and across instances through the lease), and
 * every write retried with back-off and a fresh plan of its priority, within a bound.
 */
import { ruleMatchesSpec } from '../domain/baseline';
import {
  ArmCallBudgetSpent,
  CloseBlocked,
  GrantNotApplicable,
  NetworkPermissionMissing,
  PriorityTaken,
  ScopeLocked,
  TransientFailure,
} from '../domain/errors';
import type { NetworkGateway } from '../domain/ports';
import type { PriorityBand } from '../domain/priority';
import { planPriority } from '../domain/priority';
import { sameRuleName } from '../domain/ruleNames';
import type { AllowRuleSpec, SecurityRuleView } from '../domain/types';
import type { NsgWritePorts } from './deps';
import type { RateLimiterQueue } from 'rate-limiter-flexible';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `task` as the only JIT writer of the NSG: queued behind this process's other writers, then holding the
 * NSG's lease against other instances. Never nest it (the lock is not re-entrant).
 */
export function withNsg<T>(deps: NsgWritePorts, nsgId: string, task: () => Promise<T>): Promise<T> {
  return deps.locks.withLock(nsgId, task);
}

/**
 * `withNsg` for closing access: queued ahead of every write waiting to open or keep rules in this process, so an
 * expiry waits for at most the one operation ARM is already running on the NSG, not for a burst of opens.
 */
export function withNsgToClose<T>(deps: NsgWritePorts, nsgId: string, task: () => Promise<T>): Promise<T> {
  return deps.locks.withLock(nsgId, task, 'urgent');
}

const watched = new Map<string, number>();
const WATCH_MEMORY_IN_MS = 10 * 60_000;

/**
 * Puts the NSG on the reconciler's watch list with what JIT protects there. Remembered in-process for a while:
 * a burst of grants on one NSG then costs one registry read, not one per grant.
 */
export async function watchNsg(
  deps: NsgWritePorts,
  nsgId: string,
  protects: { ports: number[]; addresses: string[] },
): Promise<void> {
  const key = `${nsgId.toLowerCase()}|${protects.ports.join(',')}|${protects.addresses.join(',')}`;
  if ((watched.get(key) ?? 0) > Date.now()) return;
  await deps.nsgs.watchNsg(nsgId, protects);
  if (watched.size > 10_000) watched.clear();
  watched.set(key, Date.now() + WATCH_MEMORY_IN_MS);
}

/** Exponential back-off with jitter, doubling from `baseInMs` up to 8 s. */
function backoff(baseInMs: number, attempt: number): number {
  const cap = Math.min(8000, baseInMs * 2 ** (attempt - 1));
  return cap / 2 + Math.random() * (cap / 2);
}

export interface PutRuleOptions {
  nsgId: string;
  name: string;
  band: PriorityBand;
  /** The rule to write at a priority. */
  specAt: (priority: number) => AllowRuleSpec;
  /** Before each attempt: throw to stop (the request moved on). */
  beforeAttempt?: () => Promise<void>;
  /** After the priority is chosen and before the PUT: record where the rule is about to be. */
  beforeWrite?: (priority: number) => Promise<void>;
  /** For log lines. */
  logFields?: Record<string, unknown>;
}

/**
 * Makes the NSG hold the rule: done at once if it is already there as specified (a retry after a write that
 * landed), else written at the priority `planPriority` picks from a fresh listing. A priority taken in the
 * meantime is re-planned at once; what ARM says is transient (busy NSG, throttling, 5xx, an operation that
 * ended `Failed`) is retried with back-off. Call inside `withNsg`.
 * Returns the priority the rule holds and whether this call wrote it. Throws `GrantNotApplicable` when the band
 * is full or the attempts run out, and whatever `beforeAttempt` throws.
 */
export async function putRuleWithRetry(
  deps: NsgWritePorts,
  o: PutRuleOptions,
): Promise<{ priority: number; written: boolean }> {
  const losers = new Set<number>();
  let lastError = '';
  const max = deps.settings.maxArmAttempts;
  for (let attempt = 1; attempt <= max; attempt++) {
    await o.beforeAttempt?.();
    let priority: number | undefined;
    try {
      const rules = await deps.network.listRules(o.nsgId);
      const present = inPlace(rules, o);
      if (present !== undefined) return { priority: present, written: false };
      priority = planPriority(rules, o.band, o.name, losers);
      if (priority === undefined) {
        throw new GrantNotApplicable(
          `no free priority in ${o.band.min}-${o.band.max} in ${o.nsgId} (${rules.length} rules)`,
        );
      }
      await o.beforeWrite?.(priority);
      await deps.network.putRule(o.nsgId, o.specAt(priority));
      deps.log.info('nsg.rule-written', { ...o.logFields, nsgId: o.nsgId, rule: o.name, priority, attempt });
      return { priority, written: true };
    } catch (err) {
      if (err instanceof PriorityTaken && priority !== undefined) losers.add(priority);
      else if (!(err instanceof TransientFailure)) throw err;
      lastError = (err as Error).message;
      deps.log.warn('nsg.rule-retry', {
        ...o.logFields,
        nsgId: o.nsgId,
        rule: o.name,
        priority,
        attempt,
        error: lastError,
      });
      if (attempt === max) break;
      // A lost priority is re-planned at once (with a little jitter); anything else waits.
      const wait =
        err instanceof PriorityTaken
          ? Math.random() * deps.settings.armBackoffInMs
          : (err.retryAfterInMs ?? backoff(deps.settings.armBackoffInMs, attempt));
      await sleep(wait);
    }
  }
  throw new GrantNotApplicable(
    `gave up writing rule ${o.name} to ${o.nsgId} after ${max} attempts: ${lastError}`,
  );
}

/**
 * The priority of the rule if the NSG already holds it as specified, at a priority no one else shares, and ARM
 * says it is in place (`Succeeded`). A `Failed` rule is written again (a PUT is how ARM recovers one), and an
 * `Updating` one is another operation still running: writing waits for it (ARM answers busy meanwhile).
 */
function inPlace(rules: readonly SecurityRuleView[], o: PutRuleOptions): number | undefined {
  const own = rules.find((r) => sameRuleName(r.name, o.name));
  if (!own || own.provisioningState !== 'Succeeded') return undefined;
  if (own.priority < o.band.min || own.priority > o.band.max) return undefined;
  const shared = rules.some((r) => r !== own && r.direction === own.direction && r.priority === own.priority);
  return !shared && ruleMatchesSpec(own, o.specAt(own.priority)) ? own.priority : undefined;
}

/**
 * Deletes a rule, retrying what is transient. A rule (or NSG) already gone is fine. Call inside `withNsg`.
 * Throws `TransientFailure` when ARM keeps refusing: the caller's message or the next reconciler run retries.
 */
export async function deleteRuleWithRetry(
  deps: NsgWritePorts,
  nsgId: string,
  name: string,
  logFields: Record<string, unknown> = {},
): Promise<void> {
  await retryTransient(
    deps,
    () => deps.network.deleteRule(nsgId, name),
    (attempt, err) =>
      deps.log.warn('nsg.delete-retry', { ...logFields, nsgId, rule: name, attempt, error: err.message }),
  );
}

/**
 * Runs `task`, retrying what ARM says is transient with back-off (or its Retry-After), up to the configured number
 * of attempts; anything else, and the last failure, is thrown.
 */
export async function retryTransient<T>(
  deps: NsgWritePorts,
  task: () => Promise<T>,
  onRetry: (attempt: number, err: TransientFailure) => void,
): Promise<T> {
  const max = deps.settings.maxArmAttempts;
  for (let attempt = 1; ; attempt++) {
    try {
      return await task();
    } catch (err) {
      if (!(err instanceof TransientFailure) || attempt >= max) throw err;
      onRetry(attempt, err);
      await sleep(err.retryAfterInMs ?? backoff(deps.settings.armBackoffInMs, attempt));
    }
  }
}

/**
 * What closing a rule came to: it is gone, or (the delete was refused) it was turned to `Deny`; `refusedBy` then
 * says what refused the delete: a management lock, or Azure RBAC.
 */
export type CloseOutcome = { closed: 'removed' } | { closed: 'neutralised'; refusedBy: string };

/**
 * Takes a grant's allow rule out of play: deletes it; where the delete is refused but a write is not, rewrites the
 * very same rule (name, priority, source, destinations, ports) with `access: Deny`, which lets nothing in — never
 * anything broader, so no one else's traffic is denied. A delete is refused by a `CanNotDelete` lock (409
 * ScopeLocked), and by Azure RBAC where the identity may write rules but not delete them (403 AuthorizationFailed:
 * a custom role without `securityRules/delete`, or a deny assignment such as a deployment stack's `denyDelete`,
 * which lets "authorized users … read and modify the resources, but cannot delete":
 * https://learn.microsoft.com/azure/azure-resource-manager/bicep/deployment-stacks).
 * A rule that is already `Deny` is left as it is. Call inside `withNsg`.
 * Throws `CloseBlocked` when the rewrite is refused too (`ReadOnly`, or no write either): the rule still lets
 * traffic in.
 */
export async function closeRule(
  deps: NsgWritePorts,
  nsgId: string,
  name: string,
  logFields: Record<string, unknown> = {},
): Promise<CloseOutcome> {
  let refusedBy: string;
  try {
    await deleteRuleWithRetry(deps, nsgId, name, logFields);
    return { closed: 'removed' };
  } catch (err) {
    if (err instanceof ScopeLocked) refusedBy = `a lock on ${err.lockedScopes.join(', ') || nsgId}`;
    else if (err instanceof NetworkPermissionMissing)
      refusedBy = `Azure RBAC (the deployment's identity lacks ${err.permission} on ${err.scope})`;
    else throw err;
  }
  const current = await deps.network.getRule(nsgId, name);
  if (!current) return { closed: 'removed' };
  if (current.access === 'Deny') return { closed: 'neutralised', refusedBy };
  const spec: AllowRuleSpec = {
    name: current.name,
    access: 'Deny',
    priority: current.priority,
    protocol: current.protocol === 'Tcp' || current.protocol === 'Udp' ? current.protocol : '*',
    sourceAddressPrefix: current.sourceAddressPrefixes[0] ?? '*',
    destinationAddressPrefixes: current.destinationAddressPrefixes,
    destinationPortRanges: current.destinationPortRanges,
    // ARM takes at most 140 characters here; what refused the delete (a scope id, a permission) is in the trail.
    description: 'JIT: closed; turned to Deny because its deletion was refused (see the audit trail)',
  };
  try {
    await putRuleAsIs(deps, nsgId, spec, logFields);
  } catch (err) {
    const still =
      `${name} in ${nsgId} still allows ${current.protocol} ${current.destinationPortRanges.join(',')} from ` +
      `${current.sourceAddressPrefixes.join(',')}`;
    if (err instanceof ScopeLocked)
      throw new CloseBlocked(
        `${still}: a ReadOnly lock on ${err.lockedScopes.join(', ') || nsgId} refuses both its deletion and ` +
          'turning it to Deny; lift the lock and JIT closes it',
      );
    if (err instanceof NetworkPermissionMissing)
      throw new CloseBlocked(
        `${still}: ${refusedBy} refuses its deletion, and turning it to Deny needs ${err.permission} on ${err.scope}; ` +
          'grant the role JIT needs there (docs/deploy.md) and JIT closes it',
      );
    throw err;
  }
  return { closed: 'neutralised', refusedBy };
}

/** Writes a rule exactly as given (no re-planned priority), retrying what is transient. Call inside `withNsg`. */
async function putRuleAsIs(
  deps: NsgWritePorts,
  nsgId: string,
  spec: AllowRuleSpec,
  logFields: Record<string, unknown>,
): Promise<void> {
  await retryTransient(
    deps,
    () => deps.network.putRule(nsgId, spec),
    (attempt, err) =>
      deps.log.warn('nsg.rule-retry', { ...logFields, nsgId, rule: spec.name, attempt, error: err.message }),
  );
}

/**
 * Turns on the NSG's `flushConnection`, retrying what is transient (an NSG written since it was read answers 412).
 * Call inside `withNsg`: the NSG PUT carries every rule, and JIT's own writers must not interleave with it.
 */
export async function enableFlushConnection(deps: NsgWritePorts, nsgId: string): Promise<void> {
  const enabled = await retryTransient(
    deps,
    () => deps.network.enableFlushConnection(nsgId),
    (attempt, err) => deps.log.warn('nsg.flush-connection-retry', { nsgId, attempt, error: err.message }),
  );
  if (enabled) deps.log.info('nsg.flush-connection-enabled', { nsgId });
}

type GatewayCall = keyof NetworkGateway;

/**
 * What one gateway call costs. `calls`: ARM requests it makes, as a reconciler run's budget counts them (a path
 * resolution reads the VM, its NIC and its subnet; a scope's paths cost 3 up front and then the pages read beyond
 * them; a VM listing's page holds up to a thousand VMs; turning on flushConnection reads and writes the NSG).
 * `paced`: its weight against a subscription's read bucket when a sweep is paced — a rule write counts 3, for the
 * reads that watch its long-running operation.
 */
const COST: Record<GatewayCall, { calls: number; paced: number }> = {
  getVmId: { calls: 1, paced: 1 },
  resolvePath: { calls: 3, paced: 3 },
  resolvePathsInScope: { calls: 3, paced: 3 },
  listVms: { calls: 1, paced: 1 },
  listRules: { calls: 1, paced: 1 },
  getRule: { calls: 1, paced: 1 },
  putRule: { calls: 1, paced: 3 },
  deleteRule: { calls: 1, paced: 3 },
  listLocks: { calls: 1, paced: 1 },
  listPermissions: { calls: 1, paced: 1 },
  enableFlushConnection: { calls: 2, paced: 2 },
};

/**
 * The gateway with `before` run ahead of every call (its first argument is the resource or scope id the call is
 * about), and `after` when a call returns.
 */
function aroundEachCall(
  network: NetworkGateway,
  before: (call: GatewayCall, id: string) => void | Promise<void>,
  after: (call: GatewayCall, result: unknown) => void = () => undefined,
): NetworkGateway {
  const wrapped: Partial<Record<GatewayCall, unknown>> = {};
  for (const call of Object.keys(COST) as GatewayCall[]) {
    const original = network[call].bind(network) as (id: string, ...rest: never[]) => unknown;
    wrapped[call] =
      call === 'listVms'
        ? async function* (scope: string) {
            await before(call, scope);
            yield* network.listVms(scope);
          }
        : async (id: string, ...rest: never[]) => {
            await before(call, id);
            const result: unknown = await original(id, ...rest);
            after(call, result);
            return result;
          };
  }
  return wrapped as NetworkGateway;
}

/**
 * The gateway, counting calls against a budget (COST's `calls`); past it, every call throws `ArmCallBudgetSpent`.
 * A scope's pages beyond the three charged up front are charged after the fact: they were read, whatever the
 * budget says.
 */
export function withArmBudget(
  network: NetworkGateway,
  budget: { left: number; used: number },
): NetworkGateway {
  return aroundEachCall(
    network,
    (call) => {
      const n = COST[call].calls;
      if (budget.left < n)
        throw new ArmCallBudgetSpent(`the ARM call budget is spent (${budget.used} calls)`);
      budget.left -= n;
      budget.used += n;
    },
    (call, result) => {
      if (call !== 'resolvePathsInScope') return;
      const extra = Math.max(0, (result as { armCalls: number }).armCalls - COST[call].calls);
      budget.left -= extra;
      budget.used += extra;
    },
  );
}

/**
 * The gateway, paced: at most `limiter`'s rate of calls per subscription (weighted by COST's `paced`), waiting for
 * a token rather than failing. For sweeps that share ARM's per-subscription read bucket with grants opening and
 * closing, so that a sweep never spends it.
 */
export function withArmPacing(network: NetworkGateway, limiter: RateLimiterQueue): NetworkGateway {
  return aroundEachCall(network, async (call, id) => {
    await limiter.removeTokens(
      COST[call].paced,
      /^\/subscriptions\/([^/]+)/i.exec(id)?.[1]?.toLowerCase() ?? 'tenant',
    );
  });
}
