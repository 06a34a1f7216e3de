// The function app on a Flex Consumption plan (FC1, Linux). It runs as the
// user-assigned identity and reaches storage, Application Insights, Cosmos DB and
// Key Vault with Entra tokens only: no app setting holds a key, SAS or connection
// string built from a key; the secrets (the fingerprint key, the webhook signing
// secrets) are Key Vault references that the platform resolves as the identity.
param planName string
param appName string
param location string
param tags object
param identityName string
param storageAccountName string
param deploymentContainerName string
param applicationInsightsName string
param cosmosEndpoint string
param cosmosDatabaseName string
param cosmosContainerName string

@description('URL of the Key Vault key that wraps payload data keys, without a version.')
param sealingKeyUrl string

@description('URI of the fingerprint secret in Key Vault, without a version.')
param fingerprintSecretUri string

@description('URI of the webhook signing secrets in Key Vault, without a version.')
param signingSecretUri string

@description('Durable Functions backend: storage or dts (Durable Task Scheduler).')
@allowed([
  'storage'
  'dts'
])
param durableBackend string = 'storage'

@description('The scheduler\'s endpoint when durableBackend is dts; empty otherwise.')
param durableTaskSchedulerEndpoint string = ''

@description('The task hub the app uses when durableBackend is dts.')
param durableTaskHubName string = ''

@description('Upper bound on instances the plan scales out to; caps the bill under load.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var useDurableTaskScheduler = durableBackend == 'dts'

// What the Durable Task Scheduler backend reads: host.json (written for `dts` by the prepackage
// hook, scripts/select_host_json.py) names these two settings. The connection string carries no
// secret: the extension gets an Entra token as the user-assigned identity named by ClientID.
var durableTaskSchedulerSettings = [
  {
    name: 'DURABLE_TASK_SCHEDULER_CONNECTION_STRING'
    value: 'Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}'
  }
  {
    name: 'TASKHUB_NAME'
    value: durableTaskHubName
  }
]

var sharedAppSettings = [
  // Host storage by identity: the host and Durable Functions (blobs, queues,
  // tables) build clients from these URIs with the user-assigned identity.
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identity.properties.clientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storage.properties.primaryEndpoints.blob
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storage.properties.primaryEndpoints.queue
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storage.properties.primaryEndpoints.table
  }
  // The connection string only says where to send telemetry (it is not a
  // credential once local auth is off); the authentication string makes the
  // host get an Entra token as the user-assigned identity.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsights.properties.ConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
  }
  // DefaultAzureCredential in the app (Cosmos DB job log) picks this identity.
  {
    name: 'AZURE_CLIENT_ID'
    value: identity.properties.clientId
  }
  // The job log. No COSMOS_KEY: the app authenticates with Entra ID.
  {
    name: 'COSMOS_ENDPOINT'
    value: cosmosEndpoint
  }
  {
    name: 'COSMOS_DATABASE'
    value: cosmosDatabaseName
  }
  {
    name: 'COSMOS_CONTAINER'
    value: cosmosContainerName
  }
  // The scheduler's own settings, at the defaults of scheduling/settings.py;
  // change them here or in the portal.
  {
    name: 'MIN_LEAD_SECONDS'
    value: '60'
  }
  {
    name: 'MAX_HORIZON_DAYS'
    value: '366'
  }
  {
    name: 'JOB_TABLE'
    value: 'jobs'
  }
  // Payloads are sealed under this Key Vault key (no version: new payloads use its
  // current version, each payload records the version that wrapped it).
  {
    name: 'SEALING_KEY_VAULT_KEY_URL'
    value: sealingKeyUrl
  }
  // A Key Vault reference, not the key: the platform reads the secret as the identity
  // above (keyVaultReferenceIdentity) and the app sees the value.
  {
    name: 'REQUEST_FINGERPRINT_KEY'
    value: '@Microsoft.KeyVault(SecretUri=${fingerprintSecretUri})'
  }
  // Every http.call and callback is signed with these (Standard Webhooks).
  {
    name: 'WEBHOOK_SIGNING_SECRETS'
    value: '@Microsoft.KeyVault(SecretUri=${signingSecretUri})'
  }
  {
    name: 'HTTP_CALL_ALLOWED_NETWORKS'
    value: ''
  }
  {
    name: 'HTTP_CALL_ALLOWED_HOSTS'
    value: ''
  }
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Zone redundancy is not offered in every Flex Consumption region and needs zone-redundant host storage; this template keeps to settings that deploy in any Flex region.
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true // Linux
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: The scheduler's HTTP API is meant to be called over the internet; its routes require function keys (the health check aside), not network isolation.
  // checkov:skip=CKV_AZURE_17: Callers authenticate with function keys; demanding TLS client certificates would break every ordinary HTTP client.
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales to zero on purpose (no always-ready instances), so an idle app costs nothing; Durable timers survive in storage and wake the app.
  // checkov:skip=CKV_AZURE_213: The platform's scale controller starts and stops Flex Consumption instances; an App Service health-check ping has nothing to take out of rotation when the app is scaled to zero.
  name: appName
  location: location
  // azd finds the app to deploy the `api` service to by this tag.
  tags: union(tags, {
    'azd-service-name': 'api'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Key Vault references in the app settings are resolved as this identity (a
    // user-assigned identity must be named here; the default is a system-assigned one).
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      // TLS 1.3 only, for the app and for its scm (Kudu/deployment) endpoint.
      minTlsVersion: '1.3'
      scmMinTlsVersion: '1.3'
      http20Enabled: true
      ftpsState: 'Disabled'
      appSettings: concat(sharedAppSettings, useDurableTaskScheduler ? durableTaskSchedulerSettings : [])
    }
    // Flex Consumption takes the runtime, scale and package location from here,
    // not from FUNCTIONS_WORKER_RUNTIME / WEBSITE_RUN_FROM_PACKAGE app settings.
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

// No basic (user name and password) authentication to the publishing endpoints: azd
// deploys with an Entra token, and FTP is off anyway (ftpsState).
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = functionApp.name
output url string = 'https://${functionApp.properties.defaultHostName}'
