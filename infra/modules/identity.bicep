// The one identity the function app runs as. User-assigned (not system-assigned)
// so that it exists before the app does: its roles can be granted first, and the
// app settings can name its client id.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
