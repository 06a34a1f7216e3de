// The Azure RBAC data roles one principal needs to run the app: the Functions host
// and Durable Functions use blobs (leases, package), queues (control and work items)
// and tables (history, instances), and the app its job store tables; the host publishes
// telemetry with Entra auth; the app wraps and unwraps payload data keys with the Key
// Vault key and reads the fingerprint secret. For the deploying principal the secret read
// is not optional: azd reads the secret on every `azd up` (infra/main.parameters.json).
param principalId string

@allowed([
  'User'
  'ServicePrincipal'
])
param principalType string

param storageAccountName string
param applicationInsightsName string
param keyVaultName string

// Built-in role definition ids (the same in every Azure cloud and tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Key Vault data roles, from Microsoft's "Azure built-in roles" reference (Security):
// Key Vault Crypto User: read keys and use them (wrapKey, unwrapKey, ...); no key management.
var keyVaultCryptoUser = '12338af0-0e69-4776-bea7-57ae8d297424'
// Key Vault Secrets User: read secret contents; no writes.
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource keyVault 'Microsoft.KeyVault/vaults@2024-11-01' existing = {
  name: keyVaultName
}

// Owner rather than Contributor: the host manages blob leases and containers itself.
resource blobDataOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

resource queueDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

// Every table of the account: Durable's history and instances, the job store (JOB_TABLE
// and its due index, which the app creates on first use) and the Table Storage job log.
resource tableDataContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, principalId, storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: principalId
    principalType: principalType
  }
}

resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, principalId, monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: principalId
    principalType: principalType
  }
}

// Scoped to the vault, as Microsoft's Key Vault RBAC guide recommends for a vault that
// serves one application (per-key or per-secret assignments are for shared vaults). This
// vault holds only the payload key and the fingerprint secret.
resource cryptoUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultCryptoUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultCryptoUser)
    principalId: principalId
    principalType: principalType
  }
}

resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(keyVault.id, principalId, keyVaultSecretsUser)
  scope: keyVault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: principalId
    principalType: principalType
  }
}
