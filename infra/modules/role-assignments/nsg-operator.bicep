// A custom NSG role in one target subscription, and its assignments there: on the whole subscription if the
// operator listed it, else on each listed resource group. Deployed only from role-assignments.bicep, which holds the
// lists of actions: the rule operator role always, the flow flush role when session cutting is allowed.
targetScope = 'subscription'

@description('Required. Object (principal) id of the app identity.')
param principalId string

@description('Required. Suffix that makes the role name unique in the tenant.')
param roleNameSuffix string

@minLength(1)
@description('Required. Actions of the role (role-assignments.bicep, nsgOperatorActions or nsgFlushActions).')
param actions string[]

@description('Optional. Which of the custom NSG roles this is: the rule operator, or the flow flush role (sets flushConnection on NSGs).')
@allowed([
  'rule-operator'
  'flow-flush'
])
param roleKind string = 'rule-operator'

@description('Required. Whether the whole subscription is a target scope.')
param assignAtSubscription bool

@description('Required. Resource groups of this subscription that are target scopes.')
param resourceGroupNames string[]

var resourceGroupIds = map(resourceGroupNames, name => '${subscription().id}/resourceGroups/${name}')
// A role can be assigned only within its assignable scopes: exactly the scopes the operator listed.
var assignableScopes = assignAtSubscription ? [subscription().id] : resourceGroupIds

var roles = {
  'rule-operator': {
    key: 'jit-access-nsg-rule-operator'
    displayName: 'JIT Access NSG Rule Operator'
    description: 'Read VMs, NICs and subnets; read, write and delete NSG security rules; read locks and its own permissions. Cannot change an NSG itself, its associations, or anything else.'
  }
  'flow-flush': {
    key: 'jit-access-nsg-flow-flush'
    displayName: 'JIT Access NSG Flow Flush'
    description: 'Read and write NSGs, to turn on flushConnection so the end of a grant cuts established sessions. Assigned only where policies use cutSessions.'
  }
}
var role = roles[roleKind]

resource nsgOperatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, role.key, roleNameSuffix)
  properties: {
    // Custom role names are unique per tenant, so the subscription is part of it.
    roleName: '${role.displayName} (${roleNameSuffix}, ${subscription().subscriptionId})'
    description: role.description
    type: 'CustomRole'
    permissions: [
      {
        actions: actions
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

resource subscriptionAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (assignAtSubscription) {
  name: guid(subscription().id, principalId, nsgOperatorRole.id)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: nsgOperatorRole.id
    description: 'azure-jit-access: open and close JIT rules in the NSGs of this subscription.'
  }
}

// Listing the whole subscription already covers its resource groups.
module resourceGroupAssignments 'nsg-operator-assignment.bicep' = [
  for name in (assignAtSubscription ? [] : resourceGroupNames): {
    name: 'jit-nsg-${roleKind}-${uniqueString(name, roleNameSuffix)}'
    scope: resourceGroup(name)
    params: {
      principalId: principalId
      roleDefinitionId: nsgOperatorRole.id
    }
  }
]
