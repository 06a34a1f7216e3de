// Key Vault for the sealed job payloads. It holds:
// - the RSA key that wraps each payload's data key (envelope encryption): the app wraps
//   with the key's public part and asks the vault to unwrap, so the private key never
//   leaves the vault;
// - the secret `request-fingerprint-key`, the server key of Idempotency-Key fingerprints;
// - the secret `webhook-signing-secrets`, the Standard Webhooks key(s) every http.call and
//   callback is signed with (`whsec_<base64>`, several separated by spaces while rotating).
// Access is by Azure RBAC only (no access policies); the roles are in rbac.bicep.
param name string
param location string
param tags object

@secure()
@description('The fingerprint key as azd passes it (main.parameters.json): the value this vault already holds, or on the first run a random password (see fingerprintKeyValue below).')
param requestFingerprintKey string

@secure()
@description('The webhook signing secrets as azd passes them (main.parameters.json): the value this vault already holds, or on the first run a random password (see signingSecretsValue below).')
param webhookSigningSecrets string

// Fresh randomness for a new fingerprint key, used only when the vault holds none yet.
// newGuid() is allowed only as a parameter default; @secure() keeps the values out of the
// deployment history. Leave both to their defaults.
@secure()
// checkov:skip=CKV_AZURE_131: The default is newGuid(), a new random value on every deployment (the one default the Bicep linter allows for a secure parameter), not a value written in the template.
param newKeyEntropyA string = newGuid()

@secure()
// checkov:skip=CKV_AZURE_131: The default is newGuid(), a new random value on every deployment (the one default the Bicep linter allows for a secure parameter), not a value written in the template.
param newKeyEntropyB string = newGuid()

// Fresh randomness for a new signing secret, apart from the fingerprint key's: knowing one
// secret must tell nothing of the other.
@secure()
// checkov:skip=CKV_AZURE_131: The default is newGuid(), a new random value on every deployment (the one default the Bicep linter allows for a secure parameter), not a value written in the template.
param newKeyEntropyC string = newGuid()

@secure()
// checkov:skip=CKV_AZURE_131: The default is newGuid(), a new random value on every deployment (the one default the Bicep linter allows for a secure parameter), not a value written in the template.
param newKeyEntropyD string = newGuid()

// Read by azd (main.parameters.json) and by the app through a Key Vault reference.
var fingerprintSecretName = 'request-fingerprint-key'
var signingSecretName = 'webhook-signing-secrets'

// azd's `secretOrRandomPassword <vault> <secret>` passes the secret's current value when the
// vault holds it, and otherwise (first run, or no vault yet) a random password of 15 letters
// and digits: not base64, and about 83 bits. The app wants base64 of at least 32 bytes.
// So: a value of 44 characters or more (base64 of 32 bytes is 44) is a key already stored,
// and is written back unchanged, which keeps the key the same across `azd up` runs; anything
// shorter is the first-run password, and the new key is the base64 of that password and two
// fresh GUIDs: 15 + 36 + 36 = 87 bytes, 116 base64 characters without padding.
// (The parentheses only make the precedence plain to readers and to pycep.)
var fingerprintKeyValue = (length(requestFingerprintKey) >= 44) ? requestFingerprintKey : base64('${requestFingerprintKey}${newKeyEntropyA}${newKeyEntropyB}')

// The signing secrets, kept the same way: a stored value starts with `whsec_` (one secret, or
// several while an operator rotates them: docs/webhooks.md) and is written back unchanged;
// azd's first-run password becomes `whsec_` + base64 of it and two fresh GUIDs (87 bytes).
var signingSecretsValue = startsWith(webhookSigningSecrets, 'whsec_') ? webhookSigningSecrets : 'whsec_${base64('${webhookSigningSecrets}${newKeyEntropyC}${newKeyEntropyD}')}'

resource vault 'Microsoft.KeyVault/vaults@2024-11-01' = {
  // checkov:skip=CKV_AZURE_109: The app runs on Flex Consumption without VNet integration and has no fixed outbound addresses to allow-list; every request needs an Entra token with a Key Vault data role (RBAC authorization, no access policies).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: the app (no VNet) and the Functions platform resolving the Key Vault reference reach the vault over its public endpoint; authorization is Entra RBAC only.
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      // Standard: software-protected keys, billed per operation only. Premium (HSM-backed
      // keys) is billed per key version every month.
      name: 'standard'
    }
    enableRbacAuthorization: true
    accessPolicies: []
    enableSoftDelete: true
    // A deleted key or secret (or the vault) stays recoverable for 90 days, and nobody can
    // purge it sooner: losing the key would make every sealed payload unreadable.
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    // TLS: Microsoft.KeyVault/vaults has no minimum-TLS setting (none in any API version up
    // to 2026-05-15); the service itself accepts only TLS 1.2 and 1.3.
  }
}

// The key-encryption key. RSA 3072 (about 128-bit strength) for RSA-OAEP-256 wrapping of
// 256-bit data keys; it may only wrap and unwrap. ARM creates a key only if it does not
// exist: redeploying never rotates it or changes these properties. Rotation is a new key
// version (docs/deploy.md); payloads sealed under older versions name their version and
// stay readable.
resource sealingKey 'Microsoft.KeyVault/vaults/keys@2024-11-01' = {
  // checkov:skip=CKV_AZURE_40: An expired key can no longer wrap, so every new job would fail until someone rotated it, and ARM never updates an existing key, so a template expiry could not be renewed; the key is rotated by new versions instead (docs/deploy.md).
  // checkov:skip=CKV_AZURE_112: HSM-backed keys need the Premium tier and are billed per key version every month, against this deployment's no-idle-cost design; the software-protected key is still used only inside the vault (unwrap happens there, the private key is never exported).
  parent: vault
  name: 'job-payload-kek'
  tags: tags
  properties: {
    kty: 'RSA'
    keySize: 3072
    keyOps: [
      'wrapKey'
      'unwrapKey'
    ]
    attributes: {
      enabled: true
    }
  }
}

resource fingerprintSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  // checkov:skip=CKV_AZURE_41: The fingerprint key has no natural lifetime: an expired secret would switch idempotent creates off (503) until someone replaced it, and replacing it early makes a retry of an earlier request look like a different request (409).
  parent: vault
  name: fingerprintSecretName
  tags: tags
  properties: {
    contentType: 'base64 of random bytes (HMAC-SHA256 key)'
    value: fingerprintKeyValue
    attributes: {
      enabled: true
    }
  }
}

resource signingSecret 'Microsoft.KeyVault/vaults/secrets@2024-11-01' = {
  // checkov:skip=CKV_AZURE_41: Receivers verify with these secrets: an expired one would stop every delivery from verifying until someone replaced it. They are rotated by hand, the old one kept beside the new while receivers move over (docs/webhooks.md).
  parent: vault
  name: signingSecretName
  tags: tags
  properties: {
    contentType: 'Standard Webhooks secrets (whsec_ base64), space-separated'
    value: signingSecretsValue
    attributes: {
      enabled: true
    }
  }
}

output name string = vault.name
output uri string = vault.properties.vaultUri
// Without a version: the app wraps under the key's current version, and unwraps with the
// version each payload recorded.
output keyUri string = sealingKey.properties.keyUri
// Without a version: the Key Vault reference follows the secret's current version.
output fingerprintSecretUri string = fingerprintSecret.properties.secretUri
output signingSecretUri string = signingSecret.properties.secretUri
