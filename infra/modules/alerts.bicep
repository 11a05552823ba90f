// What pages the operator, by e-mail through one action group (main.bicep calls this module
// only when an alert address is given). Four rules, each for something that needs a person:
//
// - dead letters on the lifecycle queue (Service Bus gave up on a message);
// - HTTP 5xx from the Function App (the webhook answers 503 while storage or the marketplace
//   API is down, and the marketplace retries only for 8 hours);
// - the availability test of GET /api/health failing from several locations;
// - the worker's own log lines for a delivery given up on or a failed reconcile run.
//
// What each means and what to do first: infra/README.md, "Alerts".
param actionGroupName string
@description('Prefix of the alert rules\' names: ar-<token>.')
param alertRulePrefix string
param availabilityTestName string
param location string
param tags object
@description('Where alerts are sent.')
param alertEmail string
param applicationInsightsName string
param functionAppName string
param serviceBusNamespaceName string
param serviceBusQueueName string
@description('https://<host>/api/health, the anonymous route an availability test may call.')
param healthUrl string

// A delivery given up on, or a reconcile run that failed. The worker logs through stdlib
// logging (LOG_SINK=logging): each line is one row of traces whose message is the line's JSON,
// {"event": "...", "level": "...", ...}; lifecycle/logs.py. The names are the code's own:
// "message.dead_lettered" (functions/processor.py, an error, recorded as failed and replayable
// with `lifecycle dlq replay`) and "reconcile.finished" with status "failed"
// (lifecycle/services/reconcile.py; the timer then raises and the host retries the run).
var workerFailureQuery = '''
traces
| where message contains "message.dead_lettered" or message contains "reconcile.finished"
| extend line = parse_json(message)
| extend event = tostring(line.event), status = tostring(line.status)
| where event == "message.dead_lettered" or (event == "reconcile.finished" and status == "failed")
| project timestamp, event, status, operation_id = tostring(line.operation_id), subscription_id = tostring(line.subscription_id), reason = tostring(line.reason), error = tostring(line.error)
'''

// Three probe locations, every 5 minutes; the alert fires when two of them fail.
var availabilityLocations = [
  { Id: 'us-va-ash-azr' } // East US
  { Id: 'emea-nl-ams-azr' } // West Europe
  { Id: 'apac-sg-sin-azr' } // Southeast Asia
]

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource namespace 'Microsoft.ServiceBus/namespaces@2024-01-01' existing = {
  name: serviceBusNamespaceName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: actionGroupName
  location: 'Global'
  tags: tags
  properties: {
    groupShortName: 'lifecycle' // at most 12 characters: the sender name in e-mails and texts
    enabled: true
    emailReceivers: [
      {
        name: 'operator'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Messages in the queue's dead-letter sub-queue: Service Bus gave up on them (max delivery
// count: storage down long enough, or a body that is not a webhook). They wait there, so the
// alert stays fired until they are replayed or removed.
resource deadLetters 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${alertRulePrefix}-deadletters'
  location: 'global'
  tags: tags
  properties: {
    description: 'Service Bus dead-lettered messages on the lifecycle queue: see infra/README.md, Alerts.'
    severity: 1
    enabled: true
    scopes: [ namespace.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'DeadLettered'
          metricNamespace: 'Microsoft.ServiceBus/namespaces'
          metricName: 'DeadletteredMessages'
          dimensions: [
            { name: 'EntityName', operator: 'Include', values: [ serviceBusQueueName ] }
          ]
          timeAggregation: 'Maximum'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [ { actionGroupId: actionGroup.id } ]
  }
}

// Any 5xx from the app in 15 minutes: the webhook's 503 (storage, the queue or the marketplace
// API unreachable, a credential Entra refuses), or a crash.
resource serverErrors 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${alertRulePrefix}-http5xx'
  location: 'global'
  tags: tags
  properties: {
    description: 'HTTP 5xx from the Function App (the webhook answers 503 while storage or the marketplace API is down): see infra/README.md, Alerts.'
    severity: 2
    enabled: true
    scopes: [ app.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.SingleResourceMultipleMetricCriteria'
      allOf: [
        {
          criterionType: 'StaticThresholdCriterion'
          name: 'Http5xx'
          metricNamespace: 'Microsoft.Web/sites'
          metricName: 'Http5xx'
          // A new Flex Consumption app may list no metric definitions before its first request;
          // validation would then fail the whole deployment. The name is pinned by tests/infra.
          skipMetricValidation: true
          timeAggregation: 'Total'
          operator: 'GreaterThan'
          threshold: 0
        }
      ]
    }
    actions: [ { actionGroupId: actionGroup.id } ]
  }
}

// A standard test (URL ping tests are being retired): GET /api/health must answer 200 over a
// valid certificate. The hidden-link tag ties it to Application Insights, where its results land.
resource healthTest 'Microsoft.Insights/webtests@2022-06-15' = {
  name: availabilityTestName
  location: location
  tags: union(tags, { 'hidden-link:${applicationInsights.id}': 'Resource' })
  kind: 'standard'
  properties: {
    SyntheticMonitorId: availabilityTestName
    Name: availabilityTestName
    Description: 'GET /api/health answers 200: the app starts and builds its worker from its settings.'
    Enabled: true
    Kind: 'standard'
    Frequency: 300
    Timeout: 60
    RetryEnabled: true
    Locations: availabilityLocations
    Request: {
      RequestUrl: healthUrl
      HttpVerb: 'GET'
      ParseDependentRequests: false
    }
    ValidationRules: {
      ExpectedHttpStatusCode: 200
      SSLCheck: true
      SSLCertRemainingLifetimeCheck: 7
    }
  }
}

resource healthAlert 'Microsoft.Insights/metricAlerts@2018-03-01' = {
  name: '${alertRulePrefix}-health'
  location: 'global'
  tags: tags
  properties: {
    description: 'GET /api/health failing from two or more test locations: see infra/README.md, Alerts.'
    severity: 1
    enabled: true
    scopes: [ healthTest.id, applicationInsights.id ]
    evaluationFrequency: 'PT1M'
    windowSize: 'PT5M'
    autoMitigate: true
    criteria: {
      'odata.type': 'Microsoft.Azure.Monitor.WebtestLocationAvailabilityCriteria'
      webTestId: healthTest.id
      componentId: applicationInsights.id
      failedLocationCount: 2
    }
    actions: [ { actionGroupId: actionGroup.id } ]
  }
}

// One alert per kind of line (the event dimension), stateful: it fires once and resolves when
// 15 minutes pass without such a line.
resource workerFailures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: '${alertRulePrefix}-worker'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: '${alertRulePrefix}-worker'
    description: 'The worker gave up on a delivery (message.dead_lettered) or a reconcile run failed (reconcile.finished, status failed): see infra/README.md, Alerts.'
    severity: 1
    enabled: true
    scopes: [ applicationInsights.id ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: workerFailureQuery
          timeAggregation: 'Count'
          dimensions: [
            { name: 'event', operator: 'Include', values: [ '*' ] }
          ]
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [ actionGroup.id ]
    }
  }
}

output actionGroupName string = actionGroup.name
