// The function app on a Flex Consumption plan (Linux, Node 22), its app settings, and App Service Authentication.
//
// - HTTPS only, TLS 1.2 minimum, FTP and basic-auth publishing off: azd deploys with an Entra token, so no
//   publishing password exists to leak.
// - Every app setting is identity-based; none holds a key or a connection string with a secret in it.
// - App Service Authentication (Entra ID) answers 401 to any call without a valid token or session before it reaches
//   the code, except on the approval page, which sends an anonymous browser to sign in itself; it hands the code the
//   caller in x-ms-client-principal (shared/http/auth.ts). The app reads these settings back at start-up and serves
//   only while they require authentication (shared/usecases/serving.ts).

@description('Required. Name of the function app; also its default host name `<name>.azurewebsites.net`.')
param name string

@description('Required. Name of the Flex Consumption plan.')
param planName string

@description('Required. Azure region of the plan and the app.')
param location string

@description('Optional. Tags of the plan and the app.')
param tags object = {}

@description('Required. Resource id of the identity the app and the Functions host run as.')
param appIdentityId string

@description('Required. Client id of that identity.')
param appIdentityClientId string

@description('Required. Resource id of the identity App Service Authentication signs in with (federated credential).')
param authIdentityId string

@description('Required. Client id of that identity.')
param authIdentityClientId string

@description('Required. Application (client) id of the Entra ID app registration that guards the app.')
param authClientId string

@description('Required. Name of the storage account (app state, work queues, host state, deployment package).')
param storageAccountName string

@description('Required. Blob container the app package is deployed to.')
param deploymentContainerName string

@description('Required. Host name of the Service Bus namespace.')
param serviceBusFullyQualifiedNamespace string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@description('Optional. HTTPS base URL people reach the app at; empty means the default host name.')
param publicBaseUrl string = ''

@description('Optional. NCRONTAB schedule of the reconciler.')
param reconcileSchedule string = '0 */2 * * * *'

@description('Optional. Requests one caller may create per minute, per instance.')
param rateLimitPerMinute int = 30

@description('Optional. Approval decisions one person from one address may post per minute, per instance.')
param approvalAttemptsPerMinute int = 10

@minValue(0)
@maxValue(3)
@description('Optional. Trusted proxies (Front Door, Application Gateway) in front of the app that append to X-Forwarded-For; 0 when people reach the app directly.')
param trustedProxyHops int = 0

@description('Required. Name of the Key Vault holding the approval-link signing key (secret jit-approval-key).')
param keyVaultName string

@description('Optional. Name of the Key Vault secret holding the previous approval-link key while rotating (e.g. jit-approval-key-previous); empty when not rotating.')
param approvalKeyPreviousSecretName string = ''

@description('Optional. Name of the Key Vault secret holding the chat and webhook targets (a JSON array, docs/operations.md); empty for none.')
param notifyTargetsSecretName string = ''

@description('Optional. How mail is sent: acs (Communication Services, managed identity) or smtp.')
@allowed(['acs', 'smtp'])
param mailMode string = 'acs'

@description('Optional. Sender address of mail to approvers and requesters.')
param mailFrom string = ''

@description('Optional. Communication Services endpoint, in acs mode.')
param acsEndpoint string = ''

@description('Optional. SMTP relay host, in smtp mode.')
param smtpHost string = ''

@description('Optional. SMTP relay port, in smtp mode.')
param smtpPort int = 587

@description('Optional. Mailbox per approver group, "<group object id>=<address>,...".')
param approverGroupMailboxes string = ''

@description('Optional. NSG priority band of JIT rules, "min-max".')
param priorityRange string = '1000-1999'

@description('Optional. NSG priority band of baseline deny rules (policies with enforce), "min-max", below the JIT band; empty means the 1000 priorities right below it.')
param baselinePriorityRange string = ''

@description('Optional. Most ARM calls one reconciler run makes; the rest waits for the next run.')
param reconcileMaxArmCalls int = 200

@description('Optional. Longest grant any policy may allow (ISO-8601).')
param maxDuration string = 'P1D'

@description('Optional. Grace past expiry before the reconciler closes a grant itself (ISO-8601).')
param expiryGrace string = 'PT2M'

@description('Optional. How long before its expiry a grant starts closing, so its port is shut by then (ISO-8601, up to PT1M; PT0S starts at expiry).')
param closeLead string = 'PT10S'

