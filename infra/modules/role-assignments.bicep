// Every role the deployment grants, in one place, each on the narrowest resource that works:
//
// | Role                                   | Scope                         | Why                                                         |
// | -------------------------------------- | ----------------------------- | ----------------------------------------------------------- |
// | Storage Blob Data Owner                | storage account               | Functions host state (leases, timers) and the app package   |
// | Storage Queue Data Contributor         | storage account               | jit-requests / jit-grants triggers and the enqueues         |
// | Storage Table Data Contributor         | storage account               | JitPolicies, JitRequests, JitGrants, JitAudit               |
// | Azure Service Bus Data Sender          | queue jit-expirations         | schedule / cancel the expiry message of a grant             |
// | Azure Service Bus Data Receiver        | queue jit-expirations         | the expirations trigger; peeking at scheduled messages      |
// | Key Vault Secrets User                 | key vault                     | read the approval-link signing key                          |
// | Monitoring Metrics Publisher           | Application Insights          | send telemetry with Entra auth (local auth is off)          |
// | JIT Access Email Sender (custom)       | Communication Services        | send approval mail (only with emailProvider = acs)          |
// | JIT Access Auth Settings Reader (cust.) | the function app itself      | read its own authsettingsV2 at start-up (easyauth check)    |
// | JIT Access NSG Rule Operator (custom)  | each target RG / subscription | read VMs, NICs, subnets; read/write/delete NSG rules; read  |
// |                                        |                               | locks and its own permissions                               |
// | JIT Access NSG Flow Flush (custom)     | each target RG / subscription | only with allowSessionCutting: read/write NSGs, to turn on  |
// |                                        |                               | flushConnection (policies with cutSessions)                 |
//
// Nothing here is Owner, Contributor, Network Contributor or User Access Administrator: the app can change NSG
// rules and nothing else about the network, and cannot grant itself more. Each assignment is named
// guid(scope, principal, role) so a re-run finds it again instead of failing on a duplicate.
//
// Assignments on target scopes need deployments at those scopes; they live in role-assignments/*.bicep and are
// deployed only from here.

@description('Required. Object (principal) id of the app identity that receives every role.')
param principalId string

@description('Required. Suffix that makes the names of the custom roles unique in the tenant (environment and resource token).')
param roleNameSuffix string

@description('Required. Name of the storage account.')
param storageAccountName string

@description('Required. Name of the Service Bus namespace.')
param serviceBusNamespaceName string

@description('Required. Name of the expirations queue; the Service Bus roles are scoped to it, not the namespace.')
param serviceBusQueueName string

@description('Required. Name of the queue of scheduled starts; the Service Bus roles are scoped to it too.')
param serviceBusStartsQueueName string

@description('Required. Name of the Key Vault.')
param keyVaultName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Required. Name of the function app; the app may read its own authentication settings and nothing else of it.')
param functionAppName string

@description('Optional. Name of the Communication Services resource; empty when mail goes through SMTP.')
param communicationServiceName string = ''

@description('Optional. Subscription ids (`/subscriptions/<id>`) on which the app may open NSG rules.')
param subscriptionTargetScopes string[] = []

@description('Optional. Resource group ids (`/subscriptions/<id>/resourceGroups/<name>`) in which the app may open NSG rules.')
param resourceGroupTargetScopes string[] = []

@description('Optional. Also give the app the flow flush role on the target scopes, so policies with cutSessions can turn on flushConnection. Default false: the app cannot write an NSG itself.')
param allowSessionCutting bool = false

// A target scope that is neither a subscription nor a resource group id would otherwise be skipped in silence and
// leave the operator wondering why grants fail there; this makes the deployment fail and name the parameter.
@maxLength(0)
@description('Optional. Must be empty: entries of targetScopes that are neither a subscription nor a resource group id.')
param malformedTargetScopes string[] = []

// Built-in role definition ids (the same in every cloud).
var roleDefinitionIds = {
  storageBlobDataOwner: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b')
  storageQueueDataContributor: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '974c5e8b-45b9-4653-ba55-5f855dd0fb88')
  storageTableDataContributor: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3')
  serviceBusDataSender: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '69a216fc-b8fb-44d8-bc22-1f3c2cd27a39')
  serviceBusDataReceiver: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4f6d3b9b-027b-4f4c-9142-0e5a2a2247e0')
  keyVaultSecretsUser: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
  monitoringMetricsPublisher: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '3913510d-42f4-4e42-8a64-420c390055eb')
}

