// azure-jit-access: everything `azd up` provisions, in the subscription the operator deploys to.
//
// One resource group holds the app (Flex Consumption function app, storage, Service Bus, monitoring, Key Vault,
// optional Communication Services email). The app reaches every service with its user-assigned managed identity;
// no connection string, account key or SAS is created or read here. Its only rights over VMs and NSGs come from
// a custom role, assigned on each scope listed in `targetScopes` (see modules/role-assignments.bicep).
targetScope = 'subscription'

metadata name = 'azure-jit-access'
metadata description = 'Just-in-time network access for Azure VMs: a Flex Consumption function app with managed identity and least-privilege roles.'

// ---------------------------------------------------------------------------------------------------------------
// Parameters
// ---------------------------------------------------------------------------------------------------------------

@minLength(1)
@maxLength(64)
@description('Required. Name of the azd environment; it names the resource group and seeds the resource token that makes every resource name unique.')
param environmentName string

@minLength(1)
@description('Required. Azure region for all resources. It must offer the Flex Consumption plan (`az functionapp list-flexconsumption-locations`).')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(1)
@description('Required. Resource ids of the resource groups (`/subscriptions/<id>/resourceGroups/<name>`) or subscriptions (`/subscriptions/<id>`) whose VMs this deployment may open. The app gets the custom NSG rule operator role on each, and nothing outside them.')
param targetScopes string[]

@minLength(1)
@description('Required. Application (client) id of the Entra ID app registration that App Service Authentication validates callers against (see docs/deploy.md, "Register the app").')
param authClientId string

@description('Optional. HTTPS base URL people reach the app at, used in links in approval mail. Empty means the function app\'s default host name.')
param publicBaseUrl string = ''

@minValue(0)
@maxValue(3)
@description('Optional. Trusted proxies (Front Door, Application Gateway) in front of the app that append to X-Forwarded-For; 0 when people reach the app directly.')
param trustedProxyHops int = 0

@description('Optional. Let policies with cutSessions end established sessions: gives the app a second custom role on the target scopes that can write NSGs (to turn on flushConnection). Default false.')
param allowSessionCutting bool = false

@allowed([
  'acs'
  'smtp'
])
@description('Optional. How the app sends mail: `acs` provisions Azure Communication Services Email with an Azure-managed domain; `smtp` provisions nothing and leaves mail to an SMTP relay the operator already has.')
param emailProvider string = 'acs'

@description('Optional. Where Communication Services stores email data at rest (for example `United States`, `Europe`, `UK`). Used only when emailProvider is `acs`.')
param emailDataLocation string = 'United States'

@description('Optional. SMTP relay host when emailProvider is smtp.')
param smtpHost string = ''

@description('Optional. SMTP relay port when emailProvider is smtp.')
param smtpPort int = 587

@description('Optional. Sender address when emailProvider is smtp.')
param smtpFrom string = ''

@description('Optional. Mailbox per approver group, "<group object id>=<address>,...".')
param approverGroupMailboxes string = ''

@description('Optional. NCRONTAB schedule (with seconds) of the reconciler, the safety net that closes grants whose expiry message was lost. Shorter is safer and costs more executions.')
param reconcileSchedule string = '0 */2 * * * *'

@description('Optional. NSG priorities JIT rules may use, "min-max" within 100-4096. Keep your own deny rules at higher numbers than this band.')
param priorityRange string = '1000-1999'

@description('Optional. Longest grant any policy may allow, as an ISO-8601 duration.')
param maxDuration string = 'P1D'

@description('Optional. How long past its expiry a grant may still be open before the reconciler closes it itself, as an ISO-8601 duration.')
param expiryGrace string = 'PT2M'

@description('Optional. How long before its expiry a grant starts closing, so its port is shut by then: about one NSG rule operation plus a wait for a busy NSG. An ISO-8601 duration up to PT1M, never more than a tenth of the grant; PT0S starts closing at expiry.')
param closeLead string = 'PT10S'

@minValue(1)
@maxValue(1000)
@description('Optional. Most instances the function app may scale out to. Grants are rare and NSG writes serialize per NSG, so a low ceiling costs nothing and bounds a runaway.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Optional. Memory of each function app instance in MB; billing is per GB-second of this size.')
param instanceMemoryMB int = 2048

@minValue(7)
@maxValue(90)
@description('Optional. Days a deleted Key Vault (and its signing key) stays recoverable. Purge protection is always on, so the vault name stays taken for this long after `azd down`.')
param keyVaultSoftDeleteRetentionInDays int = 90

@minValue(30)
@maxValue(730)
@description('Optional. Days Log Analytics keeps the app\'s logs and Key Vault audit events. The JitAudit table is the audit trail of grants; this is operational logging.')
param logRetentionInDays int = 30

@minLength(3)
@description('Required. Mail address of the operator: every alert (access open past expiry, failed grants, dead letters, reconciler trouble, function failures) goes to it.')
param operatorEmail string

