// The Service Bus namespace and the `jit-expirations` queue that carries one scheduled message per grant, due at
// its expiry. Standard is the smallest tier with duplicate detection; local (SAS) authentication is off, so only
// Entra ID principals with a data role on the queue can send or receive.

@description('Required. Name of the Service Bus namespace.')
param name string

@description('Required. Azure region of the namespace.')
param location string

@description('Optional. Tags of the namespace.')
param tags object = {}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    disableLocalAuth: true
    minimumTlsVersion: '1.2'
    publicNetworkAccess: 'Enabled'
  }
}

resource expirations 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  // SERVICE_BUS_QUEUES.expirations in shared/names.ts.
  name: 'jit-expirations'
  properties: {
    // The expirations function deletes the rules in seconds; the host renews the lock while it works
    // (host.json maxAutoLockRenewalDuration, as long as functionTimeout), so a short lock only shortens the wait
    // after a crashed worker.
    lockDuration: 'PT1M'
    // After ten failed deliveries the message goes to the dead-letter queue; the reconciler still closes the grant.
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    // The app sends messageId `<purpose>:<requestId>:<epochMs>`: a retry that schedules the same expiry again within
    // the window is dropped by Service Bus instead of producing a second message, and the app looks up the one that
    // lives (docs/operations.md, exactly one message per purpose). The window outlasts the latest retry of a crashed
    // invocation (function timeout plus the queue message's 10-minute invisibility; test/infra/hostJson.test.ts).
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
    // Longer than any grant (JIT_MAX_DURATION), so an unprocessed expiry dead-letters rather than vanishing.
    defaultMessageTimeToLive: 'P14D'
    requiresSession: false
    enablePartitioning: false
  }
}

@description('Name of the namespace.')
output name string = namespace.name

@description('Resource id of the namespace (the scope of the dead-letter alert).')
output id string = namespace.id

@description('Host name of the namespace, as ServiceBusConnection__fullyQualifiedNamespace expects it (no scheme, no port).')
output fullyQualifiedNamespace string = replace(replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443', ''), '/', '')

// SERVICE_BUS_QUEUES.starts in shared/names.ts: one scheduled message per request made ahead of time (startAt).
resource starts 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: 'jit-starts'
  properties: {
    lockDuration: 'PT1M'
    maxDeliveryCount: 10
    deadLetteringOnMessageExpiration: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: 'PT1H'
  }
}

@description('Name of the expirations queue.')
output expirationsQueueName string = expirations.name

@description('Name of the queue of scheduled starts.')
output startsQueueName string = starts.name