// What shared/adapters/armNetwork.ts calls, and nothing more (test/infra/consistency.test.ts derives the list from
// the adapter's SDK calls and fails on any difference):
// - virtualMachines.get, networkInterfaces.get, subnets.get: find the NSGs in front of a VM and its private IPs;
// - virtualMachines, networkInterfaces and virtualNetworks listed by scope: the reconciler reads many VMs' paths at once;
// - securityRules list/get, beginCreateOrUpdate, beginDelete: the JIT rule itself;
// - locations/operations and operationResults: polling those long-running PUTs and DELETEs to completion;
// - locks/read: the locks on an NSG, its resource group and subscription, checked before opening (a ReadOnly lock
//   would stop JIT from closing);
// - permissions/read: its own permissions on an NSG, so `jit policy apply` and `explain` warn where it lacks some.
// Deliberately absent: networkSecurityGroups/write (would allow replacing every rule of an NSG at once; only the
// opt-in flow flush role below has it), */join/action, and anything on VMs beyond reading them.
var nsgOperatorActions = [
  'Microsoft.Compute/virtualMachines/read'
  'Microsoft.Network/networkInterfaces/read'
  'Microsoft.Network/virtualNetworks/read'
  'Microsoft.Network/virtualNetworks/subnets/read'
  'Microsoft.Network/networkSecurityGroups/securityRules/read'
  'Microsoft.Network/networkSecurityGroups/securityRules/write'
  'Microsoft.Network/networkSecurityGroups/securityRules/delete'
  'Microsoft.Network/locations/operations/read'
  'Microsoft.Network/locations/operationResults/read'
  'Microsoft.Authorization/locks/read'
  'Microsoft.Authorization/permissions/read'
]

// What shared/adapters/armNetwork.ts needs to turn on flushConnection (enableFlushConnection: read the NSG, PUT it
// back with If-Match, poll the operation). Only with allowSessionCutting.
var nsgFlushActions = [
  'Microsoft.Network/networkSecurityGroups/read'
  'Microsoft.Network/networkSecurityGroups/write'
  'Microsoft.Network/locations/operations/read'
]

// Microsoft documents these three for sending mail with an Entra identity; there is no built-in role narrower than
// Communication and Email Service Owner, which could also regenerate and list the resource's access keys.
var emailSenderActions = [
  'Microsoft.Communication/CommunicationServices/Read'
  'Microsoft.Communication/CommunicationServices/Write'
  'Microsoft.Communication/EmailServices/write'
]

// What shared/adapters/armAuthSettings.ts calls (AUTH_SETTINGS_ARM_ACTIONS): one GET of the app's own
// config/authsettingsV2, to confirm at start-up that App Service Authentication is on and required. The built-in
// Reader would also do, with every other read besides.
var authSettingsReaderActions = [
  'Microsoft.Web/sites/config/Read'
]

var useAcs = !empty(communicationServiceName)

// ---------------------------------------------------------------------------------------------------------------
// The app's own resources
// ---------------------------------------------------------------------------------------------------------------

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource serviceBusNamespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource expirationsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBusNamespace
  name: serviceBusQueueName
}

resource startsQueue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' existing = {
  parent: serviceBusNamespace
  name: serviceBusStartsQueueName
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource keyVault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// With SMTP there is no Communication Services resource; the placeholder keeps the resource id well formed, and
// every use below is conditional on useAcs.
resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' existing = {
  name: useAcs ? communicationServiceName : 'none'
}

resource storageBlobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleDefinitionIds.storageBlobDataOwner)
  scope: storageAccount
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.storageBlobDataOwner
    description: 'Functions host state and the Flex Consumption app package (identity-based AzureWebJobsStorage).'
  }
}

resource storageQueueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleDefinitionIds.storageQueueDataContributor)
  scope: storageAccount
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.storageQueueDataContributor
    description: 'Queue triggers jit-requests and jit-grants, their poison queues, and the enqueues between them.'
  }
}

resource storageTableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, principalId, roleDefinitionIds.storageTableDataContributor)
  scope: storageAccount
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.storageTableDataContributor
    description: 'Policies, requests, grants and the audit trail.'
  }
}

resource serviceBusDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(expirationsQueue.id, principalId, roleDefinitionIds.serviceBusDataSender)
  scope: expirationsQueue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.serviceBusDataSender
    description: 'Schedule and cancel the expiry message of each grant.'
  }
}

resource serviceBusDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(expirationsQueue.id, principalId, roleDefinitionIds.serviceBusDataReceiver)
  scope: expirationsQueue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.serviceBusDataReceiver
    description: 'The expirations trigger on jit-expirations, and peeking for the live scheduled message.'
  }
}

resource startsDataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(startsQueue.id, principalId, roleDefinitionIds.serviceBusDataSender)
  scope: startsQueue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.serviceBusDataSender
    description: 'Schedule and cancel the start message of a request made ahead of time.'
  }
}

