"""The azd deployment (azure.yaml, infra/*.bicep) is secure by default and wired correctly.

No Bicep compiler is available, so these tests read pycep's parse of every file
(see bicep_model.py). Each requirement is a `*_problems(project)` function that
lists what is wrong; the tests assert the lists are empty, and
`test_checks_catch_regressions` edits the Bicep text in memory (shared keys back
on, a wrong role id, ...) to prove that each check notices.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import string
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from scheduling.idempotency import (
    MIN_FINGERPRINT_KEY_BYTES,
    FingerprintKeyMissing,
    fingerprint_key,
)
from scheduling.settings import SchedulerSettings

from .bicep_model import (
    INFRA_DIR,
    MAIN_BICEP,
    REPO_ROOT,
    BicepFile,
    Module,
    Project,
    Resource,
    bicep_paths,
    evaluate,
    load_project,
    parse,
    render,
    unquote,
    walk,
)

# Built-in Azure role definition ids, from Microsoft's "Azure built-in roles" reference.
STORAGE_BLOB_DATA_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"
STORAGE_QUEUE_DATA_CONTRIBUTOR = "974c5e8b-45b9-4653-ba55-5f855dd0fb88"
STORAGE_TABLE_DATA_CONTRIBUTOR = "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3"
MONITORING_METRICS_PUBLISHER = "3913510d-42f4-4e42-8a64-420c390055eb"
KEY_VAULT_CRYPTO_USER = "12338af0-0e69-4776-bea7-57ae8d297424"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
# Cosmos DB's own data-plane role "Cosmos DB Built-in Data Contributor".
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"
# Durable Task Data Contributor (Integration): all data operations on a Durable Task Scheduler.
DURABLE_TASK_DATA_CONTRIBUTOR = "0ad04412-c4d5-4796-b79c-f76d14c8d402"

STORAGE_ACCOUNTS = "Microsoft.Storage/storageAccounts"
APP_INSIGHTS = "Microsoft.Insights/components"
LOG_ANALYTICS = "Microsoft.OperationalInsights/workspaces"
COSMOS_ACCOUNTS = "Microsoft.DocumentDB/databaseAccounts"
COSMOS_CONTAINERS = "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers"
COSMOS_SQL_ROLE_ASSIGNMENTS = "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"
ROLE_ASSIGNMENTS = "Microsoft.Authorization/roleAssignments"
USER_ASSIGNED_IDENTITIES = "Microsoft.ManagedIdentity/userAssignedIdentities"
SERVER_FARMS = "Microsoft.Web/serverfarms"
SITES = "Microsoft.Web/sites"
BLOB_CONTAINERS = "Microsoft.Storage/storageAccounts/blobServices/containers"
KEY_VAULTS = "Microsoft.KeyVault/vaults"
KEY_VAULT_KEYS = "Microsoft.KeyVault/vaults/keys"
KEY_VAULT_SECRETS = "Microsoft.KeyVault/vaults/secrets"
PUBLISHING_CREDENTIALS = "Microsoft.Web/sites/basicPublishingCredentialsPolicies"
DURABLE_TASK_SCHEDULERS = "Microsoft.DurableTask/schedulers"
DURABLE_TASK_HUBS = "Microsoft.DurableTask/schedulers/taskHubs"
# The latest non-preview API version in Microsoft's template reference for both types.
DURABLE_TASK_API_VERSION = "2026-02-01"

# The two deployments main.bicep describes: `azd env set DURABLE_BACKEND storage|dts`.
BACKENDS = ("storage", "dts")
# The app settings the Durable Task Scheduler backend reads (host.json for `dts` names them),
# set only in the `dts` variant.
DTS_CONNECTION_SETTING = "DURABLE_TASK_SCHEDULER_CONNECTION_STRING"
DTS_TASK_HUB_SETTING = "TASKHUB_NAME"
DTS_APP_SETTINGS = (DTS_CONNECTION_SETTING, DTS_TASK_HUB_SETTING)

# The Key Vault secret the app reads as REQUEST_FINGERPRINT_KEY and azd reads back on each run.
FINGERPRINT_SECRET_NAME = "request-fingerprint-key"
# What main.parameters.json passes for the fingerprint key: azd's `secretOrRandomPassword`,
# reading the vault named by the previous run's output, and the secret of that name.
FINGERPRINT_PARAMETER = (
    f"$(secretOrRandomPassword ${{AZURE_KEY_VAULT_NAME}} {FINGERPRINT_SECRET_NAME})"
)
# The shortest value the app accepts as a fingerprint key is base64 of 32 bytes: 44 characters.
# key-vault.bicep keeps any value at least this long as a key already stored.
FINGERPRINT_STORED_MIN_CHARS = len(base64.b64encode(bytes(MIN_FINGERPRINT_KEY_BYTES)))
PARAMETERS_FILE = INFRA_DIR / "main.parameters.json"
# The Key Vault secret the app reads as WEBHOOK_SIGNING_SECRETS, kept across runs the same way.
SIGNING_SECRET_NAME = "webhook-signing-secrets"
SIGNING_PARAMETER = f"$(secretOrRandomPassword ${{AZURE_KEY_VAULT_NAME}} {SIGNING_SECRET_NAME})"

# role id -> the resource type it must be scoped to
EXPECTED_ROLES = {
    STORAGE_BLOB_DATA_OWNER: STORAGE_ACCOUNTS,
    STORAGE_QUEUE_DATA_CONTRIBUTOR: STORAGE_ACCOUNTS,
    STORAGE_TABLE_DATA_CONTRIBUTOR: STORAGE_ACCOUNTS,
    MONITORING_METRICS_PUBLISHER: APP_INSIGHTS,
    KEY_VAULT_CRYPTO_USER: KEY_VAULTS,
    KEY_VAULT_SECRETS_USER: KEY_VAULTS,
}

# App settings Flex Consumption rejects or ignores (runtime and package live in functionAppConfig),
# and settings that would carry a key or a key-based connection string.
FORBIDDEN_APP_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountKey",
    "APPINSIGHTS_INSTRUMENTATIONKEY",
    "COSMOS_KEY",
    "SEALING_KEYS",  # local development keys: in Azure the Key Vault key seals payloads
}
SECRET_WORDS = re.compile(r"key|secret|password|sas|token", re.IGNORECASE)

# The scheduler's own settings that the deployment sets explicitly (at their defaults).
SCHEDULER_APP_SETTINGS = (
    "MIN_LEAD_SECONDS",
    "MAX_HORIZON_DAYS",
    "JOB_TABLE",
    "HTTP_CALL_ALLOWED_NETWORKS",
    "HTTP_CALL_ALLOWED_HOSTS",
)

# Text that means a key, a SAS or a key-based connection string is being built or read.
SECRET_TEXT = re.compile(
    r"AccountKey=|SharedAccessSignature|SharedAccessKey|[?&]sig=|InstrumentationKey="
    r"|listKeys|listConnectionStrings|listAccountSas|listServiceSas|primaryMasterKey",
    re.IGNORECASE,
)


@pytest.fixture(scope="module")
def project() -> Project:
    return load_project()


# --- helpers over the model -------------------------------------------------------------------


def expr(file: BicepFile, node: Any) -> str:
    """`render(node)` with string-valued variables of `file` substituted (role ids, names)."""
    variables = file.variables

    def substitute(value: Any) -> Any:
        if isinstance(value, str):
            literal = variables.get(value)
            return literal if isinstance(literal, str) else file.resolve(value)
        if isinstance(value, dict):
            return {k: substitute(v) for k, v in value.items()}
        if isinstance(value, list):
            return [substitute(v) for v in value]
        return value

    return render(substitute(node))


def single_module(project: Project, relative: str, problems: list[str]) -> Module | None:
    modules = project.modules_of(relative)
    if len(modules) != 1:
        problems.append(f"main.bicep deploys {relative} {len(modules)} times, expected once")
        return None
    return modules[0]


def identity_expressions(project: Project, problems: list[str]) -> dict[str, str]:
    """What main.bicep writes for the user-assigned identity's name, principal id and client id.

    Checks the chain on the way: main deploys modules/identity.bicep once and unconditionally,
    and its outputs really are that identity's properties.
    """
    identity_file = project.file("modules/identity.bicep")
    identities = identity_file.resources(USER_ASSIGNED_IDENTITIES, existing=False)
    if len(identities) != 1:
        problems.append(f"identity.bicep declares {len(identities)} user-assigned identities")
        return {}
    symbol = identities[0].symbol
    wanted = {
        "name": f"{symbol}.name",
        "principalId": f"{symbol}.properties.principalId",
        "clientId": f"{symbol}.properties.clientId",
    }
    outputs = identity_file.outputs
    for output, value in wanted.items():
        if render(outputs.get(output)) != value:
            problems.append(
                f"identity.bicep: output {output} is {render(outputs.get(output))}, not {value}"
            )
    module = single_module(project, "modules/identity.bicep", problems)
    if module is None:
        return {}
    if module.condition is not None:
        problems.append("main.bicep: the identity module must not be conditional")
    return {output: f"{module.symbol}.outputs.{output}" for output in wanted}


def module_output(project: Project, relative: str, output: str, problems: list[str]) -> str:
    module = single_module(project, relative, problems)
    return "<missing>" if module is None else f"{module.symbol}.outputs.{output}"


def app_settings(
    site_file: BicepFile, problems: list[str], backend: str = "storage"
) -> dict[str, Any]:
    """The site's app settings in the deployment with DURABLE_BACKEND=`backend`."""
    site = site_file.only_resource(SITES)
    raw = evaluate(
        site_file,
        site.properties.get("siteConfig", {}).get("appSettings", []),
        {"durableBackend": backend},
    )
    if not isinstance(raw, list):
        problems.append(f"function-app.bicep: appSettings is not a list: {render(raw)}")
        return {}
    settings: dict[str, Any] = {}
    for entry in raw:
        if not isinstance(entry, dict) or set(entry) != {"name", "value"}:
            problems.append(
                f"function-app.bicep: app setting {render(entry)} is not {{name, value}}"
            )
            continue
        name = str(entry["name"])
        if name.lower() in {n.lower() for n in settings}:
            problems.append(f"function-app.bicep: app setting {name} is set twice")
        settings[name] = entry["value"]
    return settings


