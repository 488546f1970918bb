// Application Insights on a Log Analytics workspace, both with local (key-based) authentication off: the app sends
// telemetry with its managed identity (APPLICATIONINSIGHTS_AUTHENTICATION_STRING) and the Monitoring Metrics
// Publisher role, so a leaked instrumentation key cannot be used to write into this telemetry.

@description('Required. Name of the Log Analytics workspace.')
param logAnalyticsName string

@description('Required. Name of the Application Insights component.')
param applicationInsightsName string

@minValue(30)
@maxValue(730)
@description('Optional. Days the workspace keeps data.')
param retentionInDays int = 30

@description('Required. Azure region of the workspace and the component.')
param location string

@description('Optional. Tags of the workspace and the component.')
param tags object = {}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: logAnalyticsName
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: retentionInDays
    features: {
      disableLocalAuth: true
    }
  }
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: applicationInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true
  }
}

@description('Resource id of the Log Analytics workspace.')
output logAnalyticsWorkspaceId string = workspace.id

@description('Name of the Application Insights component.')
output applicationInsightsName string = applicationInsights.name

@description('Resource id of the Application Insights component (scope of the alert rules and the workbook).')
output applicationInsightsId string = applicationInsights.id
