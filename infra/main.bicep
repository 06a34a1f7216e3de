// Everything `azd up` creates for the Durable Scheduler, secure by default:
// no storage keys, no Cosmos keys, no App Insights instrumentation-key auth.
// The function app reaches every service as one user-assigned managed identity.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources. It must offer the Flex Consumption plan.')
param location string

@description('Object id of the principal running `azd up` (azd fills it in). When set, it gets the same data roles as the app, so the app can run locally against these resources. Leave empty to grant nothing.')
param principalId string = ''

@description('What kind of principal `principalId` is: a person at a terminal, or the pipeline\'s service principal.')
@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string = 'User'

// azd fills this in from main.parameters.json with
// `$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} request-fingerprint-key)`. What azd does
// with that (its cmdsubst package): given a vault and a secret name it reads the secret as
// the signed-in principal and passes its value; if the secret does not exist (404), or the
// vault name is empty (first run: the output below is not in the environment yet), it passes
// a random password of 15 letters and digits, which is not base64; any other error (a 403
// for a principal without Key Vault Secrets User, say) fails the provisioning. The second
// argument must be the secret's own name. modules/key-vault.bicep turns a first-run password
// into a key and writes a stored key back unchanged: that keeps the key the same on every run.
@secure()
@description('Server key for Idempotency-Key fingerprints, as azd passes it; see modules/key-vault.bicep.')
param requestFingerprintKey string

// Passed the same way: `$(secretOrRandomPassword ${AZURE_KEY_VAULT_NAME} webhook-signing-secrets)`.
@secure()
@description('Standard Webhooks signing secrets, as azd passes them; see modules/key-vault.bicep.')
param webhookSigningSecrets string

// Where Durable Functions keeps orchestration state: the Functions storage account's queues and
// tables (`storage`), or a Durable Task Scheduler (`dts`), set with `azd env set DURABLE_BACKEND dts`.
// The `dts` variant also needs the host.json that azure.yaml's prepackage hook writes; see
// docs/deploy.md.
@description('Durable Functions backend: storage (Azure Storage queues and tables) or dts (Durable Task Scheduler).')
@allowed([
  'storage'
  'dts'
])
param durableBackend string = 'storage'

@description('Durable Task Scheduler billing model when durableBackend is dts: Consumption (per action) or Dedicated (per capacity unit).')
@allowed([
  'Consumption'
  'Dedicated'
])
param durableTaskSchedulerSku string = 'Consumption'

var useDurableTaskScheduler = durableBackend == 'dts'
// The task hub's name, the same in both variants (host.json's hubName for Azure Storage).
var durableTaskHubName = 'DurableScheduler'

// A short, stable suffix so that names are globally unique but the same on every run.
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
}

// The job log: one database, one container, partitioned like the app queries it.
var cosmosDatabaseName = 'scheduler'
var cosmosContainerName = 'joblog'

// Flex Consumption pulls the app package from this blob container.
var deploymentContainerName = 'app-package-${take(resourceToken, 7)}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: 'id-${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: 'log-${resourceToken}'
    applicationInsightsName: 'appi-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: 'st${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
  }
}

// The key that seals job payloads and the fingerprint secret.
module keyVault 'modules/key-vault.bicep' = {
  name: 'key-vault'
  scope: rg
  params: {
    name: 'kv-${resourceToken}'
    location: location
    tags: tags
    requestFingerprintKey: requestFingerprintKey
    webhookSigningSecrets: webhookSigningSecrets
  }
}

module cosmos 'modules/cosmos.bicep' = {
  name: 'cosmos'
  scope: rg
  params: {
    name: 'cosmos-${resourceToken}'
    location: location
    tags: tags
    databaseName: cosmosDatabaseName
    containerName: cosmosContainerName
    identityPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

// Data roles for the app's identity: Durable Functions keeps its queues, history
// tables and leases in the storage account, the host sends telemetry with Entra auth, and
// the app uses the Key Vault key and reads the fingerprint secret.
module appRoles 'modules/rbac.bicep' = {
  name: 'app-roles'
  scope: rg
  params: {
    principalId: identity.outputs.principalId
    principalType: 'ServicePrincipal'
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

// The same roles for whoever deploys, so `func start` on their machine can use these resources,
// and so that azd can read the fingerprint secret back on the next `azd up`.
module userRoles 'modules/rbac.bicep' = if (!empty(principalId)) {
  name: 'user-roles'
  scope: rg
  params: {
    principalId: principalId
    principalType: principalType
    storageAccountName: storage.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    keyVaultName: keyVault.outputs.name
  }
}

// Only in the `dts` variant: the scheduler, its task hub and the app's data role on it.
module durableTaskScheduler 'modules/durable-task-scheduler.bicep' = if (useDurableTaskScheduler) {
  name: 'durable-task-scheduler'
  scope: rg
  params: {
    name: 'dts-${resourceToken}'
    location: location
    tags: tags
    taskHubName: durableTaskHubName
    skuName: durableTaskSchedulerSku
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
    userPrincipalType: principalType
  }
}

module functionApp 'modules/function-app.bicep' = {
  name: 'function-app'
  scope: rg
  // The host starts as soon as the site exists; let it find its storage and Key Vault roles
  // already granted (the platform resolves the Key Vault reference at start).
  dependsOn: [
    appRoles
    durableTaskScheduler
  ]
  params: {
    planName: 'plan-${resourceToken}'
    appName: 'func-${resourceToken}'
    location: location
    tags: tags
    identityName: identity.outputs.name
    storageAccountName: storage.outputs.name
    deploymentContainerName: deploymentContainerName
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    cosmosEndpoint: cosmos.outputs.endpoint
    cosmosDatabaseName: cosmosDatabaseName
    cosmosContainerName: cosmosContainerName
    sealingKeyUrl: keyVault.outputs.keyUri
    fingerprintSecretUri: keyVault.outputs.fingerprintSecretUri
    signingSecretUri: keyVault.outputs.signingSecretUri
    durableBackend: durableBackend
    durableTaskSchedulerEndpoint: useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
    durableTaskHubName: durableTaskHubName
  }
}

// azd stores these outputs in the environment (.azure/<env>/.env). None of them is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = functionApp.outputs.name
output FUNCTION_APP_URL string = functionApp.outputs.url
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_STORAGE_BLOB_ENDPOINT string = storage.outputs.blobEndpoint
output AZURE_STORAGE_QUEUE_ENDPOINT string = storage.outputs.queueEndpoint
output AZURE_STORAGE_TABLE_ENDPOINT string = storage.outputs.tableEndpoint
output COSMOS_ENDPOINT string = cosmos.outputs.endpoint
output COSMOS_DATABASE string = cosmosDatabaseName
output COSMOS_CONTAINER string = cosmosContainerName
// main.parameters.json reads the fingerprint secret from this vault on the next run.
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
// The key's address (no version), for running the app locally against this vault.
output SEALING_KEY_VAULT_KEY_URL string = keyVault.outputs.keyUri
// Which backend the infrastructure was provisioned for (the package hook refuses to deploy a
// host.json for another one), and the scheduler's address (empty on Azure Storage).
output DURABLE_BACKEND_PROVISIONED string = durableBackend
output DURABLE_TASK_SCHEDULER_ENDPOINT string = useDurableTaskScheduler ? durableTaskScheduler.outputs.endpoint : ''
