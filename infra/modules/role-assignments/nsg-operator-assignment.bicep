// One assignment of the custom NSG rule operator role on a target resource group. Deployed only from
// nsg-operator.bicep, because an assignment on a resource group needs a deployment in that resource group.
targetScope = 'resourceGroup'

@description('Required. Object (principal) id of the app identity.')
param principalId string

@description('Required. Id of the NSG rule operator role definition.')
param roleDefinitionId string

resource assignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, roleDefinitionId)
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: roleDefinitionId
    description: 'azure-jit-access: open and close JIT rules in the NSGs of this resource group.'
  }
}
