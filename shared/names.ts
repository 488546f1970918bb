/** Names of the storage tables and queues and the Service Bus queue. Bicep provisions exactly these. */
export const TABLES = {
  policies: 'JitPolicies',
  requests: 'JitRequests',
  grants: 'JitGrants',
  audit: 'JitAudit',
  /** One row per approver decision (manual approval). */
  approvals: 'JitApprovals',
  /** NSGs the reconciler sweeps, VMs policies cover, baseline rules to keep, per-NSG write leases. */
  nsgs: 'JitNsgs',
} as const;

export const QUEUES = {
  requests: 'jit-requests',
  grants: 'jit-grants',
  /** Chat and webhook deliveries, one message per notification and target (shared/usecases/notifyChannels.ts). */
  notifications: 'jit-notifications',
} as const;

/**
 * Attempts at a storage queue message before the Functions host moves it to `<queue>-poison`: host.json's
 * `extensions.queues.maxDequeueCount`, which test/infra checks against this.
 */
export const MAX_DEQUEUE_COUNT = 5;

/** Blob containers. */
export const CONTAINERS = {
  /** The audit trail's daily anchors, under a time-based retention (WORM) policy. */
  auditAnchors: 'jit-audit-anchors',
} as const;

export const SERVICE_BUS_QUEUES = {
  expirations: 'jit-expirations',
  /** Scheduled starts of requests made ahead of time (`startAt`). */
  starts: 'jit-starts',
} as const;

/** The connection names the function triggers use (app-setting prefixes, as the Functions host reads them). */
export const CONNECTIONS = {
  storage: 'AzureWebJobsStorage',
  serviceBus: 'ServiceBusConnection',
} as const;
