// Key Vault for the secrets the app reads through Key Vault references: the marketplace app
// registration's client secret (MARKETPLACE_CREDENTIAL=secret) and the product signing secret
// (PRODUCT_SIGNING_SECRET, when a product is connected). RBAC only (no access policies): the
// app's identity is a Key Vault Secrets User, the deployer a Secrets Officer.
param name string
param location string
param tags object
param secretName string
@secure()
@description('The marketplace client secret; empty: none written (always empty with a federated credential).')
param secretValue string
param secretExpiresOn string
param productSecretName string
@secure()
@description('The product signing secret; empty: none written.')
param productSecretValue string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: App Service resolves Key Vault references from addresses a firewall cannot name (Flex Consumption without a virtual network, and App Service is no trusted service); access is RBAC only, Secrets User for the app's identity
  // checkov:skip=CKV_AZURE_189: same reason: disabling public access needs a virtual network with a private endpoint, which this deployment does not create
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Written only when a value is given. Each deployment with a value adds a version; the
// app's references name no version, so they follow the newest (see infra/README.md).
// Modules rather than conditional resources: checkov's Bicep parser does not look
// inside conditional resources, and these should be scanned.
module secret 'keyvault-secret.bicep' = if (!empty(secretValue)) {
  name: 'marketplace-client-secret'
  params: {
    vaultName: vault.name
    name: secretName
    value: secretValue
    expiresOn: secretExpiresOn
  }
}

// A shared HMAC key with no expiry of its own: rotated by hand, together with the product.
module productSecret 'keyvault-secret.bicep' = if (!empty(productSecretValue)) {
  name: 'product-signing-secret'
  params: {
    vaultName: vault.name
    name: productSecretName
    value: productSecretValue
    expiresOn: ''
  }
}

output name string = vault.name
