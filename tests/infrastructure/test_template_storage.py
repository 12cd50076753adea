"""Buckets, key and CloudFront in template.yaml: private, encrypted, TLS-only, tiered, failover."""

from __future__ import annotations

import pytest

from tests.helpers.template import as_list, getatt, props, ref, resource, resources, sub_text

DATA_BUCKETS = ("BackupBucket", "SiteBucket")
ALL_BUCKETS = ("BackupBucket", "SiteBucket", "AccessLogBucket")


def bucket_policy_for(bucket_id: str) -> dict[str, object]:
    for policy in resources("AWS::S3::BucketPolicy").values():
        if ref(policy["Properties"]["Bucket"]) == bucket_id:
            document: dict[str, object] = policy["Properties"]["PolicyDocument"]
            return document
    raise AssertionError(f"no bucket policy for {bucket_id}")


@pytest.mark.parametrize("bucket_id", ALL_BUCKETS)
def test_bucket_is_private_versioned_and_owner_enforced(bucket_id: str) -> None:
    # Given a bucket / Then public access is blocked four ways, ACLs are off and versions are kept
    bucket = props(bucket_id)
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}


@pytest.mark.parametrize("bucket_id", DATA_BUCKETS)
def test_data_bucket_encrypts_with_the_product_kms_key(bucket_id: str) -> None:
    # Given a data bucket / Then objects are SSE-KMS with the product's key and an S3 bucket key
    (rule,) = props(bucket_id)["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    assert getatt(rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"]) == ("DataKey", "Arn")
    assert rule["BucketKeyEnabled"] is True


@pytest.mark.parametrize("bucket_id", DATA_BUCKETS)
def test_data_bucket_is_retained_when_the_stack_goes(bucket_id: str) -> None:
    # Given a stack deletion or replacement / Then the data stays
    assert resource(bucket_id)["DeletionPolicy"] == "Retain"
    assert resource(bucket_id)["UpdateReplacePolicy"] == "Retain"


def test_kms_key_rotates_and_is_retained() -> None:
    # Given the product key / Then it rotates and outlives the stack (backups need it to be read)
    key = resource("DataKey")
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    assert ref(props("DataKeyAlias")["TargetKeyId"]) == "DataKey"


