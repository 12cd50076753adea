"""The status page's I/O: gather its inputs, store the page, hand out a presigned URL.

Read (a part that cannot be read is shown on the page with the reason, never hidden):

- per declared source, `BackupStore.list_backups` — manifests, pin records, acceptance and
  verification records as `BackupListing` (the catalog's one reading of them);
- the failed backup runs of the window from the audit trail (`audit/backup/<day>/…`,
  `lastgood.storage.audit`): a failed run commits nothing, its audit record is what is left;
- the datasets' freshness (`monitoring.freshness.dataset_freshness`, the live copies' labels
  checked against their bytes).

Written: the page to the backup bucket at `backups.keys.status_page_key()` (`status/index.html`,
text/html, SSE-KMS) by every summary run (`publish_page`); with `STATUS_PAGE_PUBLIC=true` also
to the site bucket at `site.keys.status_page_key()`, which CloudFront serves only when the
template's `PublishStatusPage` parameter is `true`.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lastgood.core.observability import logger
from lastgood.monitoring.status_model import WINDOW, DatasetRow, SourceTimeline, StatusInputs, build_timeline

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore
    from lastgood.storage.audit import AuditRecord

CONTENT_TYPE = "text/html; charset=utf-8"
DEFAULT_URL_EXPIRES_S = 15 * 60
MAX_URL_EXPIRES_S = 7 * 24 * 3600  # the longest a SigV4 presigned URL can live


def _why(exc: BaseException) -> str:
    from botocore.exceptions import ClientError

    from lastgood.storage.s3 import error_code

    if isinstance(exc, ClientError):
        return f"S3 {error_code(exc) or 'error'}"
    return f"{type(exc).__name__}: {exc}"[:200]


def failed_runs(store: BackupStore, now: datetime) -> list[AuditRecord]:
    """Backup runs the audit trail records as failed within the window (one listing per day)."""
    from lastgood.storage.audit import AuditRecord, list_records

    days = [(now - timedelta(days=n)) for n in range(WINDOW.days + 1)]

    def one_day(day: datetime) -> list[dict[str, Any]]:
        return list_records(store.bucket, "backup", day=day, s3_client=store.s3, limit=100_000)

    with ThreadPoolExecutor(max_workers=8) as pool:
        docs = [doc for batch in pool.map(one_day, days) for doc in batch]
    out = []
    for doc in docs:
        if doc.get("result") != "failed":
            continue
        try:
            out.append(AuditRecord.model_validate(doc))
        except ValueError:  # an unreadable record is listed by `lastgood audit`, not drawn here
            continue
    return out


@dataclass
class Gathered:
    inputs: StatusInputs
    store: BackupStore | None


def gather(now: datetime | None = None) -> Gathered:
    """Everything the page shows, as of `now` (failures become per-part errors on the page)."""
    from lastgood.backups.store import BackupStore
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings

    moment = (now or datetime.now(UTC)).astimezone(UTC)
    config = get_config()
    inputs = StatusInputs(stage=get_settings().stage, generated_at=moment)
    store: BackupStore | None = None
    runs: list[AuditRecord] = []
    store_error: str | None = None
    try:
        store = BackupStore.from_settings()
        try:
            runs = failed_runs(store, moment)
        except Exception as exc:  # failed runs unknown: the backups are still shown
            inputs.notes.append(f"failed backup runs could not be read from the audit trail ({_why(exc)})")
    except Exception as exc:
        store_error = _why(exc)
    for src in config.sources:
        timeline = SourceTimeline(src.name, src.engine, src.rpo_seconds, src.rto_seconds, error=store_error)
        if store is not None:
            try:
                listings = store.list_backups(src.name)
                mine = [r for r in runs if (r.model_extra or {}).get("source") == src.name]
                timeline = build_timeline(
                    src.name, src.engine, src.rpo_seconds, src.rto_seconds, listings, mine, now=moment
                )
            except Exception as exc:  # one unreadable source must not hide the others
                timeline.error = _why(exc)
        inputs.sources.append(timeline)
    if config.datasets:
        from lastgood.monitoring.freshness import dataset_freshness

        try:
            inputs.datasets = [DatasetRow.of(d) for d in dataset_freshness(config, moment)]
        except Exception as exc:
            inputs.datasets_error = _why(exc)
    return Gathered(inputs, store)


def render_page(now: datetime | None = None) -> tuple[str, Gathered]:
    from lastgood.monitoring.status_page import render

    gathered = gather(now)
    return render(gathered.inputs), gathered


def _put(s3: Any, bucket: str, key: str, body: bytes, sse: dict[str, str]) -> None:
    from lastgood.storage.s3 import checksum_sha256

    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=body,
        ContentType=CONTENT_TYPE,
        CacheControl="no-store",
        ChecksumSHA256=checksum_sha256(body),
        **sse,
    )


def store_page(html: str, store: BackupStore) -> str:
    """Write the page to the backup bucket (replacing the previous one); returns its key."""
    from lastgood.backups.keys import status_page_key

    key = status_page_key()
    _put(store.s3, store.bucket, key, html.encode("utf-8"), store.sse_args())
    return key


def copy_to_site(html: str, store: BackupStore) -> str | None:
    """The opt-in public copy (`STATUS_PAGE_PUBLIC=true`): the site bucket's `status/index.html`."""
    from lastgood.core.settings import get_settings
    from lastgood.site.keys import status_page_key

    settings = get_settings()
    if not settings.status_page_public:
        return None
    bucket = settings.require("site_bucket")
    key = status_page_key()
    _put(store.s3, bucket, key, html.encode("utf-8"), store.sse_args())
    return key


