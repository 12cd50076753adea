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
    sub_text,
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
    # issue 19: lastgood's own records below a backup and the status page, by exact name
    allowed_prefixes += ("status/",)
    records = ("/*/accepted.json", "/pins/*.pin.json", "/pins/*.unpin.json")
    exact = ("status/index.html", "live/status/index.html")
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
                (key.endswith(("/*", "/*/verification.json", "/*/manifest.json")) or key == "locks/prune-*")
                or key.endswith(records)
                or key in exact
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


SECRETS_ARN = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${AWS::StackName}"


def readable_secrets(logical_id: str) -> set[str]:
    """What a function may read: SAM secret policy templates (by Ref) and inline grants (by ARN)."""
    found = {
        ref(arguments["SecretArn"]) or ""
        for name, arguments in policy_templates(logical_id)
        if name == "AWSSecretsManagerGetSecretValuePolicy"
    }
    for statement in inline_statements(logical_id):
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            for target in as_list(statement["Resource"]):
                text = ref(target) or sub_text(target) or str(target)
                found.add(text.replace(SECRETS_ARN, "<stack>"))
    return found


def test_secrets_are_read_only_by_the_functions_that_need_them() -> None:
    # Given the declared sources' secrets at <stack>/<source>/<role> (lastgood.core.secret_ids)
    # Then each function may read exactly the roles its job needs, scoped to the stack's prefix
    sources = {"<stack>/*/url-??????", "<stack>/*/token-??????"}
    assert readable_secrets("HealthFunction") == sources | {"AdminKeySecret"}
    assert readable_secrets("BackupFunction") == sources
    assert readable_secrets("RegenerateFunction") == {"<stack>/${Id}-??????"}
    assert readable_secrets("PruneFunction") == set()
    assert readable_secrets("SummaryFunction") == set()
    assert readable_secrets("NotifierFunction") == {"SlackWebhookSecretArn"}
    # verify (restore drills) reads the drill targets' secrets and never a source's own
    assert readable_secrets("VerifyFunction") == {
        "<stack>/*/scratch-url-??????",
        "<stack>/*/scratch-token-??????",
    }


def test_the_role_wildcards_cannot_cross_roles() -> None:
    # Given the IAM patterns / Then a source pattern never matches a drill target's name and back
    import fnmatch

    def matches(pattern: str, name: str) -> bool:
        return fnmatch.fnmatchcase(name, pattern.replace("<stack>", "lastgood-dev"))

    source_patterns = ["<stack>/*/url-??????", "<stack>/*/token-??????"]
    drill_patterns = ["<stack>/*/scratch-url-??????", "<stack>/*/scratch-token-??????"]
    for role, patterns in (("scratch-url", source_patterns), ("scratch-token", source_patterns)):
        assert not any(matches(p, f"lastgood-dev/app-db/{role}-AbC123") for p in patterns), role
    for role in ("url", "token"):
        assert not any(matches(p, f"lastgood-dev/app-db/{role}-AbC123") for p in drill_patterns), role
        assert any(matches(p, f"lastgood-dev/app-db/{role}-AbC123") for p in source_patterns), role
        assert not any(matches(p, f"lastgood-prod/app-db/{role}-AbC123") for p in source_patterns), role


def environment_variables() -> list[tuple[str, str, object]]:
    found: list[tuple[str, str, object]] = [
        ("Globals", name, value) for name, value in globals_function()["Environment"]["Variables"].items()
    ]
    for logical_id in functions():
        variables = props(logical_id).get("Environment", {}).get("Variables", {})
        found.extend((logical_id, name, value) for name, value in variables.items())
    return found


# Not a secret: where the declared sources' secrets live (`<stack>/`, a !Sub of the stack name).
NOT_SECRETS = {"LASTGOOD_SECRETS_PREFIX"}


def test_no_secret_value_is_inlined_in_the_environment() -> None:
    # Given every environment variable / Then secret-like ones carry only a reference to a secret
    for owner, name, value in environment_variables():
        if name in NOT_SECRETS:
            assert not isinstance(value, str), f"{owner}: {name} must be derived from the stack name"
            continue
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