@minValue(3)
@maxValue(1440)
@description('Optional. Minutes past its expiry a grant may still be open before the critical alert fires; keep it above expiryGrace plus one reconciler interval.')
param openPastExpiryAlertMinutes int = 10

@description('Optional. Name of the Key Vault secret holding the previous approval-link key while you rotate it (docs/operations.md); empty when not rotating.')
param approvalKeyPreviousSecretName string = ''

@description('Optional. Name of the Key Vault secret holding the Teams, Slack and webhook targets (a JSON array, docs/operations.md); empty for mail only.')
param notifyTargetsSecretName string = ''

@minValue(1)
@maxValue(146000)
@description('Optional. Days each daily audit anchor stays immutable (WORM) in the storage account; nobody can delete or overwrite it before. Default seven years.')
param auditAnchorRetentionInDays int = 2557

@description('Optional. Name of the resource group to create. Empty means `rg-<environmentName>`.')
param resourceGroupName string = ''

@description('Optional. Tags added to every resource, on top of `azd-env-name`.')
param tags object = {}

// ---------------------------------------------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------------------------------------------

var abbrs = loadJsonContent('abbreviations.json')
// Stable per subscription, environment and region: a re-run of `azd up` updates the same resources.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var allTags = union(tags, { 'azd-env-name': environmentName })
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var useAcs = emailProvider == 'acs'

// Target scopes are split by kind because a role assignment on a subscription and one on a resource group need
// deployments at different scopes. Anything that is neither is refused below rather than silently skipped.
var subscriptionTargetScopes = filter(targetScopes, s => isSubscriptionId(s))
var resourceGroupTargetScopes = filter(targetScopes, s => isResourceGroupId(s))
var malformedTargetScopes = filter(targetScopes, s => !isSubscriptionId(s) && !isResourceGroupId(s))

// Written without indexing into the split id: ARM evaluates every operand of `&&`, so `split(id, '/')[4]` would
// fail the whole deployment on a short id instead of reporting it as malformed. Exactly one empty segment (the
// one before the leading slash) rules out a trailing slash and an empty name.
func isSubscriptionId(id string) bool =>
  length(split(id, '/')) == 3 && startsWith(toLower(id), '/subscriptions/') && length(filter(split(id, '/'), segment => empty(segment))) == 1

func isResourceGroupId(id string) bool =>
  length(split(id, '/')) == 5 && startsWith(toLower(id), '/subscriptions/') && contains(toLower(id), '/resourcegroups/') && length(filter(split(id, '/'), segment => empty(segment))) == 1

// ---------------------------------------------------------------------------------------------------------------
// Resources
// ---------------------------------------------------------------------------------------------------------------

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: !empty(resourceGroupName) ? resourceGroupName : '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: allTags
}

module identities 'modules/identity.bicep' = {
  name: 'identities'
  scope: rg
  params: {
    appIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}func-${resourceToken}'
    authIdentityName: '${abbrs.managedIdentityUserAssignedIdentities}auth-${resourceToken}'
    location: location
    tags: allTags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    retentionInDays: logRetentionInDays
    location: location
    tags: allTags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    deploymentContainerName: 'app-package-${resourceToken}'
    auditAnchorRetentionInDays: auditAnchorRetentionInDays
    location: location
    tags: allTags
  }
}

module serviceBus 'modules/service-bus.bicep' = {
  name: 'service-bus'
  scope: rg
  params: {
    name: '${abbrs.serviceBusNamespaces}${resourceToken}'
    location: location
    tags: allTags
  }
}

module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    softDeleteRetentionInDays: keyVaultSoftDeleteRetentionInDays
    logAnalyticsWorkspaceId: monitoring.outputs.logAnalyticsWorkspaceId
    location: location
    tags: allTags
  }
}

module email 'modules/email.bicep' = if (useAcs) {
  name: 'email'
  scope: rg
  params: {
    communicationServiceName: '${abbrs.communicationCommunicationServices}${resourceToken}'
    emailServiceName: '${abbrs.communicationEmailServices}${resourceToken}'
    dataLocation: emailDataLocation
    tags: allTags
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: allTags
    appIdentityId: identities.outputs.appIdentityId
    appIdentityClientId: identities.outputs.appIdentityClientId
    authIdentityId: identities.outputs.authIdentityId
    authIdentityClientId: identities.outputs.authIdentityClientId
    authClientId: authClientId
    storageAccountName: storage.outputs.name
    deploymentContainerName: storage.outputs.deploymentContainerName
    serviceBusFullyQualifiedNamespace: serviceBus.outputs.fullyQualifiedNamespace
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    publicBaseUrl: publicBaseUrl
    trustedProxyHops: trustedProxyHops
    reconcileSchedule: reconcileSchedule
    priorityRange: priorityRange
    maxDuration: maxDuration
    expiryGrace: expiryGrace
    closeLead: closeLead
    maximumInstanceCount: maximumInstanceCount
    instanceMemoryMB: instanceMemoryMB
    keyVaultName: keyVault.outputs.name
    mailMode: emailProvider
    mailFrom: useAcs ? email.outputs.senderAddress : smtpFrom
    acsEndpoint: useAcs ? email.outputs.endpoint : ''
    smtpHost: smtpHost
    smtpPort: smtpPort
    approverGroupMailboxes: approverGroupMailboxes
    approvalKeyPreviousSecretName: approvalKeyPreviousSecretName
    notifyTargetsSecretName: notifyTargetsSecretName
  }
}