# --- requirements -----------------------------------------------------------------------------


def storage_problems(project: Project) -> list[str]:
    problems: list[str] = []
    accounts = project.all_resources(STORAGE_ACCOUNTS)
    if len(accounts) != 1:
        return [f"expected one storage account, found {[str(a) for a in accounts]}"]
    account = accounts[0]
    props = account.properties
    required = {
        "allowSharedKeyAccess": False,  # no account keys, no SAS signed with them
        "allowBlobPublicAccess": False,
        "minimumTlsVersion": "TLS1_2",  # the strictest Storage supports (a 1.3 minimum is not)
        "supportsHttpsTrafficOnly": True,
        "defaultToOAuthAuthentication": True,
    }
    for name, value in required.items():
        if props.get(name) != value or type(props.get(name)) is not type(value):
            problems.append(
                f"{account}: {name} is {render(props.get(name))}, must be {render(value)}"
            )
    # General-purpose v2 is the kind with blob, queue and table endpoints (Durable needs all three).
    if account.body.get("kind") != "StorageV2":
        problems.append(f"{account}: kind must be StorageV2 (blob, queue and table)")
    for container in project.all_resources(BLOB_CONTAINERS):
        if container.properties.get("publicAccess") != "None":
            problems.append(f"{container}: publicAccess must be None")
    return problems


def cosmos_problems(project: Project) -> list[str]:
    problems: list[str] = []
    cosmos_file = project.file("modules/cosmos.bicep")
    accounts = project.all_resources(COSMOS_ACCOUNTS)
    if len(accounts) != 1 or accounts[0].file is not cosmos_file:
        return [
            f"expected one Cosmos DB account in cosmos.bicep, found {[str(a) for a in accounts]}"
        ]
    account = accounts[0]
    props = account.properties
    if props.get("disableLocalAuth") is not True:
        problems.append(f"{account}: disableLocalAuth must be true (key auth off)")
    # The strictest minimum Cosmos DB accepts (no Tls13 value exists).
    if props.get("minimalTlsVersion") != "Tls12":
        problems.append(f"{account}: minimalTlsVersion must be Tls12")
    capabilities = [c.get("name") for c in props.get("capabilities", []) if isinstance(c, dict)]
    if "EnableServerless" not in capabilities:
        problems.append(f"{account}: must have the EnableServerless capability")
    if account.body.get("kind", "GlobalDocumentDB") != "GlobalDocumentDB":
        problems.append(f"{account}: kind must be GlobalDocumentDB (SQL API)")

    containers = project.all_resources(COSMOS_CONTAINERS)
    if len(containers) != 1:
        problems.append(f"expected one Cosmos container, found {[str(c) for c in containers]}")
    for container in containers:
        key = container.properties.get("resource", {}).get("partitionKey", {})
        if key.get("paths") != ["/transaction_id"]:
            problems.append(
                f"{container}: partition key paths {render(key.get('paths'))} != [/transaction_id]"
            )

    # The app's identity holds the data-plane role (what replaces the Cosmos keys).
    wanted_role = f"{account.symbol}.id/sqlRoleDefinitions/{COSMOS_DATA_CONTRIBUTOR}"
    app_grants = []
    for grant in cosmos_file.resources(COSMOS_SQL_ROLE_ASSIGNMENTS, existing=False):
        role = (
            expr(cosmos_file, grant.properties.get("roleDefinitionId"))
            .replace("${", "")
            .replace("}", "")
        )
        if role != wanted_role:
            problems.append(
                f"{grant}: roleDefinitionId {role} is not the built-in Data Contributor"
            )
        if render(grant.properties.get("scope")) != f"{account.symbol}.id":
            problems.append(f"{grant}: scope must be the whole account ({account.symbol}.id)")
        if render(grant.body.get("parent")) != account.symbol:
            problems.append(f"{grant}: parent must be {account.symbol}")
        principal = render(grant.properties.get("principalId"))
        if grant.condition is None and principal in cosmos_file.parameters:
            app_grants.append(principal)
    if len(app_grants) != 1:
        problems.append(
            f"cosmos.bicep: expected one unconditional data-role grant, found {app_grants}"
        )
        return problems
    ids = identity_expressions(project, problems)
    module = single_module(project, "modules/cosmos.bicep", problems)
    if module is not None and ids:
        passed = render(module.params.get(app_grants[0]))
        if passed != ids["principalId"]:
            problems.append(
                f"{module}: {app_grants[0]} is {passed}, must be the app identity "
                f"({ids['principalId']})"
            )
    return problems


def monitoring_problems(project: Project) -> list[str]:
    problems: list[str] = []
    components = project.all_resources(APP_INSIGHTS)
    workspaces = project.all_resources(LOG_ANALYTICS)
    if len(components) != 1 or len(workspaces) != 1:
        found = [str(r) for r in [*components, *workspaces]]
        return [f"expected one Application Insights and one Log Analytics, found {found}"]
    insights, workspace = components[0], workspaces[0]
    if insights.properties.get("DisableLocalAuth") is not True:
        problems.append(f"{insights}: DisableLocalAuth must be true (Entra-only ingestion)")
    if workspace.properties.get("features", {}).get("disableLocalAuth") is not True:
        problems.append(f"{workspace}: features.disableLocalAuth must be true")
    if render(insights.properties.get("WorkspaceResourceId")) != f"{workspace.symbol}.id":
        problems.append(f"{insights}: must be workspace-based on {workspace.symbol}")
    return problems


def rbac_problems(project: Project) -> list[str]:
    problems: list[str] = []
    rbac = project.file("modules/rbac.bicep")
    grants = rbac.resources(ROLE_ASSIGNMENTS, existing=False)
    found: dict[str, int] = {}
    for grant in grants:
        props = grant.properties
        role = expr(rbac, props.get("roleDefinitionId"))
        match = re.fullmatch(
            r"subscription_resource_id\(Microsoft\.Authorization/roleDefinitions, (.+)\)", role
        )
        role_id = match.group(1) if match else role
        found[role_id] = found.get(role_id, 0) + 1
        if role_id not in EXPECTED_ROLES:
            problems.append(f"{grant}: unexpected role {role}")
            continue
        scope_type = rbac.symbol_type(render(grant.body.get("scope")))
        if (scope_type or "").lower() != EXPECTED_ROLES[role_id].lower():
            problems.append(
                f"{grant}: role {role_id} must be scoped to the {EXPECTED_ROLES[role_id]}"
            )
        if render(props.get("principalId")) != "principalId":
            problems.append(f"{grant}: principalId must be the module's principalId parameter")
        if render(props.get("principalType")) != "principalType":
            problems.append(f"{grant}: principalType must be the module's principalType parameter")
        name = expr(rbac, grant.body.get("name"))
        if not (name.startswith("guid(") and "principalId" in name and role_id in name):
            problems.append(
                f"{grant}: name {name} must be guid(scope, principalId, role) to stay unique"
            )
        if grant.condition is not None or grant.is_loop:
            problems.append(f"{grant}: must not be conditional")
    for role_id in EXPECTED_ROLES:
        if found.get(role_id) != 1:
            problems.append(
                f"rbac.bicep: role {role_id} assigned {found.get(role_id, 0)} times, expected once"
            )

    # main.bicep grants these roles to the app identity (always) and to the deploying user (if set).
    ids = identity_expressions(project, problems)
    storage_name = module_output(project, "modules/storage.bicep", "name", problems)
    insights_name = module_output(
        project, "modules/monitoring.bicep", "applicationInsightsName", problems
    )
    vault_name = module_output(project, "modules/key-vault.bicep", "name", problems)
    app, user = [], []
    for module in project.modules_of("modules/rbac.bicep"):
        params = {k: render(v) for k, v in module.params.items()}
        if params.get("storageAccountName") != storage_name:
            problems.append(f"{module}: storageAccountName must be {storage_name}")
        if params.get("applicationInsightsName") != insights_name:
            problems.append(f"{module}: applicationInsightsName must be {insights_name}")
        if params.get("keyVaultName") != vault_name:
            problems.append(f"{module}: keyVaultName must be {vault_name}")
        if module.condition is None:
            app.append(module)
            if ids and params.get("principalId") != ids["principalId"]:
                problems.append(
                    f"{module}: principalId must be the app identity ({ids['principalId']})"
                )
            if params.get("principalType") != "ServicePrincipal":
                problems.append(f"{module}: a managed identity's principalType is ServicePrincipal")
        else:
            user.append(module)
            if render(module.condition) != "!empty(principalId)":
                problems.append(f"{module}: must be deployed only if principalId is set")
            if (
                params.get("principalId") != "principalId"
                or params.get("principalType") != "principalType"
            ):
                problems.append(f"{module}: must grant the principalId/principalType parameters")
    if len(app) != 1:
        problems.append(
            f"main.bicep: expected one unconditional rbac module for the app, found {len(app)}"
        )
    if len(user) > 1:
        problems.append("main.bicep: more than one rbac module for the deploying user")
    return problems


