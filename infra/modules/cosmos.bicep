// Cosmos DB (SQL API) for the job log. Serverless: billed per request unit and
// per GB stored, nothing for idle time. Key auth is disabled; the app and (optionally)
// the deploying user get the built-in data-plane role instead.
param name string
param location string
param tags object
param databaseName string
param containerName string

@description('Principal id of the app\'s managed identity.')
param identityPrincipalId string

@description('Principal id of the deploying user; empty grants nothing.')
param userPrincipalId string = ''

// Cosmos DB Built-in Data Contributor: read and write items, no control-plane rights.
// A data-plane role of Cosmos itself, not an Azure RBAC (Microsoft.Authorization) role.
var dataContributorRoleId = '00000000-0000-0000-0000-000000000002'

resource account 'Microsoft.DocumentDB/databaseAccounts@2024-11-15' = {
  // checkov:skip=CKV_AZURE_99: The app runs on Flex Consumption without VNet integration, so it has no fixed outbound addresses to allow-list; every request still needs an Entra token because key auth is disabled.
  // checkov:skip=CKV_AZURE_101: Public network access is how the app (no VNet) reaches the account; authentication is Entra-only (disableLocalAuth), so the network is not the access boundary.
  name: name
  location: location
  tags: tags
  kind: 'GlobalDocumentDB'
  properties: {
    databaseAccountOfferType: 'Standard'
    capabilities: [
      {
        name: 'EnableServerless'
      }
    ]
    consistencyPolicy: {
      defaultConsistencyLevel: 'Session'
    }
    locations: [
      {
        locationName: location
        failoverPriority: 0
        isZoneRedundant: false
      }
    ]
    disableLocalAuth: true
    disableKeyBasedMetadataWriteAccess: true
    // The strictest minimum Cosmos DB offers (Tls12 is its only accepted value now); the
    // service has also accepted TLS 1.3 connections since March 2025.
    minimalTlsVersion: 'Tls12'
    publicNetworkAccess: 'Enabled'
  }
}

resource database 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases@2024-11-15' = {
  parent: account
  name: databaseName
  properties: {
    resource: {
      id: databaseName
    }
  }
}

resource container 'Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers@2024-11-15' = {
  parent: database
  name: containerName
  properties: {
    resource: {
      id: containerName
      partitionKey: {
        paths: [
          '/transaction_id'
        ]
        kind: 'Hash'
        version: 2
      }
    }
  }
}

resource appDataAccess 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = {
  parent: account
  name: guid(account.id, identityPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: identityPrincipalId
    scope: account.id
  }
}

resource userDataAccess 'Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments@2024-11-15' = if (!empty(userPrincipalId)) {
  parent: account
  name: guid(account.id, userPrincipalId, dataContributorRoleId)
  properties: {
    roleDefinitionId: '${account.id}/sqlRoleDefinitions/${dataContributorRoleId}'
    principalId: userPrincipalId
    scope: account.id
  }
}

output name string = account.name
output endpoint string = account.properties.documentEndpoint