module alerts 'modules/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    operatorEmail: operatorEmail
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    serviceBusNamespaceId: serviceBus.outputs.id
    openPastExpiryMinutes: openPastExpiryAlertMinutes
    location: location
    tags: allTags
  }
}

module workbook 'modules/workbook.bicep' = {
  name: 'workbook'
  scope: rg
  params: {
    displayName: 'JIT access (${environmentName})'
    applicationInsightsId: monitoring.outputs.applicationInsightsId
    location: location
    tags: allTags
  }
}

module roleAssignments 'modules/role-assignments.bicep' = {
  name: 'role-assignments'
  scope: rg
  params: {
    principalId: identities.outputs.appIdentityPrincipalId
    roleNameSuffix: '${environmentName}-${resourceToken}'
    // From the module's output, so that the app exists before its role assignment is made.
    functionAppName: functionApp.outputs.name
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    serviceBusQueueName: serviceBus.outputs.expirationsQueueName
    serviceBusStartsQueueName: serviceBus.outputs.startsQueueName
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    communicationServiceName: useAcs ? email.outputs.communicationServiceName : ''
    subscriptionTargetScopes: subscriptionTargetScopes
    resourceGroupTargetScopes: resourceGroupTargetScopes
    malformedTargetScopes: malformedTargetScopes
    allowSessionCutting: allowSessionCutting
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Outputs: azd stores these in the environment (`azd env get-values`); docs/deploy.md says what each is for.
// ---------------------------------------------------------------------------------------------------------------

@description('Region the resources were deployed to.')
output AZURE_LOCATION string = location

@description('Entra tenant of the deployment (where sign-in and group claims come from).')
output AZURE_TENANT_ID string = tenant().tenantId

@description('Resource group that holds the deployment.')
output AZURE_RESOURCE_GROUP string = rg.name

@description('Name of the Function App.')
output AZURE_FUNCTION_APP_NAME string = functionApp.outputs.name

@description('Name of the Function App, as azd looks up the `api` service.')
output SERVICE_API_NAME string = functionApp.outputs.name

@description('Default URL of the Function App.')
output SERVICE_API_URI string = functionApp.outputs.defaultUrl

@description('Public base URL of the app: what approval links and the CLI use.')
output JIT_APP_URL string = functionApp.outputs.publicBaseUrl

@description('Redirect URI to register on the sign-in app registration (the App Service Authentication callback).')
output JIT_AUTH_REDIRECT_URI string = '${functionApp.outputs.publicBaseUrl}/.auth/login/aad/callback'

@description('Client id of the app\'s user-assigned identity (ARM, storage, Service Bus, Key Vault).')
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identities.outputs.appIdentityClientId

@description('Principal id of the app\'s user-assigned identity, for role assignments made outside this deployment.')
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identities.outputs.appIdentityPrincipalId

@description('Client id of the identity App Service Authentication uses as its client credential.')
output JIT_AUTH_IDENTITY_CLIENT_ID string = identities.outputs.authIdentityClientId

@description('Principal id of that identity: the subject of the federated credential on the app registration.')
output JIT_AUTH_IDENTITY_PRINCIPAL_ID string = identities.outputs.authIdentityPrincipalId

@description('Storage account of the tables, queues and audit anchors.')
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name

@description('Host name of the Service Bus namespace (scheduled expiries and starts).')
output AZURE_SERVICE_BUS_NAMESPACE string = serviceBus.outputs.fullyQualifiedNamespace

@description('Name of the Key Vault that holds the app\'s secrets.')
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name

@description('URI of the Key Vault.')
output AZURE_KEY_VAULT_URI string = keyVault.outputs.uri

@description('Name of the Application Insights component (logs, metrics, alerts).')
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.applicationInsightsName

@description('Endpoint of Azure Communication Services Email when it sends the mail, else empty.')
output ACS_EMAIL_ENDPOINT string = useAcs ? email.outputs.endpoint : ''

@description('Sender address of the mail when Azure Communication Services sends it, else empty.')
output ACS_EMAIL_SENDER_ADDRESS string = useAcs ? email.outputs.senderAddress : ''

@description('Name prefix of the custom NSG roles, for assigning them at further scopes (docs/deploy.md).')
output JIT_NSG_OPERATOR_ROLE_NAME_PREFIX string = roleAssignments.outputs.nsgOperatorRoleNamePrefix

@description('Blob container (immutable) of the daily audit anchors.')
output JIT_AUDIT_ANCHORS_CONTAINER string = storage.outputs.auditAnchorsContainerName

@description('Resource id of the operations workbook.')
output JIT_WORKBOOK_ID string = workbook.outputs.workbookId
