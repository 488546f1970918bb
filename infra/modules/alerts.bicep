// What tells the operator something is wrong: log search alert rules over the app's signals in Application Insights
// (customEvents and customMetrics, names and fields from shared/domain/signals.ts; test/infra/consistency.test.ts
// checks every query against that list), a metric alert on Service Bus dead letters, and one action group that mails
// the operator. Each rule says in its description what to do.
//
// Log search alerts: https://learn.microsoft.com/azure/azure-monitor/alerts/alerts-create-log-alert-rule
// (schema https://learn.microsoft.com/azure/templates/microsoft.insights/scheduledqueryrules). Metric alerts:
// https://learn.microsoft.com/azure/templates/microsoft.insights/metricalerts; Service Bus's DeadletteredMessages
// metric, split by EntityName: https://learn.microsoft.com/azure/service-bus-messaging/monitor-service-bus-reference.

@description('Required. Mail address of the operator who receives every alert.')
param operatorEmail string

@description('Required. Name of the action group.')
param actionGroupName string

@description('Required. Resource id of the Application Insights component the rules query.')
param applicationInsightsId string

@description('Required. Resource id of the Service Bus namespace whose dead letters are watched.')
param serviceBusNamespaceId string

@minValue(3)
@maxValue(1440)
@description('Optional. Minutes past its expiry a grant may still be open before the alert fires: above the expiry grace plus one reconciler interval, so it fires only when the safety net failed too.')
param openPastExpiryMinutes int = 10

@description('Required. Azure region of the log search rules (the component\'s).')
param location string

@description('Optional. Tags of the rules and the action group.')
param tags object = {}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'jit-access'
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: operatorEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// A grant is open from its jit.grant.opened until its jit.grant.closed (or jit.grant.failed); jit.grant.extended
// moves its end. Three days back covers the longest grant (JIT_MAX_DURATION, at most a few days) plus extensions.
var openPastExpiryQuery = replace('''
let grants = customEvents
| where timestamp > ago(3d) and name in ('jit.grant.opened', 'jit.grant.extended')
| extend requestId = tostring(customDimensions.requestId), vm = tostring(customDimensions.vm), expiresAt = todatetime(customDimensions.expiresAt)
| summarize expiresAt = max(expiresAt), vm = any(vm) by requestId;
let ended = customEvents
| where timestamp > ago(3d) and name in ('jit.grant.closed', 'jit.grant.failed')
| extend requestId = tostring(customDimensions.requestId)
| distinct requestId;
grants
| join kind=leftanti ended on requestId
| where expiresAt < now() - {minutes}m
| project requestId, vm, expiresAt
''', '{minutes}', string(openPastExpiryMinutes))

// A lock refused closing a grant's rule. Blocked (ReadOnly: neither deleted nor turned to Deny) means the port is
// still open, as bad as open past expiry; neutralised (CanNotDelete: turned to Deny) lets nothing in but stays in the
// NSG until someone lifts the lock. Both are emitted on every retry, so the alert resolves once the lock is gone.
var closeBlockedQuery = '''
customEvents
| where name == 'jit.grant.close-blocked'
| project timestamp, requestId = tostring(customDimensions.requestId), vm = tostring(customDimensions.vm), nsg = tostring(customDimensions.nsg), rule = tostring(customDimensions.rule), reason = tostring(customDimensions.reason)
'''

var neutralisedQuery = '''
customEvents
| where name == 'jit.grant.neutralised'
| project timestamp, requestId = tostring(customDimensions.requestId), vm = tostring(customDimensions.vm), nsg = tostring(customDimensions.nsg), rule = tostring(customDimensions.rule), refusedBy = tostring(customDimensions.refusedBy)
'''

var failedGrantsQuery = '''
customEvents
| where name == 'jit.grant.failed'
| project timestamp, requestId = tostring(customDimensions.requestId), vm = tostring(customDimensions.vm), reasonCode = tostring(customDimensions.reasonCode), reason = tostring(customDimensions.reason)
'''

var deadLettersQuery = '''
customEvents
| where name in ('jit.message.poisoned', 'jit.notification.dead-lettered')
| project timestamp, name, queue = tostring(customDimensions.queue), target = tostring(customDimensions.target), requestId = tostring(customDimensions.requestId), error = tostring(customDimensions.error)
'''

var reconcilerTroubleQuery = '''
customEvents
| where name == 'jit.reconcile.completed'
| where toint(customDimensions.errors) > 0 or toint(customDimensions.driftFound) > 0 or tobool(customDimensions.budgetSpent)
| project timestamp, errors = toint(customDimensions.errors), driftFound = toint(customDimensions.driftFound), budgetSpent = tobool(customDimensions.budgetSpent)
| union (customEvents | where name == 'jit.drift.found' | project timestamp, nsg = tostring(customDimensions.nsg), rule = tostring(customDimensions.rule), detail = tostring(customDimensions.detail))
'''

var reconcilerSilentQuery = '''
customEvents
| where name == 'jit.reconcile.completed'
'''

var auditAnchorQuery = '''
customEvents
| where name == 'jit.audit.anchor-failed'
| project timestamp, day = tostring(customDimensions.day), error = tostring(customDimensions.error)
'''