def is_secure(declaration: dict[str, Any]) -> bool:
    return any(d.get("type") == "secure" for d in declaration.get("decorators", []))


def parameters_document() -> dict[str, Any]:
    return cast(dict[str, Any], json.loads(PARAMETERS_FILE.read_text(encoding="utf-8")))


def key_vault_problems(project: Project, parameters: dict[str, Any] | None = None) -> list[str]:
    """The vault, the payload key and the fingerprint secret, and how azd keeps that secret."""
    parameters = parameters_document() if parameters is None else parameters
    problems: list[str] = []
    kv_file = project.file("modules/key-vault.bicep")
    vaults = project.all_resources(KEY_VAULTS)
    keys = project.all_resources(KEY_VAULT_KEYS)
    stored = project.all_resources(KEY_VAULT_SECRETS)
    if len(vaults) != 1 or vaults[0].file is not kv_file:
        return [f"expected one Key Vault in key-vault.bicep, found {[str(v) for v in vaults]}"]
    if len(keys) != 1 or len(stored) != 2:
        found = [str(r) for r in [*keys, *stored]]
        return [f"expected one Key Vault key and two secrets, found {found}"]
    vault, key = vaults[0], keys[0]
    by_name = {expr(kv_file, child.body.get("name")): child for child in stored}
    secret = by_name.get(FINGERPRINT_SECRET_NAME, stored[0])
    signing = by_name.get(SIGNING_SECRET_NAME)
    if signing is None or signing is secret:
        problems.append(f"key-vault.bicep: a secret must be named {SIGNING_SECRET_NAME}")
    else:
        problems += signing_value_problems(project, kv_file, signing, parameters)

    props = vault.properties
    required = {
        "enableRbacAuthorization": True,  # Azure RBAC decides data access, not access policies
        "enableSoftDelete": True,
        "enablePurgeProtection": True,
    }
    for name, value in required.items():
        if props.get(name) is not value:
            problems.append(f"{vault}: {name} must be {render(value)}")
    if props.get("accessPolicies", []) != []:
        problems.append(f"{vault}: no access policies (RBAC authorization only)")
    retention = props.get("softDeleteRetentionInDays")
    if not isinstance(retention, int) or not 7 <= retention <= 90:
        problems.append(f"{vault}: softDeleteRetentionInDays must be 7 to 90, not {retention}")
    if render(props.get("tenantId")) != "tenant().tenantId":
        problems.append(f"{vault}: tenantId must be tenant().tenantId")
    for name in (
        "enabledForDeployment",
        "enabledForDiskEncryption",
        "enabledForTemplateDeployment",
    ):
        if props.get(name, False) is not False:
            problems.append(f"{vault}: {name} must be false (nothing but the app reads it)")

    for child in (key, *stored):
        if render(child.body.get("parent")) != vault.symbol:
            problems.append(f"{child}: parent must be {vault.symbol}")
    key_props = key.properties
    if key_props.get("kty") not in {"RSA", "RSA-HSM"}:
        problems.append(f"{key}: kty must be RSA, not {render(key_props.get('kty'))}")
    if key_props.get("keySize") not in {2048, 3072}:
        problems.append(f"{key}: keySize must be 2048 or 3072, not {key_props.get('keySize')}")
    if sorted(key_props.get("keyOps", [])) != ["unwrapKey", "wrapKey"]:
        problems.append(f"{key}: keyOps must be exactly wrapKey and unwrapKey")

    secret_name = expr(kv_file, secret.body.get("name"))
    if secret_name != FINGERPRINT_SECRET_NAME:
        problems.append(f"{secret}: name must be {FINGERPRINT_SECRET_NAME}, not {secret_name}")
    problems += fingerprint_value_problems(project, kv_file, secret, parameters)

    outputs = {name: render(value) for name, value in kv_file.outputs.items()}
    wanted = {
        "name": f"{vault.symbol}.name",
        "uri": f"{vault.symbol}.properties.vaultUri",
        # Versionless: new payloads are sealed under the current version, and the Key Vault
        # reference follows the secret's current version.
        "keyUri": f"{key.symbol}.properties.keyUri",
        "fingerprintSecretUri": f"{secret.symbol}.properties.secretUri",
    }
    if signing is not None:
        wanted["signingSecretUri"] = f"{signing.symbol}.properties.secretUri"
    for output, expression in wanted.items():
        if outputs.get(output) != expression:
            problems.append(
                f"key-vault.bicep: output {output} is {outputs.get(output)}, not {expression}"
            )

    module = single_module(project, "modules/key-vault.bicep", problems)
    if module is not None:
        if module.condition is not None:
            problems.append("main.bicep: the key-vault module must not be conditional")
        main_outputs = {name: render(value) for name, value in project.main.outputs.items()}
        # azd stores this output in the environment; main.parameters.json reads it next run.
        if main_outputs.get("AZURE_KEY_VAULT_NAME") != f"{module.symbol}.outputs.name":
            problems.append(
                f"main.bicep: output AZURE_KEY_VAULT_NAME must be {module.symbol}.outputs.name"
            )
    return problems


def fingerprint_value_problems(
    project: Project, kv_file: BicepFile, secret: Resource, parameters: dict[str, Any]
) -> list[str]:
    """The fingerprint secret stays the same across `azd up` runs, and is base64 from the start.

    azd passes `$(secretOrRandomPassword <vault> <secret>)`: the secret's current value, or on
    the first run a 15-character password. The secret's value must hand a stored key back
    unchanged and turn the password into base64, telling them apart by length.
    """
    problems: list[str] = []
    value = secret.properties.get("value")
    if isinstance(value, str) and value in kv_file.variables:
        value = kv_file.variables[value]
    secure = [name for name, p in kv_file.parameters.items() if is_secure(p)]
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    operands = operator.get("operands", {})
    condition = render(operands.get("condition"))
    stored = render(operands.get("true_value"))
    match = re.fullmatch(r"greater_than_or_equals\(length\((\w+)\), (\d+)\)", condition)
    if operator.get("type") != "conditional" or not match:
        return [f"{secret}: value must be `(length(param) >= N) ? param : base64(...)`"]
    param, threshold = match.group(1), int(match.group(2))
    if param not in secure or stored != param:
        problems.append(f"{secret}: a stored key ({param}) must be written back unchanged")
    if threshold != FINGERPRINT_STORED_MIN_CHARS:
        problems.append(
            f"{secret}: a stored key is >= {FINGERPRINT_STORED_MIN_CHARS} characters "
            f"(base64 of 32 bytes), not >= {threshold}"
        )
    fresh = render(operands.get("false_value"))
    entropy = [name for name in secure if name != param and f"${{{name}}}" in fresh]
    if not fresh.startswith("base64(") or f"${{{param}}}" not in fresh:
        problems.append(f"{secret}: a first-run password must become base64 of itself and more")
    for name in entropy:
        default = render(kv_file.parameters[name].get("default"))
        if default != "new_guid()" or f"${{{name}}}" not in fresh:
            problems.append(f"{secret}: {name} must be a fresh newGuid() in the new key")
    if len(entropy) < 2:
        problems.append(f"{secret}: a new key needs two newGuid() values besides azd's password")

    # main.bicep passes its own @secure() parameter through, fed by main.parameters.json.
    module = single_module(project, "modules/key-vault.bicep", problems)
    if module is None:
        return problems
    passed = render(module.params.get(param))
    main_param = project.main.parameters.get(passed)
    if main_param is None or not is_secure(main_param):
        problems.append(f"{module}: {param} must be a @secure() parameter of main.bicep")
    fed = parameters["parameters"].get(passed, {}).get("value")
    if fed != FINGERPRINT_PARAMETER:
        problems.append(
            f"main.parameters.json: {passed} must be {FINGERPRINT_PARAMETER!r} (the secret's "
            f"own name, so that azd finds it), not {fed!r}"
        )
    return problems


