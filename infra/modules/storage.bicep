// The Storage account: the Functions host's storage (AzureWebJobsStorage), the Flex
// Consumption deployment container, and our tables (the worker creates them on first use).
// Shared-key access is off: the host, the deployment and our table client all
// authenticate as the managed identity.
param name string
param location string
param tags object
param deploymentContainerName string
@allowed([ 'Standard_LRS', 'Standard_ZRS' ])
param skuName string

resource account 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: Flex Consumption without a virtual network has no fixed outbound addresses to allow; every request needs an Entra token (shared keys are off)
  // checkov:skip=CKV_AZURE_59: reachable over the internet for the same reason, but no key, SAS or anonymous read is accepted (allowSharedKeyAccess and allowBlobPublicAccess are false)
  // checkov:skip=CKV_AZURE_206: redundancy follows zoneRedundant (ZRS when true, LRS by default because some Flex regions have no zones); the marketplace holds the truth and reconciliation rebuilds current state from it
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        file: {
          enabled: true
        }
      }
    }
  }
}

resource blobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: account
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// Flex Consumption reads the app's package from here, as the managed identity.
resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = account.name
output tableEndpoint string = account.properties.primaryEndpoints.table
output deploymentContainerUrl string = '${account.properties.primaryEndpoints.blob}${deploymentContainer.name}'
