// Key Vault for the key that signs approval links. RBAC mode, so access is by role assignment only (the app gets
// Key Vault Secrets User, read-only); purge protection, so a deleted key cannot be destroyed before the retention
// period ends, even by an administrator.

@description('Required. Name of the vault (3-24 characters).')
param name string

@minValue(7)
@maxValue(90)
@description('Optional. Days a deleted vault or secret stays recoverable.')
param softDeleteRetentionInDays int = 90

@description('Required. Log Analytics workspace that receives the vault\'s audit events (who read which secret, when).')
param logAnalyticsWorkspaceId string

@description('Required. Azure region of the vault.')
param location string

@description('Optional. Tags of the vault.')
param tags object = {}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource auditLogs 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'audit-to-log-analytics'
  scope: vault
  properties: {
    workspaceId: logAnalyticsWorkspaceId
    logs: [
      {
        categoryGroup: 'audit'
        enabled: true
      }
    ]
  }
}

@description('Name of the vault.')
output name string = vault.name

@description('URI of the vault.')
output uri string = vault.properties.vaultUri