def signing_value_problems(
    project: Project, kv_file: BicepFile, secret: Resource, parameters: dict[str, Any]
) -> list[str]:
    """The signing secrets stay the same across `azd up` runs (a stored value starts with
    `whsec_`, so rotation lists are kept too), and azd's first-run password becomes a
    `whsec_` key with two fresh GUIDs of its own."""
    problems: list[str] = []
    value = secret.properties.get("value")
    if isinstance(value, str) and value in kv_file.variables:
        value = kv_file.variables[value]
    secure = [name for name, p in kv_file.parameters.items() if is_secure(p)]
    operator = value.get("operator", {}) if isinstance(value, dict) else {}
    operands = operator.get("operands", {})
    condition = render(operands.get("condition"))
    match = re.fullmatch(r"starts_with\((\w+), whsec_\)", condition)
    if operator.get("type") != "conditional" or not match:
        return [f"{secret}: value must be `startsWith(param, 'whsec_') ? param : 'whsec_...'`"]
    param = match.group(1)
    if param not in secure or render(operands.get("true_value")) != param:
        problems.append(f"{secret}: a stored value ({param}) must be written back unchanged")
    fresh = render(operands.get("false_value"))
    if not fresh.startswith("whsec_${base64(") or f"${{{param}}}" not in fresh:
        problems.append(f"{secret}: a first-run password must become whsec_ + base64 of it")
    entropy = [name for name in secure if name != param and f"${{{name}}}" in fresh]
    fingerprint_entropy = {
        name
        for name in secure
        if f"${{{name}}}" in render(kv_file.variables.get("fingerprintKeyValue"))
    }
    if len(entropy) < 2 or fingerprint_entropy & set(entropy):
        problems.append(f"{secret}: a new secret needs two newGuid() values of its own")
    for name in entropy:
        if render(kv_file.parameters[name].get("default")) != "new_guid()":
            problems.append(f"{secret}: {name} must be a fresh newGuid()")
    module = single_module(project, "modules/key-vault.bicep", problems)
    if module is None:
        return problems
    passed = render(module.params.get(param))
    main_param = project.main.parameters.get(passed)
    if main_param is None or not is_secure(main_param):
        problems.append(f"{module}: {param} must be a @secure() parameter of main.bicep")
    fed = parameters["parameters"].get(passed, {}).get("value")
    if fed != SIGNING_PARAMETER:
        problems.append(f"main.parameters.json: {passed} must be {SIGNING_PARAMETER!r}")
    return problems


def site_hardening_problems(site_file: BicepFile, site: Resource) -> list[str]:
    """TLS 1.3 only, no FTP, no basic (password) authentication to the publishing endpoints."""
    problems: list[str] = []
    config = site.properties.get("siteConfig", {})
    required = {"minTlsVersion": "1.3", "scmMinTlsVersion": "1.3", "ftpsState": "Disabled"}
    for name, value in required.items():
        if config.get(name) != value:
            problems.append(f"{site}: siteConfig.{name} is {config.get(name)}, must be {value}")
    policies: dict[str, Any] = {}
    for policy in site_file.resources(PUBLISHING_CREDENTIALS, existing=False):
        name = str(policy.body.get("name"))
        if render(policy.body.get("parent")) != site.symbol or policy.condition is not None:
            problems.append(f"{policy}: must belong to {site.symbol}, unconditionally")
        policies[name] = policy.properties.get("allow")
    for name in ("ftp", "scm"):
        if policies.get(name) is not False:
            problems.append(
                f"{site}: basicPublishingCredentialsPolicies '{name}' must exist with allow: false"
            )
    return problems


def key_vault_setting_problems(
    project: Project, site_file: BicepFile, settings: dict[str, Any], problems: list[str]
) -> set[str]:
    """SEALING_KEY_VAULT_KEY_URL and REQUEST_FINGERPRINT_KEY come from the Key Vault module.

    Returns the names checked, which are therefore no secrets despite their names.
    """
    site = site_file.only_resource(SITES)
    module = single_module(project, "modules/function-app.bicep", problems)
    vault = single_module(project, "modules/key-vault.bicep", problems)
    if module is None or vault is None:
        return set()
    # setting -> (its value, with {} for the module parameter; the Key Vault output it carries)
    wiring = {
        "SEALING_KEY_VAULT_KEY_URL": ("{}", "keyUri"),
        "REQUEST_FINGERPRINT_KEY": (
            "@Microsoft.KeyVault(SecretUri=${{{}}})",
            "fingerprintSecretUri",
        ),
        "WEBHOOK_SIGNING_SECRETS": (
            "@Microsoft.KeyVault(SecretUri=${{{}}})",
            "signingSecretUri",
        ),
    }
    for name, (form, output) in wiring.items():
        value = render(settings.get(name))
        params = [p for p in site_file.parameters if value == form.format(p)]
        if name not in settings or not params:
            problems.append(f"{site}: app setting {name} must be {form.format('<parameter>')}")
            continue
        passed = render(module.params.get(params[0]))
        if passed != f"{vault.symbol}.outputs.{output}":
            problems.append(
                f"{module}: {params[0]} is {passed}, not {vault.symbol}.outputs.{output}"
            )
    return set(wiring)


def function_app_problems(project: Project) -> list[str]:
    problems: list[str] = []
    site_file = project.file("modules/function-app.bicep")
    plan = site_file.only_resource(SERVER_FARMS)
    site = site_file.only_resource(SITES)
    if plan.body.get("sku") != {"name": "FC1", "tier": "FlexConsumption"}:
        problems.append(
            f"{plan}: sku must be FC1 / FlexConsumption, not {render(plan.body.get('sku'))}"
        )
    if plan.properties.get("reserved") is not True:
        problems.append(f"{plan}: reserved must be true (Linux)")
    kind = str(site.body.get("kind", ""))
    if set(kind.split(",")) != {"functionapp", "linux"}:
        problems.append(f"{site}: kind must be functionapp,linux, not {kind}")
    if render(site.properties.get("serverFarmId")) != f"{plan.symbol}.id":
        problems.append(f"{site}: serverFarmId must be {plan.symbol}.id")
    if site.properties.get("httpsOnly") is not True:
        problems.append(f"{site}: httpsOnly must be true")
    problems += site_hardening_problems(site_file, site)

    config = site.properties.get("functionAppConfig", {})
    runtime = config.get("runtime", {})
    if runtime != {"name": "python", "version": "3.11"}:
        problems.append(
            f"{site}: functionAppConfig.runtime must be python 3.11, not {render(runtime)}"
        )

    # The identity the app runs as is the one main.bicep created.
    identities = site_file.resources(USER_ASSIGNED_IDENTITIES, existing=True)
    storages = site_file.resources(STORAGE_ACCOUNTS, existing=True)
    insights = site_file.resources(APP_INSIGHTS, existing=True)
    if len(identities) != 1 or len(storages) != 1 or len(insights) != 1:
        return [
            *problems,
            f"{site_file.name}: expected one existing identity, storage account, App Insights",
        ]
    uai, storage, appi = identities[0], storages[0], insights[0]
    ids = identity_expressions(project, problems)
    module = single_module(project, "modules/function-app.bicep", problems)
    if module is not None and ids:
        identity_param = render(uai.body.get("name"))
        if render(module.params.get(identity_param)) != ids["name"]:
            problems.append(f"{module}: {identity_param} must be {ids['name']} (the app identity)")
        storage_param = render(storage.body.get("name"))
        storage_name = module_output(project, "modules/storage.bicep", "name", problems)
        if render(module.params.get(storage_param)) != storage_name:
            problems.append(f"{module}: {storage_param} must be {storage_name}")

    identity = site.body.get("identity", {})
    assigned = [unquote(k) for k in identity.get("userAssignedIdentities", {})]
    if identity.get("type") != "UserAssigned" or assigned != [f"${{{uai.symbol}.id}}"]:
        problems.append(f"{site}: must run as (only) the user-assigned identity {uai.symbol}")
    # Without it the platform resolves Key Vault references as a system-assigned identity,
    # which this app does not have.
    if render(site.properties.get("keyVaultReferenceIdentity")) != f"{uai.symbol}.id":
        problems.append(f"{site}: keyVaultReferenceIdentity must be {uai.symbol}.id")

    package = config.get("deployment", {}).get("storage", {})
    auth = package.get("authentication", {})
    if package.get("type") != "blobContainer":
        problems.append(f"{site}: functionAppConfig.deployment.storage.type must be blobContainer")
    if not str(package.get("value", "")).startswith(
        f"${{{storage.symbol}.properties.primaryEndpoints.blob}}"
    ):
        problems.append(f"{site}: the package container must be in the app's storage account")
    if auth.get("type") != "UserAssignedIdentity" or render(
        auth.get("userAssignedIdentityResourceId")
    ) != (f"{uai.symbol}.id"):
        problems.append(f"{site}: the package must be read with the user-assigned identity")

    tags = [node for node in walk(site.body.get("tags")) if isinstance(node, dict)]
    if not any(unquote(k) == "azd-service-name" and v == "api" for t in tags for k, v in t.items()):
        problems.append(f"{site}: needs the tag azd-service-name: api (azd deploys to it)")

    settings = app_settings(site_file, problems)
    client_id = f"{uai.symbol}.properties.clientId"
    endpoints = f"{storage.symbol}.properties.primaryEndpoints"
    expected = {
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": client_id,
        "AzureWebJobsStorage__blobServiceUri": f"{endpoints}.blob",
        "AzureWebJobsStorage__queueServiceUri": f"{endpoints}.queue",
        "AzureWebJobsStorage__tableServiceUri": f"{endpoints}.table",
        "APPLICATIONINSIGHTS_CONNECTION_STRING": f"{appi.symbol}.properties.ConnectionString",
        "APPLICATIONINSIGHTS_AUTHENTICATION_STRING": f"ClientId=${{{client_id}}};Authorization=AAD",
        "AZURE_CLIENT_ID": client_id,
    }
    for name, value in expected.items():
        if name not in settings:
            problems.append(f"{site}: app setting {name} is missing")
        elif render(settings[name]).lower() != value.lower():
            problems.append(
                f"{site}: app setting {name} is {render(settings[name])}, must be {value}"
            )

    # The Key Vault key's address and a reference to the secret: named like secrets, checked
    # here to be neither.
    key_vault_settings = key_vault_setting_problems(project, site_file, settings, problems)

    forbidden = {n.lower() for n in FORBIDDEN_APP_SETTINGS}
    fields = {name.upper() for name in SchedulerSettings.model_fields}
    for name in settings:
        if name.lower() in forbidden:
            problems.append(
                f"{site}: app setting {name} must not be set (Flex Consumption / no keys)"
            )
        elif name not in expected and name not in fields:
            problems.append(
                f"{site}: app setting {name} is neither a platform setting nor a scheduler setting"
            )
        elif name not in expected and name not in key_vault_settings and SECRET_WORDS.search(name):
            problems.append(f"{site}: app setting {name} looks like a secret")

    # The job log, by identity: endpoint and names come from the Cosmos module.
    cosmos = single_module(project, "modules/cosmos.bicep", problems)
    if module is not None and cosmos is not None:
        wiring = {
            "COSMOS_ENDPOINT": f"{cosmos.symbol}.outputs.endpoint",
            "COSMOS_DATABASE": render(cosmos.params.get("databaseName")),
            "COSMOS_CONTAINER": render(cosmos.params.get("containerName")),
        }
        for name, wanted in wiring.items():
            param = render(settings.get(name))
            if name not in settings or param not in site_file.parameters:
                problems.append(f"{site}: app setting {name} must come from a module parameter")
            elif render(module.params.get(param)) != wanted:
                problems.append(
                    f"{module}: {param} is {render(module.params.get(param))}, must be {wanted}"
                )
        cosmos_file = project.file("modules/cosmos.bicep")
        account = cosmos_file.only_resource(COSMOS_ACCOUNTS).symbol
        if render(cosmos_file.outputs.get("endpoint")) != f"{account}.properties.documentEndpoint":
            problems.append("cosmos.bicep: output endpoint must be the account's documentEndpoint")

    # The scheduler's settings, as strings, at the defaults of scheduling/settings.py.
    values: dict[str, str] = {}
    for name in SCHEDULER_APP_SETTINGS:
        raw = settings.get(name)
        if not isinstance(raw, str):
            problems.append(
                f"{site}: app setting {name} must be a string literal, is {render(raw)}"
            )
        else:
            values[name.lower()] = raw
    parsed = SchedulerSettings.model_validate(values)
    for field in values:
        default = SchedulerSettings.model_fields[field].default
        if getattr(parsed, field) != default:
            problems.append(
                f"{site}: app setting {field.upper()}={values[field]!r} differs from the default"
            )
    return problems


