"""The verify function's role is enough for the weekly PITR drill, and no more: it reads (never writes)
a base's change segments and decrypts them with the data key."""

from __future__ import annotations

from fnmatch import fnmatchcase

from lastgood.backups import segment_keys

from tests.helpers.template import as_list, getatt, inline_statements, sub_text

BASE = "20261201T030000Z-0a1b2c"
SEGMENT_KEYS = [
    segment_keys.segment_manifest_key("orders", BASE, 3),
    segment_keys.part_key("orders", BASE, 3, segment_keys.part_name("0a1b2c3d", 1)),
]


def _s3_resources(action: str) -> list[str]:
    out = []
    for statement in inline_statements("VerifyFunction"):
        if statement.get("Effect") == "Allow" and action in as_list(statement["Action"]):
            for target in as_list(statement["Resource"]):
                text = sub_text(target)
                if text is not None:
                    out.append(text)
                elif getatt(target) == ("BackupBucket", "Arn"):
                    out.append("${BackupBucket.Arn}")
    return out


def test_verify_can_list_and_read_change_segments_but_never_write_them() -> None:
    # Given the keys the capture writes below a base (lastgood.backups.segment_keys)
    readable, writable = _s3_resources("s3:GetObject"), _s3_resources("s3:PutObject")
    for key in SEGMENT_KEYS:
        arn = "${BackupBucket.Arn}/" + key
        # Then the verify role may read each one and write none of them
        assert any(fnmatchcase(arn, pattern) for pattern in readable), key
        assert not any(fnmatchcase(arn, pattern) for pattern in writable), key
    # And it may list the bucket (the chain of a base is found by listing its pitr/ prefix)
    assert "${BackupBucket.Arn}" in _s3_resources("s3:ListBucket")


def test_verify_can_decrypt_segments_with_the_data_key() -> None:
    # Given SSE-KMS (always) and client-side encryption (optional) of segment parts with DataKey
    grants = [
        s
        for s in inline_statements("VerifyFunction")
        if "kms:Decrypt" in as_list(s["Action"])
        and any(getatt(r) == ("DataKey", "Arn") for r in as_list(s["Resource"]))
    ]
    # Then the verify role holds kms:Decrypt on it
    assert grants
