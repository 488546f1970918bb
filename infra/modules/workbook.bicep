// The operator's dashboard: an Azure Monitor workbook over the app's signals in Application Insights (names and fields
// from shared/domain/signals.ts; test/infra/consistency.test.ts checks every query against that list).
// Workbook resource: https://learn.microsoft.com/azure/templates/microsoft.insights/workbooks; the content is the
// workbook's JSON (Notebook/1.0) with one KQL item per tile:
// https://learn.microsoft.com/azure/azure-monitor/visualize/workbooks-automate.

@description('Required. Display name of the workbook.')
param displayName string

@description('Required. Resource id of the Application Insights component the tiles query.')
param applicationInsightsId string

@description('Required. Azure region of the workbook.')
param location string

@description('Optional. Tags of the workbook.')
param tags object = {}

// Open now: opened (or extended) and neither closed nor failed since.
var openNowQuery = '''
let grants = customEvents
| where timestamp > ago(3d) and name in ('jit.grant.opened', 'jit.grant.extended')
| extend requestId = tostring(customDimensions.requestId), expiresAt = todatetime(customDimensions.expiresAt)
| summarize expiresAt = max(expiresAt), openedAt = min(timestamp) by requestId;
let who = customEvents
| where timestamp > ago(3d) and name == 'jit.grant.opened'
| project requestId = tostring(customDimensions.requestId), requester = tostring(customDimensions.requester), vm = tostring(customDimensions.vm), ports = tostring(customDimensions.ports);
let ended = customEvents
| where timestamp > ago(3d) and name in ('jit.grant.closed', 'jit.grant.failed')
| distinct requestId = tostring(customDimensions.requestId);
grants
| join kind=leftanti ended on requestId
| join kind=leftouter who on requestId
| project requestId, requester, vm, ports, openedAt, expiresAt
| order by expiresAt asc
'''

var byStatusQuery = '''
customEvents
| where name == 'jit.request.changed'
| summarize requests = count() by status = tostring(customDimensions.status), bin(timestamp, 1h)
| render timechart
'''

// Histograms reach customMetrics as one row per export interval: value is the sum, valueCount the count.
var latencyQuery = '''
customMetrics
| where name in ('jit.grant.open_latency', 'jit.grant.close_lag')
| summarize mean = sum(value) / sum(valueCount), max = max(valueMax) by name, bin(timestamp, 1h)
| render timechart
'''

var topRequestersQuery = '''
customEvents
| where name == 'jit.grant.opened'
| summarize grants = count() by requester = tostring(customDimensions.requester)
| top 10 by grants
'''

var topVmsQuery = '''
customEvents
| where name == 'jit.grant.opened'
| summarize grants = count() by vm = tostring(customDimensions.vm)
| top 10 by grants
'''

var pendingQuery = '''
customEvents
| where timestamp > ago(30d) and name == 'jit.request.changed'
| summarize arg_max(timestamp, *) by requestId = tostring(customDimensions.requestId)
| where tostring(customDimensions.status) == 'pending-approval'
| project requestId, since = timestamp, requester = tostring(customDimensions.requester), vm = tostring(customDimensions.vm), policy = tostring(customDimensions.policy)
'''

var tiles = [
  { title: 'Grants open now', query: openNowQuery, visualization: 'table', width: '100' }
  { title: 'Requests by status', query: byStatusQuery, visualization: 'timechart', width: '50' }
  { title: 'Open latency and close lag (seconds)', query: latencyQuery, visualization: 'timechart', width: '50' }
  { title: 'Top requesters', query: topRequestersQuery, visualization: 'table', width: '33' }
  { title: 'Top VMs', query: topVmsQuery, visualization: 'table', width: '33' }
  { title: 'Approvals pending', query: pendingQuery, visualization: 'table', width: '33' }
]

var content = {
  version: 'Notebook/1.0'
  items: [
    for (tile, i) in tiles: {
      type: 3
      name: 'tile-${i}'
      content: {
        version: 'KqlItem/1.0'
        title: tile.title
        query: tile.query
        size: 0
        timeContext: {
          durationMs: 604800000
        }
        queryType: 0
        resourceType: 'microsoft.insights/components'
        visualization: tile.visualization
      }
      customWidth: tile.width
    }
  ]
  fallbackResourceIds: [
    applicationInsightsId
  ]
}

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; stable per component, so a re-deployment updates the same one.
  name: guid(applicationInsightsId, 'jit-access-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: displayName
    category: 'workbook'
    sourceId: applicationInsightsId
    serializedData: string(content)
  }
}

@description('Resource id of the workbook.')
output workbookId string = workbook.id