def durable_backend_problems(project: Project) -> list[str]:
    """DURABLE_BACKEND picks one of two deployments. `storage` (the default) has no Durable Task
    Scheduler resource, role or setting; `dts` adds the scheduler and its task hub, grants the
    app identity Durable Task Data Contributor on the scheduler, and sets the two app settings
    the extension reads; everything else is the same in both."""
    problems: list[str] = []
    main = project.main
    declared = main.parameters.get("durableBackend", {})
    allowed = [d.get("argument") for d in declared.get("decorators", []) if d["type"] == "allowed"]
    if allowed != [list(BACKENDS)] or declared.get("default") != "storage":
        problems.append("main.bicep: durableBackend must allow storage and dts, default storage")
    dts_file = project.file("modules/durable-task-scheduler.bicep")
    dts_modules = project.modules_of("modules/durable-task-scheduler.bicep")
    if len(dts_modules) != 1:
        return [*problems, "main.bicep must deploy durable-task-scheduler.bicep once"]
    dts_module = dts_modules[0]
    site_module = single_module(project, "modules/function-app.bicep", problems)
    ids = identity_expressions(project, problems)
    site_file = project.file("modules/function-app.bicep")
    identities = site_file.resources(USER_ASSIGNED_IDENTITIES, existing=True)
    client_id = f"{identities[0].symbol}.properties.clientId" if identities else "<identity>"

    for backend in BACKENDS:
        values = {"durableBackend": backend}
        wants_dts = backend == "dts"
        where = f"DURABLE_BACKEND={backend}"
        # Which files holding Durable Task resources this deployment runs.
        for module in main.modules():
            holds_dts = any(
                r.type.lower().startswith("microsoft.durabletask/")
                for r in project.module_file(module).resources()
            )
            if holds_dts and main.deployed(module.condition, values) != wants_dts:
                problems.append(f"{where}: {module} deployed = {not wants_dts}")
        if main.resources("Microsoft.DurableTask/schedulers") or any(
            r.type.lower().startswith("microsoft.durabletask/") for r in site_file.resources()
        ):
            problems.append("Durable Task resources belong in durable-task-scheduler.bicep only")
        settings = app_settings(site_file, problems, backend)
        present = [name for name in DTS_APP_SETTINGS if name in settings]
        if present != (list(DTS_APP_SETTINGS) if wants_dts else []):
            problems.append(f"{where}: the Durable Task Scheduler settings set are {present}")
        if site_module is None:
            continue
        passed = {k: evaluate(main, v, values) for k, v in site_module.params.items()}
        if render(site_module.params.get("durableBackend")) != "durableBackend":
            problems.append(f"{site_module}: durableBackend must be main's durableBackend")
        endpoint = render(passed.get("durableTaskSchedulerEndpoint"))
        wanted = f"{dts_module.symbol}.outputs.endpoint" if wants_dts else ""
        if endpoint != wanted:
            problems.append(
                f"{where}: the app's scheduler endpoint is {endpoint!r}, not {wanted!r}"
            )
        if not wants_dts:
            continue
        connection = render(settings.get(DTS_CONNECTION_SETTING))
        expected = (
            "Endpoint=${durableTaskSchedulerEndpoint};Authentication=ManagedIdentity;"
            f"ClientID=${{{client_id}}}"
        )
        if connection != expected:
            problems.append(f"{where}: {DTS_CONNECTION_SETTING} is {connection}, not {expected}")
        hub = evaluate(main, site_module.params.get("durableTaskHubName"), values)
        if render(settings.get(DTS_TASK_HUB_SETTING)) != "durableTaskHubName" or hub != evaluate(
            main, dts_module.params.get("taskHubName"), values
        ):
            problems.append(f"{where}: {DTS_TASK_HUB_SETTING} must name the task hub created")

    # The scheduler module itself: what it creates and whom it lets in.
    schedulers = dts_file.resources(DURABLE_TASK_SCHEDULERS, existing=False)
    hubs = dts_file.resources(DURABLE_TASK_HUBS, existing=False)
    if len(schedulers) != 1 or len(hubs) != 1:
        return [*problems, "durable-task-scheduler.bicep: expected one scheduler, one task hub"]
    scheduler, hub = schedulers[0], hubs[0]
    for resource in (scheduler, hub):
        if resource.api_version != DURABLE_TASK_API_VERSION:
            problems.append(f"{resource}: API version {resource.api_version}")
    if render(hub.body.get("parent")) != scheduler.symbol or render(hub.body.get("name")) != (
        "taskHubName"
    ):
        problems.append(f"{hub}: must be the scheduler's hub named by taskHubName")
    if not scheduler.properties.get("ipAllowlist"):
        problems.append(f"{scheduler}: an empty ipAllowlist refuses every caller")
    if render(dts_file.outputs.get("endpoint")) != f"{scheduler.symbol}.properties.endpoint":
        problems.append("durable-task-scheduler.bicep: output endpoint must be the scheduler's")
    if render(dts_file.outputs.get("taskHubName")) != f"{hub.symbol}.name":
        problems.append("durable-task-scheduler.bicep: output taskHubName must be the hub's name")
    app_grants = []
    for grant in dts_file.resources(ROLE_ASSIGNMENTS, existing=False):
        role = expr(dts_file, grant.properties.get("roleDefinitionId"))
        if role != (
            "subscription_resource_id(Microsoft.Authorization/roleDefinitions, "
            f"{DURABLE_TASK_DATA_CONTRIBUTOR})"
        ):
            problems.append(f"{grant}: role {role}, not Durable Task Data Contributor")
        if render(grant.body.get("scope")) != scheduler.symbol:
            problems.append(f"{grant}: must be scoped to the scheduler")
        if render(grant.properties.get("principalId")) == "appPrincipalId":
            app_grants.append(grant)
            if grant.condition is not None or grant.properties.get("principalType") != (
                "ServicePrincipal"
            ):
                problems.append(f"{grant}: the app identity's grant must be unconditional")
    if len(app_grants) != 1:
        problems.append("durable-task-scheduler.bicep: grant the app identity the role once")
    if ids and render(dts_module.params.get("appPrincipalId")) != ids["principalId"]:
        problems.append(f"{dts_module}: appPrincipalId must be the app identity")
    # DURABLE_TASK_SCHEDULER_SKU reaches the scheduler's sku.
    if (
        render(dts_module.params.get("skuName")) != "durableTaskSchedulerSku"
        or render(scheduler.properties.get("sku")) != "{name: skuName}"
    ):
        problems.append("the scheduler's sku must be main's durableTaskSchedulerSku")
    return problems


