/**
 * The operator alerts of a close that did not simply delete the rule (shared/domain/signals.ts): a lock (or Azure RBAC)
 * kept the rule from being deleted so it was turned to Deny (`jit.grant.neutralised`), or kept it from being either, so the
 * port is still open (`jit.grant.close-blocked`). The log lines and audit events say the same to a reader; these are
 * what the alert rules in infra/modules/alerts.bicep fire on.
 */
import type { Deps } from './deps';

type AlertPorts = Pick<Deps, 'signals' | 'requests'>;

/** The rule a close was about, and the VM when the caller knows it (read from the request otherwise). */
interface ClosingRule {
  requestId: string;
  nsg: string;
  rule: string;
  vm?: string;
}

export async function signalNeutralised(deps: AlertPorts, at: ClosingRule, refusedBy: string): Promise<void> {
  deps.signals.event('jit.grant.neutralised', { ...(await withVm(deps, at)), refusedBy });
}

export async function signalCloseBlocked(deps: AlertPorts, at: ClosingRule, reason: string): Promise<void> {
  deps.signals.event('jit.grant.close-blocked', { ...(await withVm(deps, at)), reason });
}

/** Lower-cased as in every other grant event; an alert must fire even when the request cannot be read (or is gone). */
async function withVm(deps: AlertPorts, at: ClosingRule): Promise<ClosingRule> {
  const vm = at.vm ?? (await deps.requests.get(at.requestId).catch(() => undefined))?.value.vmId;
  return vm ? { ...at, vm: vm.toLowerCase() } : at;
}
