// The custom NSG rule operator role in one target subscription, and its assignments there: on the whole
// subscription if the operator listed it, else on each listed resource group. Deployed only from
// role-assignments.bicep, which holds the list of actions.
targetScope = 'subscription'

@description('Required. Object (principal) id of the app identity.')
param principalId string

@description('Required. Suffix that makes the role name unique in the tenant.')
param roleNameSuffix string

@minLength(1)
@description('Required. Actions of the role (role-assignments.bicep, nsgOperatorActions).')
param actions string[]

@description('Required. Whether the whole subscription is a target scope.')
param assignAtSubscription bool

@description('Required. Resource groups of this subscription that are target scopes.')
param resourceGroupNames string[]

var resourceGroupIds = map(resourceGroupNames, name => '${subscription().id}/resourceGroups/${name}')
// A role can be assigned only within its assignable scopes: exactly the scopes the operator listed.
var assignableScopes = assignAtSubscription ? [subscription().id] : resourceGroupIds

resource nsgOperatorRole 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, 'jit-access-nsg-rule-operator', roleNameSuffix)
  properties: {
    // Custom role names are unique per tenant, so the subscription is part of it.
    roleName: 'JIT Access NSG Rule Operator (${roleNameSuffix}, ${subscription().subscriptionId})'
    description: 'Read VMs, NICs and subnets; read, write and delete NSG security rules. Cannot change an NSG itself, its associations, or anything else.'
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
    name: 'jit-nsg-operator-${uniqueString(name, roleNameSuffix)}'
    scope: resourceGroup(name)
    params: {
      principalId: principalId
      roleDefinitionId: nsgOperatorRole.id
    }
  }
]