def secret_problems(project: Project) -> list[str]:
    """No key, SAS or key-based connection string is built, read, passed or output anywhere."""
    problems: list[str] = []
    for bicep in project.files.values():
        for node in walk(bicep.tree):
            if isinstance(node, str) and SECRET_TEXT.search(node):
                problems.append(f"{bicep.name}: {node!r} builds or reads a key")
            if (
                isinstance(node, dict)
                and "function" in node
                and node["function"].get("type") == "list_func"
            ):
                problems.append(f"{bicep.name}: {render(node)} reads keys")
            if isinstance(node, dict) and "operator" in node:
                operands = node["operator"].get("operands", {})
                if str(operands.get("func_name", "")).lower().startswith("list"):
                    problems.append(f"{bicep.name}: {render(node)} reads keys")
        addresses = key_vault_addresses(project, bicep)
        for name, output in bicep.tree.get("outputs", {}).items():
            value = render(output["value"])
            if any(d.get("type") == "secure" for d in output.get("decorators", [])):
                problems.append(f"{bicep.name}: @secure() output {name}")
            if (SECRET_WORDS.search(name) and value not in addresses) or re.search(
                r"connectionstring|instrumentationkey", value, re.I
            ):
                problems.append(f"{bicep.name}: output {name} = {value} looks like a secret")
    return problems + secure_value_problems(project)


def key_vault_addresses(project: Project, bicep: BicepFile) -> set[str]:
    """Expressions in `bicep` that are a Key Vault object's name or URI: named like secrets,
    but addresses (what is at the address is guarded by Key Vault roles)."""
    kv_file = project.file("modules/key-vault.bicep")
    types = {t.lower() for t in (KEY_VAULTS, KEY_VAULT_KEYS, KEY_VAULT_SECRETS)}
    symbols = "|".join(r.symbol for r in kv_file.resources() if r.type.lower() in types)
    address = re.compile(rf"(?:{symbols})\.(?:name|properties\.(?:vaultUri|keyUri|secretUri))")
    outputs = [n for n, v in kv_file.outputs.items() if symbols and address.fullmatch(render(v))]
    if bicep is kv_file:
        return {render(kv_file.outputs[n]) for n in outputs}
    modules = [m for m in bicep.modules() if m.path == kv_file.path]
    return {f"{m.symbol}.outputs.{n}" for m in modules for n in outputs}


_INTERPOLATED = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def references(node: Any, names: set[str]) -> bool:
    """Whether an expression tree mentions any of `names` (as an identifier or in ${...})."""
    for item in walk(node):
        if not isinstance(item, str):
            continue
        if item in names:
            return True
        for inner in _INTERPOLATED.findall(item):
            if names & set(_IDENTIFIER.findall(inner)):
                return True
    return False


def secure_value_problems(project: Project) -> list[str]:
    """A @secure() value (and any variable computed from one) goes only into a Key Vault
    secret's value, or on to a module's @secure() parameter: never into an app setting, a
    tag, a name or an output, which deployments and the portal show in clear."""
    problems: list[str] = []
    for bicep in project.files.values():
        tainted = {name for name, p in bicep.parameters.items() if is_secure(p)}
        grown = True
        while grown:
            grown = False
            for name, value in bicep.variables.items():
                if name not in tainted and references(value, tainted):
                    tainted.add(name)
                    grown = True
        if not tainted:
            continue
        for resource in bicep.resources():
            body = dict(resource.body)
            if resource.type.lower() == KEY_VAULT_SECRETS.lower():
                body["properties"] = {k: v for k, v in resource.properties.items() if k != "value"}
            if references(body, tainted) or references(resource.condition, tainted):
                problems.append(f"{resource}: uses a @secure() value outside a secret's value")
        for module in bicep.modules():
            target = project.files.get(module.path)
            for name, value in module.params.items():
                declared = target.parameters.get(name) if target else None
                if references(value, tainted) and (declared is None or not is_secure(declared)):
                    problems.append(f"{module}: passes a @secure() value to {name}, not @secure()")
            rest = {k: v for k, v in module.body.items() if k != "params"}
            if references(rest, tainted) or references(module.condition, tainted):
                problems.append(f"{module}: uses a @secure() value outside its params")
        for name, value in bicep.outputs.items():
            if references(value, tainted):
                problems.append(f"{bicep.name}: output {name} carries a @secure() value")
    return problems


def wiring_problems(project: Project) -> list[str]:
    """Module calls match the modules' parameters (what a Bicep compiler would check)."""
    problems: list[str] = []
    used = {MAIN_BICEP}
    for bicep in project.files.values():
        for module in bicep.modules():
            if module.path not in project.files:
                problems.append(f"{module}: file does not exist")
                continue
            used.add(module.path)
            declared = project.module_file(module).parameters
            required = {name for name, p in declared.items() if p.get("default") is None}
            passed = set(module.params)
            for name in sorted(passed - set(declared)):
                problems.append(f"{module}: passes {name}, which the module does not declare")
            for name in sorted(required - passed):
                problems.append(f"{module}: does not pass required parameter {name}")
            if bicep.path == MAIN_BICEP and render(module.body.get("scope")) != "rg":
                problems.append(f"{module}: must deploy into the resource group rg")
    for path in sorted(set(project.files) - used):
        problems.append(f"{path.relative_to(INFRA_DIR)} is not used by main.bicep")
    return problems


CHECKS: dict[str, Callable[[Project], list[str]]] = {
    "storage": storage_problems,
    "cosmos": cosmos_problems,
    "monitoring": monitoring_problems,
    "key_vault": key_vault_problems,
    "rbac": rbac_problems,
    "function_app": function_app_problems,
    "durable_backend": durable_backend_problems,
    "secrets": secret_problems,
    "wiring": wiring_problems,
}


def all_problems(project: Project) -> list[str]:
    return [problem for check in CHECKS.values() for problem in check(project)]


# --- tests ------------------------------------------------------------------------------------


def test_infra_has_the_expected_files() -> None:
    names = {str(p.relative_to(INFRA_DIR)) for p in bicep_paths()}
    assert "main.bicep" in names
    assert {
        "modules/identity.bicep",
        "modules/storage.bicep",
        "modules/monitoring.bicep",
        "modules/cosmos.bicep",
        "modules/rbac.bicep",
        "modules/function-app.bicep",
        "modules/key-vault.bicep",
        "modules/durable-task-scheduler.bicep",
    } <= names


@pytest.mark.parametrize("path", bicep_paths(), ids=lambda p: str(p.relative_to(INFRA_DIR)))
def test_every_bicep_file_parses(path: Path) -> None:
    tree = parse(path.read_text(encoding="utf-8"))
    assert tree.get("resources") or tree.get("modules"), f"{path} declares nothing"


@pytest.mark.parametrize("name", list(CHECKS))
def test_requirement(project: Project, name: str) -> None:
    problems = CHECKS[name](project)
    assert not problems, "\n".join(problems)


def test_main_is_an_azd_entry_point(project: Project) -> None:
    main = project.main
    assert main.target_scope == "subscription"
    params = main.parameters
    assert {"environmentName", "location", "principalId"} <= set(params)
    assert params["principalId"]["default"] == "", (
        "principalId must be optional (empty = grant nothing)"
    )
    group = main.only_resource("Microsoft.Resources/resourceGroups")
    tags = group.body.get("tags")
    assert render(tags) == "tags"
    assert {unquote(k): v for k, v in main.variables["tags"].items()} == {
        "azd-env-name": "environmentName"
    }

    app = project.modules_of("modules/function-app.bicep")[0]
    outputs = {name: render(value) for name, value in main.outputs.items()}
    assert outputs["FUNCTION_APP_NAME"] == f"{app.symbol}.outputs.name"
    assert outputs["FUNCTION_APP_URL"] == f"{app.symbol}.outputs.url"
    site_file = project.module_file(app)
    site = site_file.only_resource(SITES)
    assert (
        render(site_file.outputs["url"]) == f"https://${{{site.symbol}.properties.defaultHostName}}"
    )
    assert render(site_file.outputs["name"]) == f"{site.symbol}.name"


