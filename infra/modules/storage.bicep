// The Functions host storage: Durable Functions keeps its control and work-item
// queues, history and instance tables, and lease blobs here, and Flex Consumption
// reads the app package from a blob container. Shared-key access is disabled, so
// only Entra identities with data roles can reach it; there is no connection string.
param name string
param location string
param tags object
param deploymentContainerName string

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_35: The app has no VNet integration, so it reaches storage over public endpoints; shared keys are disabled, so every request needs an Entra token with a data role.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public network access stays on for the app without a VNet, and authorization is Entra-only.
  // checkov:skip=CKV_AZURE_206: The app runs in one region, so a geo-replica of its transient orchestration state and package would add cost without a usable failover.
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    // The strictest minimum Storage accepts: the API lists TLS1_3, but its own description
    // says a 1.3 minimum is not supported.
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

output name string = storage.name
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
