// The two user-assigned identities of the function app.
//
// - The app identity is what the code and the Functions host use for storage, Service Bus, Key Vault, Application
//   Insights and ARM. Every role it holds is assigned in role-assignments.bicep.
// - The auth identity exists only so App Service Authentication can prove itself to Entra ID with a federated
//   credential instead of a client secret. It holds no Azure role; Microsoft's guidance is to assign such an
//   identity to this one app only, so it is kept apart from the identity that can write NSG rules.

@description('Required. Name of the identity the app and the Functions host run as.')
param appIdentityName string

@description('Required. Name of the identity App Service Authentication uses as its client credential.')
param authIdentityName string

@description('Required. Azure region of the identities.')
param location string

@description('Optional. Tags of the identities.')
param tags object = {}

resource appIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: appIdentityName
  location: location
  tags: tags
}

resource authIdentity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: authIdentityName
  location: location
  tags: tags
}

@description('Resource id of the app identity.')
output appIdentityId string = appIdentity.id

@description('Client id of the app identity (what AZURE_CLIENT_ID and the *__clientId settings name).')
output appIdentityClientId string = appIdentity.properties.clientId

@description('Object (principal) id of the app identity, the subject of its role assignments.')
output appIdentityPrincipalId string = appIdentity.properties.principalId

@description('Resource id of the auth identity.')
output authIdentityId string = authIdentity.id

@description('Client id of the auth identity.')
output authIdentityClientId string = authIdentity.properties.clientId

@description('Object (principal) id of the auth identity: the subject of the federated credential on the app registration.')
output authIdentityPrincipalId string = authIdentity.properties.principalId