def test_parameters_file_feeds_main_from_the_azd_environment(project: Project) -> None:
    document = json.loads((INFRA_DIR / "main.parameters.json").read_text(encoding="utf-8"))
    values = {name: entry["value"] for name, entry in document["parameters"].items()}
    assert values["environmentName"] == "${AZURE_ENV_NAME}"
    assert values["location"] == "${AZURE_LOCATION}"
    assert values["principalId"] == "${AZURE_PRINCIPAL_ID}"
    assert values["requestFingerprintKey"] == FINGERPRINT_PARAMETER
    assert values["webhookSigningSecrets"] == SIGNING_PARAMETER
    # `azd env set DURABLE_BACKEND dts` switches the backend; unset, it stays Azure Storage. The
    # package hook compares it with what was provisioned (an output under another name: azd
    # would otherwise overwrite the setting with the last provisioned value).
    assert render(project.main.outputs["DURABLE_BACKEND_PROVISIONED"]) == "durableBackend"
    assert "DURABLE_BACKEND" not in project.main.outputs
    assert values["durableBackend"] == "${DURABLE_BACKEND=storage}"
    assert values["durableTaskSchedulerSku"] == "${DURABLE_TASK_SCHEDULER_SKU=Consumption}"
    declared = project.main.parameters
    assert set(values) <= set(declared), "main.parameters.json sets parameters main.bicep lacks"
    required = {name for name, p in declared.items() if p.get("default") is None}
    assert required <= set(values), (
        "a required parameter of main.bicep is not in main.parameters.json"
    )


def azd_first_run_password() -> str:
    """What azd's `secretOrRandomPassword` makes when the vault holds no secret yet: 5 lower-case
    letters, 5 upper-case letters and 5 digits, shuffled (azd's pkg/password, MinLower/MinUpper/
    MinNumeric 5 and no length, so 15 characters)."""
    picks = [secrets.choice(string.ascii_lowercase) for _ in range(5)]
    picks += [secrets.choice(string.ascii_uppercase) for _ in range(5)]
    picks += [secrets.choice(string.digits) for _ in range(5)]
    secrets.SystemRandom().shuffle(picks)
    return "".join(picks)


def test_the_fingerprint_secret_holds_a_key_the_app_accepts(project: Project) -> None:
    """key-vault.bicep's choice, redone in Python: azd's first-run password is no key for the
    app (REQUEST_FINGERPRINT_KEY wants base64 of >= 32 bytes), the key made from it is, and
    every key the app accepts is long enough to be written back unchanged on the next run."""
    kv_file = project.file("modules/key-vault.bicep")
    condition = render(
        kv_file.variables["fingerprintKeyValue"]["operator"]["operands"]["condition"]
    )
    match = re.fullmatch(r"greater_than_or_equals\(length\(\w+\), (\d+)\)", condition)
    assert match, condition
    stored_min = int(match.group(1))

    password = azd_first_run_password()
    assert len(password) < stored_min  # so the first run makes a key of it
    with pytest.raises(FingerprintKeyMissing):
        fingerprint_key(password)

    # base64('${requestFingerprintKey}${newKeyEntropyA}${newKeyEntropyB}')
    made = base64.b64encode(f"{password}{uuid.uuid4()}{uuid.uuid4()}".encode()).decode()
    assert re.fullmatch(r"[A-Za-z0-9+/]{116}", made)
    assert len(fingerprint_key(made)) == 87
    assert len(made) >= stored_min  # kept from now on

    # The shortest key the app accepts (`openssl rand -base64 32`, a manual rotation) is kept too.
    shortest = base64.b64encode(os.urandom(MIN_FINGERPRINT_KEY_BYTES)).decode()
    assert len(fingerprint_key(shortest)) == MIN_FINGERPRINT_KEY_BYTES
    assert len(shortest) == stored_min


def test_the_fingerprint_parameter_must_name_the_stored_secret(project: Project) -> None:
    """azd looks the secret up by the name main.parameters.json gives; any other name finds
    nothing, so every `azd up` would make a new key (and turn retried requests into 409s)."""
    document = parameters_document()
    assert not key_vault_problems(project, document)
    entry = document["parameters"]["requestFingerprintKey"]
    entry["value"] = entry["value"].replace(FINGERPRINT_SECRET_NAME, "requestFingerprintKey")
    problems = key_vault_problems(project, document)
    assert any("main.parameters.json" in problem for problem in problems), problems


def test_azure_yaml_deploys_the_api_service_as_a_python_function() -> None:
    text = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")
    # No YAML parser in the dev dependencies: read the `api` service block by indentation.
    block = re.search(r"^services:\n  api:\n((?:    .*\n|\s*\n)+)", text, re.MULTILINE)
    assert block, "azure.yaml needs services: api:"
    fields = dict(re.findall(r"^    (\w+): *([^\s#]+)", block.group(1), re.MULTILINE))
    assert fields.get("project") in {".", "./"}
    assert fields.get("language") in {"python", "py"}
    assert fields.get("host") == "function"


def test_deploy_workflow_signs_in_with_oidc_and_stores_no_secret() -> None:
    text = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+id-token: write", text, re.MULTILINE)
    assert "secrets." not in text, (
        "the deploy workflow must use only ids (vars.*), no stored secrets"
    )
    assert "client-secret" not in text
    for name in (
        "AZURE_CLIENT_ID",
        "AZURE_TENANT_ID",
        "AZURE_SUBSCRIPTION_ID",
        "AZURE_ENV_NAME",
        "AZURE_LOCATION",
    ):
        assert f"{name}: ${{{{ vars.{name} }}}}" in text
    assert "--federated-credential-provider github" in text


def test_ci_workflow_runs_the_test_command() -> None:
    text = (REPO_ROOT / ".github" / "workflows" / "ci.yml").read_text(encoding="utf-8")
    assert re.search(r"^\s+run: scripts/test\.sh\s*$", text, re.MULTILINE)
    assert re.search(r"python-version: \"?3\.11\"?", text)
    assert re.search(r"node-version: \"?20\"?", text)
    assert re.search(r"^on:\n(\s+.*\n)*?\s+push:", text, re.MULTILINE)
    assert re.search(r"^on:\n(\s+.*\n)*?\s+pull_request:", text, re.MULTILINE)


