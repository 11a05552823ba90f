// The Service Bus namespace and the lifecycle queue between the webhook and the processor.
//
// Sessions (session id = subscription id) give per-subscription order; duplicate
// detection (message id = operation id) drops the marketplace's redeliveries. Both can
// only be chosen when the queue is created: changing them later means a new queue.
param name string
param location string
param tags object
param queueName string
param maxDeliveryCount int

// The marketplace retries a webhook for up to 8 hours; the window covers that with an
// hour to spare. A replay of a dead-lettered delivery within the window needs a new
// message id, or Service Bus drops it as a duplicate.
var duplicateDetectionWindow = 'PT9H'

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' = {
  name: name
  location: location
  tags: tags
  sku: {
    name: 'Standard'
    tier: 'Standard'
  }
  properties: {
    minimumTlsVersion: '1.2'
    // No SAS keys: senders and receivers authenticate with Entra ID only.
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource queue 'Microsoft.ServiceBus/namespaces/queues@2024-01-01' = {
  parent: namespace
  name: queueName
  properties: {
    requiresSession: true
    requiresDuplicateDetection: true
    duplicateDetectionHistoryTimeWindow: duplicateDetectionWindow
    maxDeliveryCount: maxDeliveryCount
    deadLetteringOnMessageExpiration: true
    // Longer than anything our own retries need; an expired message is dead-lettered, not lost.
    defaultMessageTimeToLive: 'P14D'
    // The host renews the lock (maxAutoLockRenewalDuration 15 min); a short lock means a
    // crashed instance's session is picked up again within a minute.
    lockDuration: 'PT1M'
    enablePartitioning: false
    maxSizeInMegabytes: 1024
  }
}

output name string = namespace.name
output queueName string = queue.name
// Fully qualified host name (<name>.servicebus.windows.net), as the SDK and the trigger want it.
output host string = replace(replace(namespace.properties.serviceBusEndpoint, 'https://', ''), ':443/', '')
