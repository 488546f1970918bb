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