# Each edit reintroduces a regression the checks exist for; the check must notice it.
MUTATIONS = [
    # The Durable Task Scheduler variant.
    pytest.param(
        "main.bicep",
        "if (useDurableTaskScheduler) {",
        "{",
        "DURABLE_BACKEND=storage",
        id="dts-scheduler-in-the-storage-variant",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "useDurableTaskScheduler ? durableTaskSchedulerSettings : []",
        "durableTaskSchedulerSettings",
        "DURABLE_BACKEND=storage: the Durable Task Scheduler settings",
        id="dts-settings-in-the-storage-variant",
    ),
    pytest.param(
        "main.bicep",
        "var useDurableTaskScheduler = durableBackend == 'dts'",
        "var useDurableTaskScheduler = durableBackend == 'DTS'",
        "DURABLE_BACKEND=dts",
        id="dts-variant-never-deployed",
    ),
    pytest.param(
        "modules/durable-task-scheduler.bicep",
        "var durableTaskDataContributor = '0ad04412-c4d5-4796-b79c-f76d14c8d402'",
        # Durable Task Worker: cannot start or query orchestrations.
        "var durableTaskDataContributor = '80d0d6b0-f522-40a4-8886-a5a11720c375'",
        "Durable Task Data Contributor",
        id="dts-worker-role-only",
    ),
    pytest.param(
        "main.bicep",
        "appPrincipalId: identity.outputs.principalId",
        "appPrincipalId: principalId",
        "appPrincipalId must be the app identity",
        id="dts-role-for-someone-else",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "Authentication=ManagedIdentity;ClientID=${identity.properties.clientId}",
        "Authentication=ManagedIdentity",
        DTS_CONNECTION_SETTING,
        id="dts-connection-without-the-identity",
    ),
    pytest.param(
        "main.bicep",
        "skuName: durableTaskSchedulerSku",
        "skuName: 'Dedicated'",
        "durableTaskSchedulerSku",
        id="dts-sku-setting-ignored",
    ),
    pytest.param(
        "modules/durable-task-scheduler.bicep",
        "    ipAllowlist: [\n      '0.0.0.0/0'\n    ]",
        "    ipAllowlist: []",
        "ipAllowlist",
        id="dts-allowlist-refuses-everyone",
    ),
    pytest.param(
        "main.bicep",
        "durableTaskSchedulerEndpoint: useDurableTaskScheduler ? "
        "durableTaskScheduler.outputs.endpoint : ''",
        "durableTaskSchedulerEndpoint: ''",
        "scheduler endpoint",
        id="dts-endpoint-not-passed",
    ),
    pytest.param(
        "modules/storage.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeyAccess: true",
        "allowSharedKeyAccess",
        id="storage-shared-keys-on",
    ),
    pytest.param(
        "modules/storage.bicep",
        "allowBlobPublicAccess: false",
        "allowBlobPublicAccess: true",
        "allowBlobPublicAccess",
        id="storage-public-blobs",
    ),
    pytest.param(
        "modules/cosmos.bicep",
        "disableLocalAuth: true",
        "disableLocalAuth: false",
        "disableLocalAuth",
        id="cosmos-key-auth-on",
    ),
    pytest.param(
        "modules/cosmos.bicep",
        "'/transaction_id'",
        "'/id'",
        "partition key",
        id="cosmos-partition-key",
    ),
    pytest.param(
        "modules/cosmos.bicep",
        "principalId: identityPrincipalId",
        "principalId: userPrincipalId",
        "app identity",
        id="cosmos-role-not-for-identity",
    ),
    pytest.param(
        "modules/monitoring.bicep",
        "DisableLocalAuth: true",
        "DisableLocalAuth: false",
        "DisableLocalAuth",
        id="app-insights-key-auth-on",
    ),
    pytest.param(
        "modules/rbac.bicep",
        STORAGE_BLOB_DATA_OWNER,
        # Storage Blob Data Contributor: not enough for the host's leases.
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        STORAGE_BLOB_DATA_OWNER,
        id="rbac-wrong-blob-role",
    ),
    pytest.param(
        "main.bicep",
        "principalId: identity.outputs.principalId\n    principalType: 'ServicePrincipal'",
        "principalId: principalId\n    principalType: 'ServicePrincipal'",
        "app identity",
        id="rbac-granted-to-someone-else",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'FC1'",
        "name: 'Y1'",
        "FC1",
        id="not-flex-consumption",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "version: '3.11'",
        "version: '3.12'",
        "python 3.11",
        id="wrong-python",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'AZURE_CLIENT_ID'",
        "name: 'FUNCTIONS_WORKER_RUNTIME'",
        "FUNCTIONS_WORKER_RUNTIME",
        id="worker-runtime-setting-on-flex",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "value: 'managedidentity'",
        "value: 'DefaultEndpointsProtocol=https;AccountName=${storage.name};"
        "AccountKey=${storage.listKeys().keys[0].value}'",
        "AccountKey",
        id="key-based-connection-string",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'MIN_LEAD_SECONDS'\n    value: '60'",
        "name: 'MIN_LEAD_SECONDS'\n    value: '30'",
        "MIN_LEAD_SECONDS",
        id="scheduler-setting-not-default",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'JOB_TABLE'",
        "name: 'JOB_TABLES'",
        "JOB_TABLES ",
        id="misspelt-scheduler-setting",
    ),
    pytest.param(
        "main.bicep",
        "cosmosEndpoint: cosmos.outputs.endpoint",
        "cosmosEndpoint: cosmos.outputs.endpoint\n    cosmosKey: 'x'",
        "cosmosKey",
        id="module-parameter-typo",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'JOB_TABLE'",
        "name: 'REGISTRY_SHARDS'\n    value: '16'\n  }\n  {\n    name: 'JOB_TABLE'",
        "REGISTRY_SHARDS",
        id="sharded-registry-setting-back",
    ),
    # The Key Vault, its key and the fingerprint secret.
    pytest.param(
        "modules/key-vault.bicep",
        "enableRbacAuthorization: true",
        "enableRbacAuthorization: false",
        "enableRbacAuthorization",
        id="key-vault-access-policies",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "enablePurgeProtection: true",
        "enablePurgeProtection: false",
        "enablePurgeProtection",
        id="key-vault-purgeable",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "keySize: 3072",
        "keySize: 1024",
        "keySize",
        id="key-too-small",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "'unwrapKey'\n",
        "'unwrapKey'\n      'decrypt'\n",
        "keyOps",
        id="key-may-decrypt",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "output keyUri string = sealingKey.properties.keyUri",
        "output keyUri string = sealingKey.properties.keyUriWithVersion",
        "keyUri",
        id="key-url-pinned-to-a-version",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "var fingerprintSecretName = 'request-fingerprint-key'",
        "var fingerprintSecretName = 'fingerprint-key'",
        FINGERPRINT_SECRET_NAME,
        id="fingerprint-secret-renamed",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "? requestFingerprintKey :",
        "? base64(requestFingerprintKey) :",
        "written back unchanged",
        id="fingerprint-key-changes-every-run",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        ">= 44)",
        ">= 10)",
        ">= 44",
        id="fingerprint-password-taken-for-a-key",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "${newKeyEntropyA}${newKeyEntropyB}",
        "${newKeyEntropyA}",
        "two newGuid() values besides azd's password",
        id="fingerprint-key-short-of-entropy",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "contentType: 'base64 of random bytes (HMAC-SHA256 key)'",
        "contentType: fingerprintKeyValue",
        "outside a secret's value",
        id="fingerprint-key-in-clear",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "output name string = vault.name",
        "output name string = vault.name\noutput leaked string = requestFingerprintKey",
        "carries a @secure() value",
        id="fingerprint-key-output",
    ),
    pytest.param(
        "modules/rbac.bicep",
        KEY_VAULT_CRYPTO_USER,
        # Key Vault Crypto Officer: manages keys too; more than the app needs.
        "14b46e9e-c2b7-41b4-b07b-48a6ebf60603",
        KEY_VAULT_CRYPTO_USER,
        id="rbac-wrong-key-vault-role",
    ),
    pytest.param(
        "modules/rbac.bicep",
        "scope: keyVault\n  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)",
        "scope: storage\n  properties: {\n    roleDefinitionId: subscriptionResourceId("
        "'Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)",
        KEY_VAULTS,
        id="rbac-secrets-role-on-storage",
    ),
    pytest.param(
        "main.bicep",
        "sealingKeyUrl: keyVault.outputs.keyUri",
        "sealingKeyUrl: keyVault.outputs.uri",
        "keyVault.outputs.keyUri",
        id="sealing-key-url-is-the-vault",
    ),
    pytest.param(
        "main.bicep",
        "fingerprintSecretUri: keyVault.outputs.fingerprintSecretUri",
        "fingerprintSecretUri: requestFingerprintKey",
        "passes a @secure() value to fingerprintSecretUri",
        id="fingerprint-key-into-an-app-setting",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "value: '@Microsoft.KeyVault(SecretUri=${fingerprintSecretUri})'",
        "value: fingerprintSecretUri",
        "REQUEST_FINGERPRINT_KEY",
        id="fingerprint-setting-not-a-reference",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "? webhookSigningSecrets :",
        "? base64(webhookSigningSecrets) :",
        "written back unchanged",
        id="signing-secret-changes-every-run",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "${newKeyEntropyC}${newKeyEntropyD}",
        "${newKeyEntropyA}${newKeyEntropyB}",
        "of its own",
        id="signing-secret-shares-the-fingerprint-entropy",
    ),
    pytest.param(
        "modules/key-vault.bicep",
        "var signingSecretName = 'webhook-signing-secrets'",
        "var signingSecretName = 'signing'",
        SIGNING_SECRET_NAME,
        id="signing-secret-renamed",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "value: '@Microsoft.KeyVault(SecretUri=${signingSecretUri})'",
        "value: signingSecretUri",
        "WEBHOOK_SIGNING_SECRETS",
        id="signing-setting-not-a-reference",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "keyVaultReferenceIdentity: identity.id",
        "keyVaultReferenceIdentity: 'SystemAssigned'",
        "keyVaultReferenceIdentity",
        id="key-vault-reference-identity",
    ),
    # Hardening from the security review.
    pytest.param(
        "modules/function-app.bicep",
        "minTlsVersion: '1.3'",
        "minTlsVersion: '1.2'",
        "siteConfig.minTlsVersion",
        id="site-tls-1.2",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "scmMinTlsVersion: '1.3'\n",
        "",
        "siteConfig.scmMinTlsVersion",
        id="scm-tls-default",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'scm'\n  properties: {\n    allow: false",
        "name: 'scm'\n  properties: {\n    allow: true",
        "'scm'",
        id="scm-basic-auth-on",
    ),
    pytest.param(
        "modules/function-app.bicep",
        "name: 'ftp'\n",
        "name: 'ftps'\n",
        "'ftp'",
        id="ftp-basic-auth-policy-missing",
    ),
    pytest.param(
        "modules/storage.bicep",
        "minimumTlsVersion: 'TLS1_2'",
        "minimumTlsVersion: 'TLS1_1'",
        "minimumTlsVersion",
        id="storage-tls-1.1",
    ),
    pytest.param(
        "modules/cosmos.bicep",
        "minimalTlsVersion: 'Tls12'",
        "minimalTlsVersion: 'Tls11'",
        "minimalTlsVersion",
        id="cosmos-tls-1.1",
    ),
    pytest.param(
        "main.bicep",
        "output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name",
        "output AZURE_KEY_VAULT_NAME string = keyVault.outputs.uri",
        "AZURE_KEY_VAULT_NAME",
        id="vault-name-output-for-azd",
    ),
]


@pytest.mark.parametrize(("relative", "old", "new", "expected"), MUTATIONS)
def test_checks_catch_regressions(relative: str, old: str, new: str, expected: str) -> None:
    path = INFRA_DIR / relative
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (
        f"{relative} no longer contains {old!r} exactly once; update the test"
    )
    problems = all_problems(load_project({path: text.replace(old, new)}))
    assert any(expected in problem for problem in problems), (
        f"editing {relative} ({old!r} -> {new!r}) went unnoticed; problems: {problems}"
    )