@minValue(1)
@maxValue(1000)
@description('Optional. Most instances the app may scale out to.')
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
@description('Optional. Memory per instance in MB.')
param instanceMemoryMB int = 2048

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

// Service URIs built from the cloud's storage suffix, without the trailing slash primaryEndpoints carries.
var storageSuffix = environment().suffixes.storage
var blobServiceUri = 'https://${storageAccountName}.blob.${storageSuffix}'
var queueServiceUri = 'https://${storageAccountName}.queue.${storageSuffix}'
var tableServiceUri = 'https://${storageAccountName}.table.${storageSuffix}'

// JIT_ARM_ENDPOINT follows the cloud this is deployed to (public, sovereign); the code wants no trailing slash.
var resourceManager = environment().resourceManager
var armEndpoint = endsWith(resourceManager, '/') ? substring(resourceManager, 0, length(resourceManager) - 1) : resourceManager

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    // Linux.
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the deployment target of service `api` in azure.yaml by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${appIdentityId}': {}
      '${authIdentityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    // Key Vault references in app settings resolve with the app identity, not a system identity.
    keyVaultReferenceIdentity: appIdentityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${blobServiceUri}/${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: appIdentityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      // Node 22: Azure Functions 4.x supports Node.js 22 (end of support April 30, 2027) and 24; Node.js 20's support
      // ended April 30, 2026 (https://learn.microsoft.com/azure/azure-functions/supported-languages?pivots=programming-language-javascript).
      // package.json engines, @types/node, .ci/run and the README name the same major version
      // (test/deploy/nodeVersion.test.ts); the compiled code require()s ES modules (jose), which needs 22.12 or later.
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

var effectivePublicBaseUrl = empty(publicBaseUrl) ? 'https://${site.properties.defaultHostName}' : publicBaseUrl

// The complete set of app settings: this resource replaces whatever was there. The keys are those of SETTINGS in
// shared/config.ts that apply in Azure, plus the few the Functions host and the platform read themselves;
// test/infra/consistency.test.ts fails if the two drift apart or if a value looks like a secret.
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: {
    // Storage through the app identity. The code reads the table, queue and blob URIs (the blob service holds the
    // audit anchors); the Functions host also uses the blob URI (locks, timer schedules) and needs __credential to
    // pick managed identity.
    AzureWebJobsStorage__tableServiceUri: tableServiceUri
    AzureWebJobsStorage__queueServiceUri: queueServiceUri
    AzureWebJobsStorage__blobServiceUri: blobServiceUri
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: appIdentityClientId
    // Service Bus through the app identity, for the expirations trigger (host) and the expiry scheduler (code).
    ServiceBusConnection__fullyQualifiedNamespace: serviceBusFullyQualifiedNamespace
    ServiceBusConnection__credential: 'managedidentity'
    ServiceBusConnection__clientId: appIdentityClientId
    // ARM (NSG rules) through the app identity.
    AZURE_CLIENT_ID: appIdentityClientId
    // Telemetry, from the host and from the app's own signals (shared/adapters/azureMonitor.ts). The connection
    // string names the component and its ingestion endpoint; it is not a credential here because local auth is off
    // and ingestion needs the Entra token the authentication string asks for.
    APPLICATIONINSIGHTS_CONNECTION_STRING: applicationInsights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${appIdentityClientId};Authorization=AAD'
    // App Service Authentication: the client id of the identity it signs in with (no client secret exists), and
    // only tokens issued by this tenant.
    OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: authIdentityClientId
    WEBSITE_AUTH_AAD_ALLOWED_TENANTS: tenant().tenantId
    // The host's own body limit: above the largest body the app takes (a 2 MiB policy document), far below the
    // default 100 MB (https://learn.microsoft.com/azure/azure-functions/functions-app-settings#functions_request_body_size_limit).
    FUNCTIONS_REQUEST_BODY_SIZE_LIMIT: '4194304'
    // The app's own settings (shared/config.ts).
    JIT_AUTH_MODE: 'easyauth'
    // Whose authsettingsV2 the app reads at start-up (with Microsoft.Web/sites/config/Read on this app only).
    JIT_APP_RESOURCE_ID: site.id
    JIT_TRUSTED_PROXY_HOPS: string(trustedProxyHops)
    JIT_ARM_ENDPOINT: armEndpoint
    JIT_PRIORITY_RANGE: priorityRange
    JIT_BASELINE_PRIORITY_RANGE: baselinePriorityRange
    JIT_RECONCILE_MAX_ARM_CALLS: string(reconcileMaxArmCalls)
    JIT_MAX_DURATION: maxDuration
    JIT_EXPIRY_GRACE: expiryGrace
    JIT_CLOSE_LEAD: closeLead
    JIT_PUBLIC_BASE_URL: effectivePublicBaseUrl
    JIT_RECONCILE_SCHEDULE: reconcileSchedule
    JIT_RATE_LIMIT_PER_MINUTE: string(rateLimitPerMinute)
    JIT_APPROVAL_ATTEMPTS_PER_MINUTE: string(approvalAttemptsPerMinute)
    // Approval links are signed with a key kept in Key Vault (see docs/deploy.md to create it); the app reads it
    // through a Key Vault reference with its own identity, so the secret never sits in the app settings.
    JIT_APPROVAL_KEY: '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=jit-approval-key)'
    // While rotating, the previous key verifies links already sent (docs/operations.md, "Rotating the approval-link
    // key"); empty otherwise. Both are references, resolved with the app identity: no key is ever in the settings.
    JIT_APPROVAL_KEY_PREVIOUS: empty(approvalKeyPreviousSecretName) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${approvalKeyPreviousSecretName})'
    // Chat and webhook targets: their URLs and HMAC keys are secrets, so the whole list is one Key Vault secret.
    JIT_NOTIFY_TARGETS: empty(notifyTargetsSecretName) ? '' : '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${notifyTargetsSecretName})'
    JIT_MAIL_MODE: mailMode
    JIT_MAIL_FROM: mailFrom
    JIT_ACS_ENDPOINT: acsEndpoint
    JIT_SMTP_HOST: smtpHost
    JIT_SMTP_PORT: string(smtpPort)
    JIT_SMTP_TLS: 'starttls'
    JIT_APPROVER_GROUP_MAILBOXES: approverGroupMailboxes
  }
}

resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
      runtimeVersion: '~1'
    }
    globalValidation: {
      requireAuthentication: true
      // One action for the whole app. Callers of the API are mostly scripts and the jit CLI: a 401 tells them to
      // fetch a token, where a redirect would hand them a sign-in page (App Service redirects every anonymous caller
      // but a native mobile app). The sandbox's front end (dev/auth/frontEnd.ts) applies these same settings.
      unauthenticatedClientAction: 'Return401'
      redirectToProvider: 'azureactivedirectory'
      // Two routes a caller reaches without a session, each guarding itself. The approval page is the one a person
      // reaches from a link in mail, usually not signed in yet: the platform lets it through without a session (it
      // still strips forged principal headers and adds the real one when there is a session), and the page sends
      // the browser to /.auth/login/aad and back, and refuses an anonymous decision. The health route must answer
      // anonymous probes (status and version only; its per-feature detail still needs a Jit.Admin caller).
      // excludedPaths: "The paths for which unauthenticated flow would not be redirected to the login page"
      // (https://learn.microsoft.com/azure/templates/microsoft.web/sites/config-authsettingsv2, GlobalValidation).
      // The app refuses to start if any other path is excluded (shared/domain/platformAuth.ts).
      excludedPaths: [
        '/api/approvals'
        '/api/health'
      ]
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          // Tenant-specific v2.0 issuer: tokens from other tenants fail validation.
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
          // Not a secret: the name of the app setting holding the auth identity's client id. Sign-in proves the
          // app registration with that identity's token (federated credential) instead of a client secret.
          clientSecretSettingName: 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID'
        }
        validation: {
          // v2 access tokens carry the client id as audience, v1 tokens the Application ID URI.
          allowedAudiences: [
            authClientId
            'api://${authClientId}'
          ]
        }
        login: {
          disableWWWAuthenticate: false
        }
      }
    }
    login: {
      // The code reads the caller from x-ms-client-principal and never calls on the caller's behalf, so no tokens
      // are kept.
      tokenStore: {
        enabled: false
      }
    }
    httpSettings: {
      requireHttps: true
      routes: {
        apiPrefix: '/.auth'
      }
      forwardProxy: {
        convention: 'NoProxy'
      }
    }
  }
}

resource ftpPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmPublishing 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

@description('Name of the function app.')
output name string = site.name

@description('Default URL of the function app.')
output defaultUrl string = 'https://${site.properties.defaultHostName}'

@description('Base URL used in links in mail.')
output publicBaseUrl string = effectivePublicBaseUrl
