"""Least privilege and secret handling in template.yaml."""

from __future__ import annotations

import re

import pytest

from tests.helpers.template import (
    as_list,
    functions,
    globals_function,
    inline_statements,
    policy_templates,
    props,
    ref,
    resource,
    template,
    walk,
)

# Actions AWS offers no resource-level permissions for; everything else is scoped.
# (X-Ray write access comes from SAM's managed policy when Tracing is Active.)
WILDCARD_RESOURCE_ACTIONS = {
    "cloudwatch:GetMetricStatistics",
    "cloudwatch:GetMetricData",
    "cloudwatch:ListMetrics",
    "cloudwatch:PutMetricData",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
}
SECRET_WORDS = re.compile(r"(SECRET|TOKEN|PASSWORD|PASSWD|ADMIN_KEY|WEBHOOK|_URI$|DATABASE_URL)", re.I)


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_no_function_statement_uses_a_wildcard_resource_outside_the_allow_list(logical_id: str) -> None:
    # Given a function's inline IAM statements / Then "*" only appears for actions AWS cannot scope
    for statement in inline_statements(logical_id):
        resources_ = as_list(statement.get("Resource", []))
        if "*" in resources_:
            actions = set(as_list(statement["Action"]))
            assert actions <= WILDCARD_RESOURCE_ACTIONS, f"{logical_id}: {sorted(actions)} on '*'"
        for action in as_list(statement.get("Action", [])):
            assert not action.endswith(":*"), f"{logical_id}: service-wide action {action}"


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_function_uses_no_managed_admin_policies(logical_id: str) -> None:
    # Given a function's Policies / Then they are inline statements or scoped SAM policy templates
    for node in as_list(props(logical_id).get("Policies", [])):
        assert not isinstance(node, str), f"{logical_id}: managed policy {node}"
    for name, arguments in policy_templates(logical_id):
        assert arguments, f"{logical_id}: {name} without a scope"


@pytest.mark.parametrize("logical_id", sorted(functions()))
def test_s3_permissions_are_scoped_to_the_products_buckets_and_prefixes(logical_id: str) -> None:
    # Given a function's S3 statements / Then each resource is a product bucket or one of its prefixes
    allowed_prefixes = ("backups/", "locks/", "audit/", "live/", "last-good/", "versions/", "history/")
    for statement in inline_statements(logical_id):
        if not any(str(a).startswith("s3:") for a in as_list(statement["Action"])):
            continue
        for target in as_list(statement["Resource"]):
            if "Fn::GetAtt" in target:
                assert target["Fn::GetAtt"][0] in {"BackupBucket", "SiteBucket"}
                continue
            text = target["Fn::Sub"]
            bucket, _, key = text.partition("}/")
            assert bucket in {"${BackupBucket.Arn", "${SiteBucket.Arn"}, text
            assert key.startswith(allowed_prefixes), text
            assert (
                key.endswith(("/*", "/*/verification.json", "/*/manifest.json")) or key == "locks/prune-*"
            ), text


def test_verify_can_add_a_verification_record_but_not_overwrite_backup_objects() -> None:
    # Given the verify function / Then its only write under backups/ is verification.json
    writes = {
        target["Fn::Sub"]
        for statement in inline_statements("VerifyFunction")
        if "s3:PutObject" in as_list(statement["Action"])
        for target in as_list(statement["Resource"])
    }
    assert writes == {"${BackupBucket.Arn}/backups/*/verification.json", "${BackupBucket.Arn}/audit/*"}


def test_secrets_are_read_only_by_the_functions_that_need_them() -> None:
    # Given the secrets / Then each function may read exactly the ones its job needs
    def readable(logical_id: str) -> set[str]:
        return {
            ref(arguments["SecretArn"]) or ""
            for name, arguments in policy_templates(logical_id)
            if name == "AWSSecretsManagerGetSecretValuePolicy"
        }

    sources = {"MongoDbUriSecretArn", "DatabaseUrlSecretArn", "UpstashTokenSecretArn"}
    assert readable("HealthFunction") == sources | {"AdminKeySecret"}
    assert readable("BackupFunction") == sources
    assert readable("RegenerateFunction") == {"MongoDbUriSecretArn"}
    assert readable("PruneFunction") == set()
    assert readable("SummaryFunction") == set()
    assert readable("NotifierFunction") == {"SlackWebhookSecretArn"}
    assert readable("VerifyFunction") == {
        "ScratchDatabaseUrlSecretArn",
        "ScratchMongoDbUriSecretArn",
        "ScratchRedisUrlSecretArn",
    }


def environment_variables() -> list[tuple[str, str, object]]:
    found: list[tuple[str, str, object]] = [
        ("Globals", name, value) for name, value in globals_function()["Environment"]["Variables"].items()
    ]
    for logical_id in functions():
        variables = props(logical_id).get("Environment", {}).get("Variables", {})
        found.extend((logical_id, name, value) for name, value in variables.items())
    return found


def test_no_secret_value_is_inlined_in_the_environment() -> None:
    # Given every environment variable / Then secret-like ones carry only a reference to a secret
    for owner, name, value in environment_variables():
        if SECRET_WORDS.search(name):
            assert name.endswith(("_SECRET_ARN", "_SSM_PARAM")), f"{owner}: {name} holds a secret value"
            assert not isinstance(value, str), f"{owner}: {name} is a literal"


def test_secret_parameters_have_no_default_values_and_are_not_echoed() -> None:
    # Given the parameters / Then none carries a credential (only ARNs, empty by default when optional)
    for name, parameter in template()["Parameters"].items():
        default = str(parameter.get("Default", ""))
        assert not re.search(r"://[^/@\s]+:[^/@\s]+@", default), f"{name} default contains credentials"
        if name.endswith("SecretArn"):
            assert default == "", f"{name} must not default to a real secret"


def test_no_literal_credentials_anywhere_in_the_template() -> None:
    # Given the whole template / Then no string looks like a credential-bearing URL or a key
    for node in walk(template()):
        if isinstance(node, str):
            assert not re.search(r"(mongodb(\+srv)?|postgres(ql)?|rediss?)://[^/\s]*:[^/\s]*@", node), node
            assert not re.search(r"AKIA[0-9A-Z]{16}", node), node
            assert "hooks.slack.com" not in node


def test_admin_key_is_generated_in_secrets_manager() -> None:
    # Given /health/details' admin key / Then the stack generates it, encrypted with the product key
    secret = resource("AdminKeySecret")
    assert secret["Type"] == "AWS::SecretsManager::Secret"
    assert "SecretString" not in secret["Properties"]
    assert secret["Properties"]["GenerateSecretString"]["PasswordLength"] >= 32
    assert ref(globals_function()["Environment"]["Variables"]["ADMIN_KEY_SECRET_ARN"]) == "AdminKeySecret"


def test_cloudfront_key_grant_is_limited_to_this_accounts_distributions() -> None:
    # Given the key policy grant to CloudFront / Then it is bound to this account's distributions
    statements = props("DataKey")["KeyPolicy"]["Statement"]
    (grant,) = [s for s in statements if s.get("Principal") == {"Service": "cloudfront.amazonaws.com"}]
    assert grant["Action"] == "kms:Decrypt"
    assert ref(grant["Condition"]["StringEquals"]["aws:SourceAccount"]) == "AWS::AccountId"