def publish_page(now: datetime | None = None) -> dict[str, Any]:
    """The summary run's step: render, store in the backup bucket, copy to the site when opted in.

    Never raises: the daily summary is sent even when the page cannot be written (the
    result says why, and the caller counts it)."""
    try:
        html, gathered = render_page(now)
        if gathered.store is None:
            return {"written": False, "error": "BACKUP_BUCKET is not set"}
        key = store_page(html, gathered.store)
        public = copy_to_site(html, gathered.store)
        logger.info("status page written", extra={"key": key, "bytes": len(html), "public": public})
        return {"written": True, "key": key, "public_key": public, "bytes": len(html.encode())}
    except Exception as exc:
        logger.error("status page not written", extra={"error": _why(exc)})
        return {"written": False, "error": _why(exc)}


def presigned_url(expires_s: int = DEFAULT_URL_EXPIRES_S, store: BackupStore | None = None) -> str:
    """A GET URL of the stored page, valid `expires_s` seconds; LastgoodError if there is no page."""
    from botocore.exceptions import ClientError

    from lastgood.backups.keys import status_page_key
    from lastgood.backups.store import BackupStore
    from lastgood.core.errors import ConfigError, LastgoodError
    from lastgood.storage.s3 import is_not_found

    if not 1 <= expires_s <= MAX_URL_EXPIRES_S:
        raise ConfigError(f"--expires must be between 1 second and 7 days (got {expires_s} s)")
    store = store or BackupStore.from_settings()
    key = status_page_key()
    try:
        store.s3.head_object(Bucket=store.bucket, Key=key)
    except ClientError as exc:
        if is_not_found(exc):
            raise LastgoodError(
                f"s3://{store.bucket}/{key} does not exist yet: the daily summary run writes it, "
                "or write it now with `lastgood status --publish`"
            ) from None
        raise
    url: str = _sigv4_client().generate_presigned_url(
        "get_object", Params={"Bucket": store.bucket, "Key": key}, ExpiresIn=expires_s
    )
    return url


def _sigv4_client() -> Any:
    """An S3 client that presigns with SigV4 (an SSE-KMS object is served to SigV4 URLs only)."""
    import boto3
    from botocore.config import Config

    from lastgood.core.settings import get_settings

    return boto3.session.Session().client(
        "s3", region_name=get_settings().aws_region, config=Config(signature_version="s3v4")
    )