resource startsDataReceiver 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(startsQueue.id, principalId, roleDefinitionIds.serviceBusDataReceiver)
  scope: startsQueue
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.serviceBusDataReceiver
    description: 'The scheduledStarts trigger on jit-starts, and peeking for the live scheduled message.'
  }
}

resource keyVaultSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, roleDefinitionIds.keyVaultSecretsUser)
  scope: keyVault
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.keyVaultSecretsUser
    description: 'Read the approval-link signing key.'
  }
}

resource monitoringMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, roleDefinitionIds.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionIds.monitoringMetricsPublisher
    description: 'Send telemetry with Entra authentication; the component accepts nothing else.'
  }
}

// Custom roles can be assigned only within their assignable scopes, which can be resource groups but not single
// resources; the assignment itself is on the Communication Services resource.
var emailSenderRoleGuid = guid(resourceGroup().id, 'jit-access-email-sender', roleNameSuffix)

resource emailSenderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (useAcs) {
  name: emailSenderRoleGuid
  properties: {
    roleName: 'JIT Access Email Sender (${roleNameSuffix})'
    description: 'Send mail through Azure Communication Services Email. Cannot read or regenerate access keys.'
    type: 'CustomRole'
    permissions: [
      {
        actions: emailSenderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

// Role definitions created from a resource group deployment still live at the subscription, so the assignment
// refers to them by their subscription-level id.
var emailSenderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', emailSenderRoleGuid)

resource emailSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (useAcs) {
  name: guid(communicationService.id, principalId, emailSenderRoleId)
  scope: communicationService
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: emailSenderRoleId
    description: 'Send approval mail.'
  }
  dependsOn: [
    emailSenderRole
  ]
}

var authSettingsReaderRoleGuid = guid(resourceGroup().id, 'jit-access-auth-settings-reader', roleNameSuffix)

resource authSettingsReaderRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: authSettingsReaderRoleGuid
  properties: {
    roleName: 'JIT Access Auth Settings Reader (${roleNameSuffix})'
    description: 'Read a web app\'s configuration, such as its App Service Authentication settings. No secrets (those need list actions).'
    type: 'CustomRole'
    permissions: [
      {
        actions: authSettingsReaderActions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: [
      resourceGroup().id
    ]
  }
}

var authSettingsReaderRoleId = subscriptionResourceId('Microsoft.Authorization/roleDefinitions', authSettingsReaderRoleGuid)

resource authSettingsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(functionApp.id, principalId, authSettingsReaderRoleId)
  scope: functionApp
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: authSettingsReaderRoleId
    description: 'Confirm at start-up that App Service Authentication protects the app.'
  }
  dependsOn: [
    authSettingsReaderRole
  ]
}

// ---------------------------------------------------------------------------------------------------------------
// The VMs' networks: one custom role per target subscription, assigned on each listed scope in it
// ---------------------------------------------------------------------------------------------------------------

var subscriptionLevelIds = map(subscriptionTargetScopes, s => toLower(split(s, '/')[2]))
var targetSubscriptionIds = union(subscriptionLevelIds, map(resourceGroupTargetScopes, s => toLower(split(s, '/')[2])))
var nsgTargets = map(targetSubscriptionIds, subscriptionId => {
  subscriptionId: subscriptionId
  assignAtSubscription: contains(subscriptionLevelIds, subscriptionId)
  resourceGroupNames: map(filter(resourceGroupTargetScopes, s => toLower(split(s, '/')[2]) == subscriptionId), s => split(s, '/')[4])
})

module nsgOperator 'role-assignments/nsg-operator.bicep' = [
  for target in nsgTargets: {
    name: 'jit-nsg-operator-${uniqueString(target.subscriptionId, roleNameSuffix)}'
    scope: subscription(target.subscriptionId)
    params: {
      principalId: principalId
      roleNameSuffix: roleNameSuffix
      actions: nsgOperatorActions
      assignAtSubscription: target.assignAtSubscription
      resourceGroupNames: target.resourceGroupNames
    }
  }
]

module nsgFlush 'role-assignments/nsg-operator.bicep' = [
  for target in (allowSessionCutting ? nsgTargets : []): {
    name: 'jit-nsg-flush-${uniqueString(target.subscriptionId, roleNameSuffix)}'
    scope: subscription(target.subscriptionId)
    params: {
      principalId: principalId
      roleNameSuffix: roleNameSuffix
      actions: nsgFlushActions
      roleKind: 'flow-flush'
      assignAtSubscription: target.assignAtSubscription
      resourceGroupNames: target.resourceGroupNames
    }
  }
]

@description('Start of the display names of the custom NSG roles: one definition per target subscription, each name ending with its subscription id.')
output nsgOperatorRoleNamePrefix string = 'JIT Access NSG Rule Operator (${roleNameSuffix},'
