/**
 * Policies as documents and the API show them: the entries of a document, a change of the set, an explanation.
 * Types only, apart from the code that makes them, so that the `jit` package can share them without carrying
 * the validator.
 */
import type { Protocol } from './types';

/** One port as the document writes it (and as the API shows it). */
export interface PolicyPortEntry {
  port: number;
  protocol: Protocol;
  maxDuration: string;
}

export type PolicyApprovalEntry =
  { mode: 'auto' } | { mode: 'manual'; approvers: string[]; required: number; timeout: string };

/** One policy as the document writes it, with every default filled in. */
export interface PolicyEntry {
  scope: string;
  description?: string;
  ports: PolicyPortEntry[];
  allowedSourcePrefixes: string[];
  requesters: string[];
  approval: PolicyApprovalEntry;
  justification: { required: boolean; pattern?: string };
  enforce: boolean;
  /** Written only when true (the default is false), so documents from before the option read back unchanged. */
  cutSessions?: true;
}

/** The whole document: `GET /api/policies` returns it, `PUT /api/policies` takes it. */
export interface PolicyDocument {
  policies: PolicyEntry[];
}

/** One field that differs, by its path in the document (`approval.mode`, `ports`). */
export interface FieldChange {
  field: string;
  before: unknown;
  after: unknown;
}

export interface PolicyChange {
  scope: string;
  fields: FieldChange[];
  before: PolicyEntry;
  after: PolicyEntry;
}

/** What applying a document does to the stored set. Entries are in document form, as a reviewer reads them. */
export interface PolicyDiff {
  added: PolicyEntry[];
  changed: PolicyChange[];
  removed: PolicyEntry[];
  /** How many policies stay as they are. */
  unchanged: number;
}

/** One scope looked at, most specific first. */
export interface ScopeCheck {
  scope: string;
  level: 'vm' | 'resourceGroup' | 'subscription';
  /** A policy is stored for this scope. */
  hasPolicy: boolean;
  /** This is the policy that decides: the first scope, in this order, with a policy. */
  decides: boolean;
}

/** Why a VM (and a port) is or is not requestable: `jit policy explain`. */
export interface AccessExplanation {
  vm: string;
  /** The VM, its resource group, its subscription: the order in which policies are looked for. */
  checked: ScopeCheck[];
  /** Scope of the deciding policy; absent when no scope has one (every request is refused). */
  decidedBy?: string;
  policy?: PolicyEntry;
  /** Whether the deciding policy names the caller among its requesters. */
  callerIsRequester: boolean;
  /** The asked port under the deciding policy; broader policies do not add ports to it. */
  port?: { port: number; protocol: Protocol; allowed: boolean; maxDuration?: string };
  /**
   * For administrators: what the deployment cannot read or write in the VM's network (a VNet or NSG outside the
   * scopes its role covers), one line each. Absent when there is nothing to say.
   */
  warnings?: string[];
}
