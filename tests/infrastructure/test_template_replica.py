"""The cross-region replica in template.yaml: S3 Replication with its KMS and role, and replica mode.

Three deployments of the same template are linted by cfn-lint: no replica (the defaults), a
primary replicating to a replica (ReplicaBucketArn + ReplicaKmsKeyArn), and the replica itself
(DeploymentMode=replica). cfn-lint resolves parameters through their defaults, so each variant
is the template with those defaults set.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.template import (
    ROOT,
    as_list,
    getatt,
    globals_function,
    props,
    raw_template,
    ref,
    resource,
    resources,
    schedules,
    sub_text,
    target_function,
    template,
)

REPLICA_BUCKET_ARN = "arn:aws:s3:::lastgood-replica-backups"
REPLICA_KEY_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
VARIANTS = {
    "no-replica": {},
    "primary-with-replica": {"ReplicaBucketArn": REPLICA_BUCKET_ARN, "ReplicaKmsKeyArn": REPLICA_KEY_ARN},
    "replica-mode": {"DeploymentMode": "replica"},
}


def variant(defaults: dict[str, str]) -> dict[str, Any]:
    data = copy.deepcopy(raw_template())
    for name, value in defaults.items():
        data["Parameters"][name]["Default"] = value
    return data


def lint(data: dict[str, Any], path: Path) -> str:
    path.write_text(json.dumps(data, indent=1))
    result = subprocess.run(
        [str(ROOT / ".venv/bin/cfn-lint"), str(path)], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr if result.returncode else ""


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_cfn_lint_is_clean_with_and_without_the_replica_and_in_replica_mode(
    name: str, tmp_path: Path
) -> None:
    # Given the template deployed without a replica, replicating to one, or as the replica
    data = variant(VARIANTS[name])
    # Then cfn-lint finds nothing
    assert lint(data, tmp_path / f"{name}.json") == ""


def replication() -> dict[str, Any]:
    config = props("BackupBucket")["ReplicationConfiguration"]
    condition, when_on, when_off = config["Fn::If"]
    assert condition == "HasReplica" and when_off == {"Ref": "AWS::NoValue"}
    return dict(when_on)


def test_replication_re_encrypts_with_the_replica_key_within_15_minutes_and_never_replicates_deletes() -> (
    None
):
    # Given the backup bucket's replication configuration (primary with a replica)
    config = replication()
    (rule,) = config["Rules"]
    destination = rule["Destination"]
    # Then it copies backups/ only, SSE-KMS objects included, re-encrypted with the replica's key
    assert rule["Status"] == "Enabled" and rule["Filter"] == {"Prefix": "backups/"}
    assert rule["SourceSelectionCriteria"] == {"SseKmsEncryptedObjects": {"Status": "Enabled"}}
    assert ref(destination["Bucket"]) == "ReplicaBucketArn"
    assert destination["EncryptionConfiguration"] == {"ReplicaKmsKeyID": {"Ref": "ReplicaKmsKeyArn"}}
    # And Replication Time Control with its metrics (15 minutes)
    assert destination["ReplicationTime"] == {"Status": "Enabled", "Time": {"Minutes": 15}}
    assert destination["Metrics"] == {"Status": "Enabled", "EventThreshold": {"Minutes": 15}}
    # And deletes stay local: the replica's own prune decides what it keeps
    assert rule["DeleteMarkerReplication"] == {"Status": "Disabled"}
    # And the bucket is versioned (replication requires it) and uses the replication role
    assert props("BackupBucket")["VersioningConfiguration"] == {"Status": "Enabled"}
    assert getatt(config["Role"]) == ("ReplicationRole", "Arn")


def statements() -> dict[str, dict[str, Any]]:
    policy = props("ReplicationPolicy")
    assert ref(policy["RoleName"]) == "ReplicationRole"
    return {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}


def test_the_replication_role_has_exactly_the_permissions_replication_needs() -> None:
    # Given the replication role, assumed by S3 of this account only
    role = resource("ReplicationRole")
    assert role["Condition"] == "HasReplica" and resource("ReplicationPolicy")["Condition"] == "HasReplica"
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "s3.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    found = statements()
    assert all(s["Effect"] == "Allow" for s in found.values())
    actions = {sid: set(as_list(s["Action"])) for sid, s in found.items()}
    # Then it reads the backup versions to replicate (backups/ only) …
    assert actions["ReadBackupVersionsToReplicate"] == {
        "s3:GetObjectVersionForReplication",
        "s3:GetObjectVersionAcl",
        "s3:GetObjectVersionTagging",
        "s3:GetObjectRetention",
        "s3:GetObjectLegalHold",
    }
    assert sub_text(found["ReadBackupVersionsToReplicate"]["Resource"]) == "${BackupBucket.Arn}/backups/*"
    # … writes copies (and their tags) into the replica's backups/, and never replicates a delete
    assert actions["WriteCopiesIntoTheReplica"] == {"s3:ReplicateObject", "s3:ReplicateTags"}
    assert sub_text(found["WriteCopiesIntoTheReplica"]["Resource"]) == "${ReplicaBucketArn}/backups/*"
    everything = set().union(*actions.values())
    assert "s3:ReplicateDelete" not in everything and not any("*" in a for a in everything)
    assert actions["ReadTheReplicationConfiguration"] == {"s3:GetReplicationConfiguration", "s3:ListBucket"}
    assert getatt(found["ReadTheReplicationConfiguration"]["Resource"]) == ("BackupBucket", "Arn")


def test_the_replication_role_uses_each_key_only_through_s3_for_its_bucket() -> None:
    found = statements()
    # Given the KMS statements / Then the source key only decrypts, through S3 in this region, for
    # the backup bucket's objects
    decrypt = found["DecryptWithTheBackupKeyThroughS3Only"]
    assert decrypt["Action"] == "kms:Decrypt" and getatt(decrypt["Resource"]) == ("DataKey", "Arn")
    assert (
        sub_text(decrypt["Condition"]["StringEquals"]["kms:ViaService"]) == "s3.${AWS::Region}.amazonaws.com"
    )
    context = decrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    assert (
        getatt(context[0]) == ("BackupBucket", "Arn")
        and sub_text(context[1]) == "${BackupBucket.Arn}/backups/*"
    )
    # And the replica key only encrypts, through S3 in the replica key's region, for the replica bucket
    encrypt = found["EncryptWithTheReplicaKeyThroughS3Only"]
    assert encrypt["Action"] == "kms:Encrypt" and ref(encrypt["Resource"]) == "ReplicaKmsKeyArn"
    text, variables = encrypt["Condition"]["StringEquals"]["kms:ViaService"]["Fn::Sub"]
    assert text == "s3.${ReplicaRegion}.amazonaws.com"
    assert variables["ReplicaRegion"] == {
        "Fn::Select": [3, {"Fn::Split": [":", {"Ref": "ReplicaKmsKeyArn"}]}]
    }
    context = encrypt["Condition"]["StringLike"]["kms:EncryptionContext:aws:s3:arn"]
    assert ref(context[0]) == "ReplicaBucketArn" and sub_text(context[1]) == "${ReplicaBucketArn}/backups/*"


def test_a_replica_without_its_key_or_a_replicating_replica_is_refused_by_a_rule() -> None:
    # Given the template's Rules / Then ReplicaBucketArn needs ReplicaKmsKeyArn and a primary
    rule = raw_template()["Rules"]["ReplicaNeedsItsKey"]
    assertions = [a["Assert"] for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "ReplicaKmsKeyArn"}, ""]}]} in assertions
    assert {"Fn::Equals": [{"Ref": "DeploymentMode"}, "primary"]} in assertions


def test_health_and_summary_read_only_the_replicas_manifests() -> None:
    # Given the replica read policy (primary with a replica)
    policy = resource("ReplicaReadPolicy")
    assert policy["Condition"] == "HasReplica"
    roles = {ref(r) for r in policy["Properties"]["Roles"]}
    assert roles == {"HealthFunctionRole", "SummaryFunctionRole"}
    found = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    # Then they list the replica and read manifests / verification records, never backup contents
    assert found["ListReplicaBucket"]["Action"] == "s3:ListBucket"
    assert found["ReadReplicaManifests"]["Action"] == "s3:GetObject"
    assert sorted(sub_text(r) for r in found["ReadReplicaManifests"]["Resource"]) == [
        "${ReplicaBucketArn}/backups/*/manifest.json",
        "${ReplicaBucketArn}/backups/*/verification.json",
    ]
    assert found["DecryptReplicaManifests"]["Action"] == "kms:Decrypt"


def test_replica_mode_runs_no_backup_drill_or_regenerate_schedule_but_keeps_prune_health_summary() -> None:
    # Given the per-source schedules / Then backup and verify exist only in a primary stack
    # (directly, or through the Fargate runner's OnLambda<Source> / OnFargate<Source>, which
    # both require IsPrimary)
    conditions = template()["Conditions"]
    for logical_id in schedules():
        condition = resource(logical_id)["Condition"]
        name = condition["Fn::Sub"] if isinstance(condition, dict) else condition
        if name != "IsPrimary":
            assert {"Condition": "IsPrimary"} in conditions[name]["Fn::And"], logical_id
    assert {target_function(p) for p in schedules().values()} - {None} == {
        "BackupFunction",
        "VerifyFunction",
        "CaptureFunction",
    }
    # And regenerate's schedule is off in a replica stack
    state = props("RegenerateFunction")["Events"]["Scheduled"]["Properties"]["State"]
    assert state == {"Fn::If": ["IsReplica", "DISABLED", {"Ref": "SchedulesState"}]}
    # And prune, health and summary are unconditional, and every function knows the mode
    for logical_id in ("PruneFunction", "HealthFunction", "SummaryFunction", "BackupBucket", "DataKey"):
        assert "Condition" not in resource(logical_id), logical_id
    variables = globals_function()["Environment"]["Variables"]
    assert ref(variables["LASTGOOD_DEPLOYMENT_MODE"]) == "DeploymentMode"
    # And the replica's bucket policy is the backup bucket's (TLS only, conditional creates, only prune deletes)
    sids = {s["Sid"] for s in props("BackupBucketPolicy")["PolicyDocument"]["Statement"]}
    assert {"DenyInsecureTransport", "CommittedBackupsAreImmutable", "OnlyPruneDeletesBackups"} <= sids


def test_every_source_has_a_replica_late_alarm_that_treats_missing_data_as_breaching() -> None:
    alarms = {
        k: v for k, v in resources("AWS::CloudWatch::Alarm").items() if k.startswith("ReplicaBackupLate")
    }
    assert set(alarms) == {
        "ReplicaBackupLateAlarmPostgres",
        "ReplicaBackupLateAlarmMongodb",
        "ReplicaBackupLateAlarmUpstash",
    }
    for alarm in alarms.values():
        assert alarm["Condition"] == "WatchesReplica"
        properties = alarm["Properties"]
        assert (
            properties["MetricName"] == "ReplicaBackupLate" and properties["TreatMissingData"] == "breaching"
        )
        assert (
            properties["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
            and properties["Threshold"] == 1
        )