@pytest.mark.parametrize("bucket_id", ALL_BUCKETS)
def test_bucket_policy_denies_requests_without_tls(bucket_id: str) -> None:
    # Given a plain-HTTP request / Then the bucket policy denies it for the bucket and every object
    statements = bucket_policy_for(bucket_id)["Statement"]
    assert isinstance(statements, list)
    denies = [
        s
        for s in statements
        if s["Effect"] == "Deny" and s.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1
    (deny,) = denies
    assert deny["Principal"] == "*"
    assert deny["Action"] == "s3:*"
    targets = as_list(deny["Resource"])
    assert {"Fn::GetAtt": [bucket_id, "Arn"]} in targets or {"Fn::GetAtt": f"{bucket_id}.Arn"} in targets
    assert any(sub_text(t) == f"${{{bucket_id}.Arn}}/*" for t in targets)


def lifecycle_rules(bucket_id: str) -> list[dict[str, object]]:
    rules: list[dict[str, object]] = props(bucket_id)["LifecycleConfiguration"]["Rules"]
    return rules


def test_backups_move_to_ia_then_glacier_ir_by_parameter() -> None:
    # Given aging backups / Then they go STANDARD_IA then GLACIER_IR after the parameterized days
    (tiering,) = [r for r in lifecycle_rules("BackupBucket") if r.get("Prefix") == "backups/"]
    assert tiering["Status"] == "Enabled"
    transitions = {t["StorageClass"]: ref(t["TransitionInDays"]) for t in tiering["Transitions"]}  # type: ignore[union-attr]
    assert transitions == {
        "STANDARD_IA": "BackupRetentionIaDays",
        "GLACIER_IR": "BackupRetentionGlacierIrDays",
    }


@pytest.mark.parametrize("bucket_id", DATA_BUCKETS)
def test_incomplete_uploads_and_old_versions_are_cleaned_up(bucket_id: str) -> None:
    # Given an aborted multipart upload or a replaced version / Then lifecycle removes it
    rules = lifecycle_rules(bucket_id)
    assert any(r.get("AbortIncompleteMultipartUpload") == {"DaysAfterInitiation": 1} for r in rules)
    noncurrent = [r["NoncurrentVersionExpiration"] for r in rules if "NoncurrentVersionExpiration" in r]
    assert noncurrent and ref(noncurrent[0]["NoncurrentDays"]) == "NoncurrentVersionDays"  # type: ignore[index]


def test_object_lock_is_optional_and_follows_the_mode_parameter() -> None:
    # Given ObjectLockMode=NONE / Then no lock; GOVERNANCE or COMPLIANCE / Then default retention in that mode
    from tests.helpers.template import template

    parameter = template()["Parameters"]["ObjectLockMode"]
    assert parameter["Default"] == "NONE"
    assert set(parameter["AllowedValues"]) == {"NONE", "GOVERNANCE", "COMPLIANCE"}
    bucket = props("BackupBucket")
    condition, enabled, _ = bucket["ObjectLockConfiguration"]["Fn::If"]
    assert condition == "HasObjectLock"
    assert bucket["ObjectLockEnabled"]["Fn::If"][0] == "HasObjectLock"
    retention = enabled["Rule"]["DefaultRetention"]
    assert ref(retention["Mode"]) == "ObjectLockMode"
    assert ref(retention["Days"]) == "ObjectLockDays"


# ------------------------------------------------------------------------------------- CloudFront


def test_distribution_fails_over_from_live_to_last_good() -> None:
    # Given a 403/404/5xx from live/ / Then CloudFront answers from last-good/
    config = props("Distribution")["DistributionConfig"]
    origins = {o["Id"]: o for o in config["Origins"]}
    assert {o["OriginPath"] for o in origins.values()} == {"/live", "/last-good"}
    for origin in origins.values():
        assert getatt(origin["DomainName"]) == ("SiteBucket", "RegionalDomainName")
        assert getatt(origin["OriginAccessControlId"]) == ("SiteOriginAccessControl", "Id")
    (group,) = config["OriginGroups"]["Items"]
    statuses = group["FailoverCriteria"]["StatusCodes"]
    assert sorted(statuses["Items"]) == [403, 404, 500, 502, 503, 504]
    assert statuses["Quantity"] == 6
    members = [m["OriginId"] for m in group["Members"]["Items"]]
    assert [origins[m]["OriginPath"] for m in members] == ["/live", "/last-good"]
    (data_behavior,) = [b for b in config["CacheBehaviors"] if b["PathPattern"] == "/data/*"]
    assert data_behavior["TargetOriginId"] == group["Id"]
    assert data_behavior["ViewerProtocolPolicy"] in {"redirect-to-https", "https-only"}
    assert config["DefaultCacheBehavior"]["TargetOriginId"] == group["Id"]


def test_site_bucket_is_read_only_by_this_distribution_through_oac() -> None:
    # Given the private site bucket / Then only CloudFront, signed for this distribution, may read it
    oac = props("SiteOriginAccessControl")["OriginAccessControlConfig"]
    assert oac["OriginAccessControlOriginType"] == "s3"
    assert oac["SigningBehavior"] == "always"
    assert oac["SigningProtocol"] == "sigv4"
    statements = bucket_policy_for("SiteBucket")["Statement"]
    assert isinstance(statements, list)
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source_arn = sub_text(allow["Condition"]["StringEquals"]["AWS:SourceArn"])
    assert source_arn is not None and source_arn.endswith(":distribution/${Distribution}")
    readable = {sub_text(r) for r in as_list(allow["Resource"])}
    assert readable == {"${SiteBucket.Arn}/live/*", "${SiteBucket.Arn}/last-good/*"}


def test_distribution_domain_and_names_are_outputs() -> None:
    # Given a deployed stack / Then the user can find the API, the CDN and the buckets
    from tests.helpers.template import template

    outputs = template()["Outputs"]
    for name in ("ApiUrl", "DistributionDomain", "BackupBucketName", "SiteBucketName", "AlertTopicArn"):
        assert name in outputs, name
    assert getatt(outputs["DistributionDomain"]["Value"]) == ("Distribution", "DomainName")
