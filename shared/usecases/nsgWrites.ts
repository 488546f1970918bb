/**
 * Writing to an NSG safely: one writer per NSG (in this process, and across instances through the lease), and
 * every write retried with back-off and a fresh plan of its priority, within a bound.
 */
import { ruleMatchesSpec } from '../domain/baseline';
import { ArmCallBudgetSpent, GrantNotApplicable, PriorityTaken, TransientFailure } from '../domain/errors';
import type { NetworkGateway } from '../domain/ports';
import type { PriorityBand } from '../domain/priority';
import { planPriority, sameRuleName } from '../domain/priority';
import type { AllowRuleSpec, SecurityRuleView } from '../domain/types';
import type { Deps } from './deps';
import type { RateLimiterQueue } from 'rate-limiter-flexible';
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `task` as the only JIT writer of the NSG: queued behind this process's other writers, then holding the
 * NSG's lease against other instances. Never nest it (the lock is not re-entrant).
 */
export function withNsg<T>(deps: Deps, nsgId: string, task: () => Promise<T>): Promise<T> {
  return deps.locks.withLock(nsgId, task);
}

const watched = new Map<string, number>();
const WATCH_MEMORY_IN_MS = 10 * 60_000;

/**
 * Puts the NSG on the reconciler's watch list with what JIT protects there. Remembered in-process for a while:
 * a burst of grants on one NSG then costs one registry read, not one per grant.
 */
export async function watchNsg(
  deps: Deps,
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
export function backoff(baseInMs: number, attempt: number): number {
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
  deps: Deps,
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
  deps: Deps,
  nsgId: string,
  name: string,
  logFields: Record<string, unknown> = {},
): Promise<void> {
  const max = deps.settings.maxArmAttempts;
  for (let attempt = 1; ; attempt++) {
    try {
      await deps.network.deleteRule(nsgId, name);
      return;
    } catch (err) {
      if (!(err instanceof TransientFailure) || attempt >= max) throw err;
      deps.log.warn('nsg.delete-retry', { ...logFields, nsgId, rule: name, attempt, error: err.message });
      await sleep(err.retryAfterInMs ?? backoff(deps.settings.armBackoffInMs, attempt));
    }
  }
}

/**
 * The gateway, counting calls against a budget; past it, every call throws `ArmCallBudgetSpent`. A path
 * resolution counts 3 (VM, NIC, subnet), a VM listing 1 (a page holds up to a thousand VMs), a scope's paths
 * 3 up front and then the pages it really read.
 */
export function withArmBudget(
  network: NetworkGateway,
  budget: { left: number; used: number },
): NetworkGateway {
  const take = (n: number) => {
    if (budget.left < n) throw new ArmCallBudgetSpent(`the ARM call budget is spent (${budget.used} calls)`);
    budget.left -= n;
    budget.used += n;
  };
  return {
    resolvePath(vmId) {
      take(3);
      return network.resolvePath(vmId);
    },
    async resolvePathsInScope(scope) {
      take(3);
      const result = await network.resolvePathsInScope(scope);
      // Pages beyond the three are charged after the fact: they were read, whatever the budget says.
      const extra = Math.max(0, result.armCalls - 3);
      budget.left -= extra;
      budget.used += extra;
      return result;
    },
    listVms(scope) {
      take(1);
      return network.listVms(scope);
    },
    listRules(nsgId) {
      take(1);
      return network.listRules(nsgId);
    },
    getRule(nsgId, name) {
      take(1);
      return network.getRule(nsgId, name);
    },
    putRule(nsgId, rule) {
      take(1);
      return network.putRule(nsgId, rule);
    },
    deleteRule(nsgId, name) {
      take(1);
      return network.deleteRule(nsgId, name);
    },
  };
}

/**
 * The gateway, paced: at most `limiter`'s rate of calls per subscription (a path resolution, a scope's listings
 * or a rule write count 3, anything else 1), waiting for a token rather than failing. For sweeps that share
 * ARM's per-subscription read bucket with grants opening and closing, so that a sweep never spends it.
 */
export function withArmPacing(network: NetworkGateway, limiter: RateLimiterQueue): NetworkGateway {
  const pace = (id: string, tokens: number) =>
    limiter.removeTokens(tokens, /^\/subscriptions\/([^/]+)/i.exec(id)?.[1]?.toLowerCase() ?? 'tenant');
  return {
    async resolvePath(vmId) {
      await pace(vmId, 3);
      return network.resolvePath(vmId);
    },
    async resolvePathsInScope(scope) {
      await pace(scope, 3);
      return network.resolvePathsInScope(scope);
    },
    async *listVms(scope) {
      await pace(scope, 1);
      yield* network.listVms(scope);
    },
    async listRules(nsgId) {
      await pace(nsgId, 1);
      return network.listRules(nsgId);
    },
    async getRule(nsgId, name) {
      await pace(nsgId, 1);
      return network.getRule(nsgId, name);
    },
    async putRule(nsgId, rule) {
      await pace(nsgId, 3);
      return network.putRule(nsgId, rule);
    },
    async deleteRule(nsgId, name) {
      await pace(nsgId, 3);
      return network.deleteRule(nsgId, name);
    },
  };
}