// Invocations the Functions host recorded as failed, or HTTP answers of 500 and above.
var functionFailuresQuery = '''
requests
| where success == false or toint(resultCode) >= 500
| summarize failures = count() by operation_Name
'''

var rules = [
  {
    name: 'open-past-expiry'
    displayName: 'JIT: access still open past its expiry'
    description: 'A grant is still open ${openPastExpiryMinutes} minutes past its expiresAt: its expiry message and the reconciler both failed. Check the NSG rule jit-<requestId> now; see docs/operations.md, "Alerts".'
    severity: 0
    query: openPastExpiryQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT5M'
    window: 'PT5M'
  }
  {
    name: 'close-blocked'
    displayName: 'JIT: access could not be closed (lock)'
    description: 'A ReadOnly lock refuses both deleting a grant\'s rule and turning it to Deny: the port is still open. Lift the lock on the NSG (or its resource group) named in nsg; JIT then closes it; see docs/operations.md, "Alerts".'
    severity: 0
    query: closeBlockedQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT5M'
    window: 'PT5M'
  }
  {
    name: 'rule-neutralised'
    displayName: 'JIT: closed rule kept as Deny (lock)'
    description: 'A CanNotDelete lock refused deleting a grant\'s rule, so it was turned to Deny (it lets nothing in); the reconciler retries the delete until the lock named in lock is lifted.'
    severity: 2
    query: neutralisedQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
  }
  {
    name: 'failed-grants'
    displayName: 'JIT: grants failed'
    description: 'A grant could not be applied; reasonCode and reason say why (ARM refused, no free priority, no NSG...).'
    severity: 2
    query: failedGrantsQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
  }
  {
    name: 'dead-letters'
    displayName: 'JIT: messages poisoned or dead-lettered'
    description: 'A queue message failed its last attempt (moved to <queue>-poison), or a chat/webhook notification was given up (jit-notifications-poison).'
    severity: 1
    query: deadLettersQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT5M'
    window: 'PT15M'
  }
  {
    name: 'reconciler-trouble'
    displayName: 'JIT: reconciler errors or drift'
    description: 'The reconciler met errors, ran out of its ARM call budget, or found a rule of someone else opening a protected port to a broad source.'
    severity: 2
    query: reconcilerTroubleQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
  }
  {
    name: 'reconciler-silent'
    displayName: 'JIT: reconciler not running'
    description: 'No reconciler run finished in 30 minutes: the safety net that closes grants whose expiry message was lost is not running.'
    severity: 1
    query: reconcilerSilentQuery
    operator: 'LessThan'
    threshold: 1
    frequency: 'PT15M'
    window: 'PT30M'
  }
  {
    name: 'audit-anchor'
    displayName: 'JIT: audit anchor failed'
    description: 'A day of the audit trail could not be anchored, or no longer matches its anchor: run jit audit verify for that day.'
    severity: 1
    query: auditAnchorQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT1H'
    window: 'PT1H'
  }
  {
    name: 'function-failures'
    displayName: 'JIT: function failures'
    description: 'Function invocations failed or answered 5xx (the Functions host\'s own request telemetry).'
    severity: 2
    query: functionFailuresQuery
    operator: 'GreaterThan'
    threshold: 0
    frequency: 'PT15M'
    window: 'PT15M'
  }
]

resource logAlerts 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = [
  for rule in rules: {
    name: 'jit-${rule.name}'
    location: location
    tags: tags
    kind: 'LogAlert'
    properties: {
      displayName: rule.displayName
      description: rule.description
      severity: rule.severity
      enabled: true
      scopes: [
        applicationInsightsId
      ]
      evaluationFrequency: rule.frequency
      windowSize: rule.window
      criteria: {
        allOf: [
          {
            query: rule.query
            timeAggregation: 'Count'
            operator: rule.operator
            threshold: rule.threshold
            failingPeriods: {
              numberOfEvaluationPeriods: 1
              minFailingPeriodsToAlert: 1
            }
          }
        ]
      }
      autoMitigate: true
      actions: {
        actionGroups: [
          actionGroup.id
        ]
      }
    }
  }
]

// Service Bus dead letters (jit-expirations, jit-starts): the platform's own count, which needs nothing from the app.
resource serviceBusDeadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: 'jit-service-bus-dead-letters'
  location: 'global'
  tags: tags
  properties: {
    description: 'A Service Bus message (a grant\'s expiry or a scheduled start) was dead-lettered after its deliveries failed; the reconciler closes what it should have, but look at why.'
    severity: 1
    enabled: true
    scopes: [
      serviceBusNamespaceId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          name: 'dead-lettered'
          criterionType: 'StaticThresholdCriterion'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            {
              name: 'EntityName'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          operator: 'GreaterThan'
          threshold: 0
          timeAggregation: 'Maximum'
        }
      ]
    }
    autoMitigate: true
    actions: [
      {
        actionGroupId: actionGroup.id
      }
    ]
  }
}

@description('Resource id of the action group.')
output actionGroupId string = actionGroup.id
