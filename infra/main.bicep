// The subscription lifecycle worker on Azure: `azd up` provisions this, then deploys the app.
//
// One resource group holds a Flex Consumption Function App (Python 3.11) running as a
// user-assigned managed identity, the Service Bus queue between the webhook and the
// processor, the Storage account (the Functions host's storage and our tables), Key Vault
// for the marketplace client secret and the product signing secret, Application Insights on
// a Log Analytics workspace, and (given an alert address) an action group with alert rules.
// Every connection is identity-based: no account key, SAS key or connection string with a
// key ever reaches an app setting. See infra/README.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; names every resource through a short hash.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer the Flex Consumption plan.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group name; empty: rg-<environment name>.')
param resourceGroupName string = ''

@minLength(36)
@maxLength(36)
@description('Entra tenant id of the app registration named in the offer\'s Technical configuration.')
param marketplaceTenantId string

@minLength(36)
@maxLength(36)
@description('Application (client) id of that app registration.')
param marketplaceClientId string

@allowed([ 'jwt', 'api' ])
@description('jwt: verify Microsoft\'s bearer token on each webhook (the offer names an Entra app); api: verify every delivery through the Fulfillment API only.')
param webhookAuth string = 'jwt'

@allowed([ 'secret', 'federated' ])
@description('secret: the app registration\'s client secret, kept in Key Vault; federated: the app trusts this deployment\'s managed identity (no secret; see infra/README.md).')
param marketplaceCredential string = 'secret'

@secure()
@description('Optional: the client secret, written to Key Vault as a new version. Empty: set it yourself with az keyvault secret set (recommended, see infra/README.md).')
param marketplaceClientSecret string = ''

@description('Optional: when the client secret expires (ISO 8601, e.g. 2027-01-31T00:00:00Z); Key Vault records it so expiry can be alerted on.')
param marketplaceClientSecretExpiresOn string = ''

@description('The lifecycle queue.')
param serviceBusQueueName string = 'lifecycle'

@minValue(1)
@maxValue(100)
@description('Deliveries of one message before Service Bus dead-letters it.')
param maxDeliveryCount int = 10

@description('Prefix of the table names.')
param tablePrefix string = 'lifecycle'

@minValue(1)
@maxValue(1000)
@description('Upper bound on Flex Consumption instances (also a bound on cost).')
param maximumInstanceCount int = 40

@description('Spread the app over availability zones and keep storage zone-redundant (ZRS). Only in regions with zones.')
param zoneRedundant bool = false

@description('Object id of the person running azd (azd fills it in): may then write the secrets to Key Vault.')
param principalId string = ''

// The product integration (README, "Connecting your product"). App settings added by hand do
// not survive a deployment (ARM replaces the whole list), so they are parameters here.
@description('Optional: where product events are POSTed (PRODUCT_EVENTS_URL). Empty: no product, nothing is sent.')
param productEventsUrl string = ''

@description('Optional: asked about each plan or quantity change (PRODUCT_VETO_URL). Empty: no veto.')
param productVetoUrl string = ''

@allowed([ 'accept', 'reject' ])
@description('The verdict when the veto does not answer in time or fails (PRODUCT_VETO_DEFAULT).')
param productVetoDefault string = 'accept'

@secure()
@description('Optional: the HMAC key that signs product events and veto requests, written to Key Vault as a new version of product-signing-secret. Empty: set it yourself with az keyvault secret set (recommended, see infra/README.md). A product URL or this secret brings a Key Vault even with a federated credential.')
param productSigningSecret string = ''

@description('Optional: the e-mail address alerts go to. Empty: no action group, alert rules or availability test.')
param alertEmail string = ''

var abbrs = loadJsonContent('abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var useSecret = marketplaceCredential == 'secret'
var secretName = 'marketplace-client-secret'
var productSecretName = 'product-signing-secret'
// A product is connected when either URL is set; its requests are signed, so it needs the secret.
var hasProduct = !(empty(productEventsUrl) && empty(productVetoUrl))
// The vault holds the client secret (secret credential) and the product signing secret. A
// federated deployment gets one too once a product is connected (or its secret given): the
// signing secret is then the one secret there is, and it belongs in Key Vault, not in a
// plain app setting.
var useVault = useSecret || hasProduct || (!empty(productSigningSecret))
var functionAppName = '${abbrs.functionApp}${resourceToken}'
// Named here, not read from the module's outputs: the module is conditional.
var keyVaultName = useVault ? '${abbrs.keyVault}${resourceToken}' : ''

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? '${abbrs.resourceGroup}${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentity}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.logAnalyticsWorkspace}${resourceToken}'
    applicationInsightsName: '${abbrs.applicationInsights}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageAccount}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: 'app-package-${resourceToken}'
    skuName: zoneRedundant ? 'Standard_ZRS' : 'Standard_LRS'
  }
}

