// The Durable Task Scheduler backend (`azd env set DURABLE_BACKEND dts`): a scheduler, one
// task hub, and the data role for the app's identity (and for whoever deploys, so that the
// scheduler's dashboard shows them the orchestrations). main.bicep deploys this module only
// in that variant; the Azure Storage backend needs none of it.
//
// Resource types and API version from Microsoft's template reference for
// Microsoft.DurableTask/schedulers and schedulers/taskHubs (2026-02-01, the latest non-preview
// version there). Azure Verified Modules has a module for the scheduler
// (avm/res/durable-task/scheduler), but its parameters could not be read from here, and a
// registry module is opaque to the offline checks in tests/infra: the resources are declared
// directly instead.
param name string
param location string
param tags object

@description('Name of the task hub the app uses (host.json reads it as %TASKHUB_NAME%).')
param taskHubName string

@description('Billing model: Consumption is billed per action dispatched; Dedicated per capacity unit and month.')
@allowed([
  'Consumption'
  'Dedicated'
])
param skuName string = 'Consumption'

@description('Principal id of the app\'s user-assigned identity.')
param appPrincipalId string

@description('Object id of the principal running `azd up`; empty grants nothing.')
param userPrincipalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
])
param userPrincipalType string = 'User'

// Durable Task Data Contributor: all data operations on schedulers and task hubs (the id as
// Microsoft's Bicep guidance for the scheduler gives it; see docs/deploy.md). The Durable Functions
// extension both starts and runs orchestrations, so it needs the contributor role rather than
// Durable Task Worker (which cannot start or query instances).
var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'

resource scheduler 'Microsoft.DurableTask/schedulers@2026-02-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    sku: {
      name: skuName
    }
    // Required, and an empty list denies every caller. Flex Consumption has no fixed outbound
    // addresses, so no address range can be named here: access is decided by Entra ID roles.
    ipAllowlist: [
      '0.0.0.0/0'
    ]
  }
}

resource taskHub 'Microsoft.DurableTask/schedulers/taskHubs@2026-02-01' = {
  parent: scheduler
  name: taskHubName
}

resource appDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(scheduler.id, appPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource userDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(scheduler.id, userPrincipalId, durableTaskDataContributor)
  scope: scheduler
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', durableTaskDataContributor)
    principalId: userPrincipalId
    principalType: userPrincipalType
  }
}

// The gRPC endpoint the extension connects to (it carries a generated suffix and the region,
// so it is read from the resource, never built from the name).
output endpoint string = scheduler.properties.endpoint
output taskHubName string = taskHub.name
output name string = scheduler.name
