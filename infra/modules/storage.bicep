// The storage account: the app's tables and work queues, the Functions host's own state (blob leases, timer
// schedules), the blob container Flex Consumption deploys the app package from, and the audit trail's daily anchors
// in a container under a time-based retention (WORM) policy.
//
// Shared-key access is off, so the account cannot be reached with an account key or a SAS signed by one: every
// caller, the Functions host and the deployment included, authenticates with Entra ID and an RBAC role.

@description('Required. Name of the storage account (3-24 lowercase letters and digits).')
param name string

@description('Required. Name of the blob container Flex Consumption reads the app package from.')
param deploymentContainerName string

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
])
@description('Optional. Redundancy of the account. ZRS keeps the state tables available through a zone outage.')
param skuName string = 'Standard_LRS'

@minValue(1)
@maxValue(146000)
@description('Optional. Days each audit anchor (a day\'s chain head and digest) stays immutable: it can be read, not overwritten or deleted, by anyone, until it is this old.')
param auditAnchorRetentionInDays int = 2557

@description('Required. Azure region of the account.')
param location string

@description('Optional. Tags of the account.')
param tags object = {}

// Exactly the names in shared/names.ts (TABLES, QUEUES); test/infra checks they stay in step. The poison queues
// are where the Functions host moves a message after maxDequeueCount failures (host.json); creating them here
// keeps the host from needing to create queues at run time.
var tableNames = [
  'JitPolicies'
  'JitRequests'
  'JitGrants'
  'JitAudit'
  'JitApprovals'
  'JitNsgs'
]
var queueNames = [
  'jit-requests'
  'jit-grants'
  'jit-notifications'
  'jit-requests-poison'
  'jit-grants-poison'
  'jit-notifications-poison'
]

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    dnsEndpointType: 'Standard'
    // Flex Consumption without VNet integration reaches storage over its public endpoint; access is by identity
    // only. Restricting the network needs VNet integration and private endpoints (see docs/deploy.md).
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

// The audit anchors (shared/adapters/auditAnchorBlobs.ts). A container-level time-based retention policy
// (https://learn.microsoft.com/azure/storage/blobs/immutable-time-based-retention-policy-overview): a blob can be
// created and read; nobody can overwrite or delete it until it is auditAnchorRetentionInDays old, whatever their
// role — the app's identity holds Storage Blob Data Owner on the account and still cannot. No protected append
// writes: an anchor is written once, whole. The policy is deployed unlocked: an owner of the subscription could still
// delete or shorten it, so lock it once you have checked the period (docs/operations.md, "Audit anchors"); a locked
// policy can only be lengthened, and Bicep cannot lock it (locking is an action, not a property).
// Schema: https://learn.microsoft.com/azure/templates/microsoft.storage/storageaccounts/blobservices/containers/immutabilitypolicies
resource auditAnchorsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'jit-audit-anchors'
  properties: {
    publicAccess: 'None'
  }
}

resource auditAnchorsRetention 'Microsoft.Storage/storageAccounts/blobServices/containers/immutabilityPolicies@2023-05-01' = {
  parent: auditAnchorsContainer
  name: 'default'
  properties: {
    immutabilityPeriodSinceCreationInDays: auditAnchorRetentionInDays
    allowProtectedAppendWrites: false
    allowProtectedAppendWritesAll: false
  }
}

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: account
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

@description('Name of the storage account.')
output name string = account.name

@description('Name of the deployment container.')
output deploymentContainerName string = deploymentContainer.name

@description('Name of the container of audit anchors.')
output auditAnchorsContainerName string = auditAnchorsContainer.name
