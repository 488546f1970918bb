// Azure Communication Services Email with an Azure-managed domain (DoNotReply@<guid>.azurecomm.net), used when the
// operator has no SMTP relay. Nothing here creates or reads an access key: the app sends with its managed identity
// and the narrow email-sender role assigned in role-assignments.bicep.

@description('Required. Name of the Communication Services resource.')
param communicationServiceName string

@description('Required. Name of the Email Communication Services resource.')
param emailServiceName string

@description('Required. Geography where email data is stored at rest (for example `United States`, `Europe`).')
param dataLocation string

@description('Optional. Tags of the resources.')
param tags object = {}

resource emailService 'Microsoft.Communication/emailServices@2023-04-01' = {
  name: emailServiceName
  // Communication Services resources are global; dataLocation decides where data rests.
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
  }
}

resource managedDomain 'Microsoft.Communication/emailServices/domains@2023-04-01' = {
  parent: emailService
  name: 'AzureManagedDomain'
  location: 'global'
  tags: tags
  properties: {
    domainManagement: 'AzureManaged'
    // Approval links must not be rewritten by click tracking: the link is the approver's credential.
    userEngagementTracking: 'Disabled'
  }
}

resource communicationService 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: communicationServiceName
  location: 'global'
  tags: tags
  properties: {
    dataLocation: dataLocation
    linkedDomains: [
      managedDomain.id
    ]
  }
}

@description('Name of the Communication Services resource.')
output communicationServiceName string = communicationService.name

@description('Endpoint the app sends mail through.')
output endpoint string = 'https://${communicationService.properties.hostName}'

@description('Sender address of the Azure-managed domain.')
output senderAddress string = 'DoNotReply@${managedDomain.properties.mailFromSenderDomain}'
