// One version of a secret: the marketplace client secret or the product signing secret.
param vaultName string
param name string
@secure()
param value string
@description('The secret\'s own expiry (ISO 8601), e.g. the Entra client secret\'s; empty: none recorded.')
param expiresOn string

var attributes = empty(expiresOn) ? { enabled: true } : { enabled: true, exp: dateTimeToEpoch(expiresOn) }

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  // checkov:skip=CKV_AZURE_41: the expiry is the Entra client secret's, known only to the operator: recorded when given (marketplaceClientSecretExpiresOn); an invented date could make Key Vault withhold a still-valid secret, and the product signing secret has no expiry of its own (rotated by hand with the product)
  parent: vault
  name: name
  properties: {
    value: value
    contentType: 'text/plain'
    attributes: attributes
  }
}