module serviceBus 'modules/servicebus.bicep' = {
  name: 'servicebus'
  scope: rg
  params: {
    name: '${abbrs.serviceBusNamespace}${resourceToken}'
    location: location
    tags: tags
    queueName: serviceBusQueueName
    maxDeliveryCount: maxDeliveryCount
  }
}

module vault 'modules/keyvault.bicep' = if (useVault) {
  name: 'keyvault'
  scope: rg
  params: {
    name: keyVaultName
    location: location
    tags: tags
    secretName: secretName
    // A federated deployment keeps no client secret, even when one is left in the environment.
    secretValue: useSecret ? marketplaceClientSecret : ''
    secretExpiresOn: marketplaceClientSecretExpiresOn
    productSecretName: productSecretName
    productSecretValue: productSigningSecret
  }
}

module roles 'modules/roles.bicep' = {
  name: 'roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    storageAccountName: storage.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    serviceBusQueueName: serviceBus.outputs.queueName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVaultName
    deployerPrincipalId: principalId
  }
  dependsOn: [ vault ]
}

module functionApp 'modules/functionapp.bicep' = {
  name: 'functionapp'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.functionPlan}${resourceToken}'
    location: location
    tags: tags
    serviceName: 'lifecycle'
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageAccountName: storage.outputs.name
    deploymentContainerUrl: storage.outputs.deploymentContainerUrl
    tableEndpoint: storage.outputs.tableEndpoint
    serviceBusHost: serviceBus.outputs.host
    serviceBusQueueName: serviceBus.outputs.queueName
    applicationInsightsConnectionString: monitoring.outputs.connectionString
    maximumInstanceCount: maximumInstanceCount
    marketplaceTenantId: marketplaceTenantId
    marketplaceClientId: marketplaceClientId
    marketplaceCredential: marketplaceCredential
    clientSecretReference: useSecret ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${secretName})' : ''
    webhookAuth: webhookAuth
    tablePrefix: tablePrefix
    zoneRedundant: zoneRedundant
    productEventsUrl: productEventsUrl
    productVetoUrl: productVetoUrl
    productVetoDefault: productVetoDefault
    productSigningSecretReference: hasProduct ? '@Microsoft.KeyVault(VaultName=${keyVaultName};SecretName=${productSecretName})' : ''
  }
  // The host reads its storage and the queue as the identity from its first start.
  dependsOn: [ roles ]
}

// A module, not conditional resources, so that checkov scans what it creates.
module alerts 'modules/alerts.bicep' = if (!empty(alertEmail)) {
  name: 'alerts'
  scope: rg
  params: {
    actionGroupName: '${abbrs.actionGroup}${resourceToken}'
    alertRulePrefix: '${abbrs.alertRule}${resourceToken}'
    availabilityTestName: '${abbrs.availabilityTest}${resourceToken}-health'
    location: location
    tags: tags
    alertEmail: alertEmail
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    functionAppName: functionApp.outputs.name
    serviceBusNamespaceName: serviceBus.outputs.name
    serviceBusQueueName: serviceBus.outputs.queueName
    healthUrl: 'https://${functionApp.outputs.defaultHostName}/api/health'
  }
}

// Partner Center, offer > Technical configuration > Connection webhook.
output WEBHOOK_URL string = 'https://${functionApp.outputs.defaultHostName}/api/marketplace/webhook'
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_NAME string = functionApp.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVaultName
output MARKETPLACE_TENANT_ID string = marketplaceTenantId
output MARKETPLACE_CLIENT_ID string = marketplaceClientId
// For the federated option: the app registration trusts tokens with this subject.
output MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output SERVICEBUS_NAMESPACE string = serviceBus.outputs.host
output SERVICEBUS_QUEUE string = serviceBus.outputs.queueName
output STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output TABLE_PREFIX string = tablePrefix
