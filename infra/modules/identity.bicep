// The Function App's user-assigned managed identity. User-assigned rather than the app's
// own: its roles exist before the app first starts, and it outlives a re-created app.
param name string
param location string
param tags object

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
