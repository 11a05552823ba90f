// The Function App on the Flex Consumption plan: Python 3.11, running as the
// user-assigned identity, every connection identity-based.
param name string
param planName string
param location string
param tags object
@description('azd deploys the service of this name (azure.yaml) to the app carrying the tag.')
param serviceName string
param identityId string
param identityClientId string
param storageAccountName string
param deploymentContainerUrl string
param tableEndpoint string
@description('Fully qualified Service Bus namespace, <name>.servicebus.windows.net.')
param serviceBusHost string
param serviceBusQueueName string
param applicationInsightsConnectionString string
param maximumInstanceCount int
param marketplaceTenantId string
param marketplaceClientId string
@allowed([ 'secret', 'federated' ])
param marketplaceCredential string
@description('@Microsoft.KeyVault(...) reference to the client secret; unused for a federated credential.')
param clientSecretReference string
@allowed([ 'jwt', 'api' ])
param webhookAuth string
param tablePrefix string
@description('Spread instances over availability zones (regions with zones only).')
param zoneRedundant bool
@description('Where product events are POSTed; empty: no PRODUCT_EVENTS_URL (the product is told nothing).')
param productEventsUrl string
@description('Asked about each plan or quantity change; empty: no PRODUCT_VETO_URL (no veto).')
param productVetoUrl string
@allowed([ 'accept', 'reject' ])
param productVetoDefault string
@description('@Microsoft.KeyVault(...) reference to the product signing secret; empty when no product is connected.')
param productSigningSecretReference string

// Flex Consumption sets the runtime itself (functionAppConfig.runtime): no
// FUNCTIONS_WORKER_RUNTIME or FUNCTIONS_EXTENSION_VERSION here, the plan refuses them.
var hostSettings = [
  // The host's storage, as the identity (endpoints derived from the account name).
  { name: 'AzureWebJobsStorage__accountName', value: storageAccountName }
  { name: 'AzureWebJobsStorage__credential', value: 'managedidentity' }
  { name: 'AzureWebJobsStorage__clientId', value: identityClientId }
  // The queue trigger's connection "SERVICEBUS" (functions/processor.py).
  { name: 'SERVICEBUS__fullyQualifiedNamespace', value: serviceBusHost }
  { name: 'SERVICEBUS__credential', value: 'managedidentity' }
  { name: 'SERVICEBUS__clientId', value: identityClientId }
  { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: applicationInsightsConnectionString }
  { name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING', value: 'ClientId=${identityClientId};Authorization=AAD' }
  // One thread per concurrent session (host.json: maxConcurrentSessions 16).
  { name: 'PYTHON_THREADPOOL_THREAD_COUNT', value: '16' }
]

// What lifecycle/settings.py reads. DefaultAzureCredential picks the user-assigned
// identity through AZURE_CLIENT_ID, and so does the federated credential's assertion.
var workerSettings = [
  { name: 'AZURE_CLIENT_ID', value: identityClientId }
  { name: 'MARKETPLACE_TENANT_ID', value: marketplaceTenantId }
  { name: 'MARKETPLACE_CLIENT_ID', value: marketplaceClientId }
  { name: 'WEBHOOK_AUTH', value: webhookAuth }
  { name: 'STORAGE_TABLE_ENDPOINT', value: tableEndpoint }
  { name: 'TABLE_PREFIX', value: tablePrefix }
  { name: 'SERVICEBUS_NAMESPACE', value: serviceBusHost }
  { name: 'SERVICEBUS_QUEUE', value: serviceBusQueueName }
  { name: 'RECONCILE_SCHEDULE', value: '0 */30 * * * *' }  // the timer resolves %RECONCILE_SCHEDULE% itself
  // Logs through stdlib logging, which the host ships to Application Insights (stderr is not captured).
  { name: 'LOG_SINK', value: 'logging' }
]

// The secret as a Key Vault reference, or (federated) no secret at all: the worker then hands
// MSAL the identity's token for api://AzureADTokenExchange as client assertion, which the app
// registration accepts through a federated credential the publisher adds (infra/README.md).
var credentialSettings = (marketplaceCredential == 'secret') ? [
  { name: 'MARKETPLACE_CLIENT_SECRET', value: clientSecretReference }
] : [
  { name: 'MARKETPLACE_CREDENTIAL', value: 'federated' }
]

// The product integration (README, "Connecting your product"). ARM replaces the whole list of
// app settings on each deployment, so these come from parameters: a setting added by hand is
// gone after the next `azd provision`. Each is set only when it has a value, because an unset
// PRODUCT_EVENTS_URL / PRODUCT_VETO_URL is what "no product" / "no veto" means to the worker.
// Without a product the dispatcher's every-minute timer would only wake an instance to find
// nothing to send, and keep the plan from scaling to zero: the host's own switch turns it off.
var productEventSettings = empty(productEventsUrl) ? [
  { name: 'AzureWebJobs.product_dispatch.Disabled', value: 'true' }
] : [
  { name: 'PRODUCT_EVENTS_URL', value: productEventsUrl }
]
var productVetoSettings = empty(productVetoUrl) ? [] : [
  { name: 'PRODUCT_VETO_URL', value: productVetoUrl }
  { name: 'PRODUCT_VETO_DEFAULT', value: productVetoDefault }
]
// Events and veto requests are signed with it: a Key Vault reference, as the client secret.
var productSecretSettings = empty(productSigningSecretReference) ? [] : [
  { name: 'PRODUCT_SIGNING_SECRET', value: productSigningSecretReference }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: follows the zoneRedundant parameter, off by default because some Flex Consumption regions have no zones; a zone outage delays deliveries (the marketplace retries for 8 hours), it does not lose them
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: the marketplace calls the webhook from the internet; the webhook checks Microsoft's JWT (or verifies through the API) and the ops routes need a function key
  // checkov:skip=CKV_AZURE_17: the marketplace presents no client certificate; authenticity is the Entra bearer token
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero on demand; an always-ready instance costs money while idle and the marketplace retries a webhook for 8 hours
  // checkov:skip=CKV_AZURE_213: platform health-check pings would keep an instance running and defeat scale-to-zero; GET /api/health is there for an external availability test
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references resolve as this identity (an app has no system identity here).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: concat(hostSettings, workerSettings, credentialSettings, productEventSettings, productVetoSettings, productSecretSettings)
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: 2048
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No publishing with user names and passwords: azd and Core Tools deploy with Entra tokens.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: app
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = app.name
output defaultHostName string = app.properties.defaultHostName
