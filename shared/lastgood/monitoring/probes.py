"""The dependency probes health runs, built from the configuration.

One probe per configured source (its engine's `probe`, with the URL from the
source's `url_secret` and, for Upstash, the token from `token_secret`), named
after the source; the datasets' MongoDB (`MONGODB_URI`) when datasets are
configured and no source already probes that secret; and S3 (`head_bucket` on
the backup and site buckets with the health client, `lastgood.core.aws.HEALTH_CONFIG`).

A source whose secret is not set is `configured: false` (reported with the
variable's name, not a failure). Probes reuse the engines' connection policy:
MongoDB's process-wide pooled client (one per URL and timeout, so every probe
passes the same `timeout_s`), one PostgreSQL connection opened and closed per
probe, one Upstash REST request per probe. How often they run is bounded by the
health run (see `lastgood.monitoring.health`, and the public cache).
"""

from __future__ import annotations

from collections.abc import Callable

from lastgood.core.config import LastgoodConfig, SourceConfig, get_config
from lastgood.core.redact import redact_text
from lastgood.engines.base import ProbeResult

Probe = Callable[[float], ProbeResult]

DATASETS_URL_NAME = "MONGODB_URI"  # where regenerate and the loader read datasets (lastgood.site.query)


def not_configured(name: str, what: str) -> ProbeResult:
    return ProbeResult(name, False, 0.0, None, {"configured": False, "reason": f"{what} is not set"})


def _secret(name: str) -> str | None:
    from lastgood.core.settings import get_secret

    return get_secret(name, required=False)


def engine_probe(name: str, engine: str, url_secret: str, token_secret: str | None = None) -> Probe:
    """Probe `engine` at the URL held by `url_secret`; the result is named `name`."""

    def probe(timeout_s: float) -> ProbeResult:
        url = _secret(url_secret)
        if not url:
            return not_configured(name, url_secret)
        from lastgood.engines import get_engine

        token = _secret(token_secret) if token_secret else None
        result = get_engine(engine).probe(url, timeout_s=timeout_s, token=token)
        return ProbeResult(
            name, result.ok, result.latency_ms, result.error, {"engine": engine, **result.detail}
        )

    return probe


def source_probe(source: SourceConfig) -> Probe:
    return engine_probe(source.name, source.engine, source.url_secret, source.token_secret)


def probe_s3(timeout_s: float) -> ProbeResult:
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.core import aws
    from lastgood.core.settings import get_settings
    from lastgood.engines.base import Stopwatch

    settings = get_settings()
    buckets = [b for b in (settings.backup_bucket, settings.site_bucket) if b]
    if not buckets:
        return not_configured("s3", "BACKUP_BUCKET / SITE_BUCKET")
    watch = Stopwatch()
    bucket = buckets[0]
    try:
        s3 = aws.health_client("s3")
        for bucket in buckets:
            s3.head_bucket(Bucket=bucket)
        return ProbeResult("s3", True, watch.ms, detail={"buckets": len(buckets)})
    except (BotoCoreError, ClientError) as exc:
        error = f"{type(exc).__name__}: bucket {bucket}: {redact_text(str(exc))}"
        return ProbeResult("s3", False, watch.ms, error[:300])


def _free_name(wanted: str, taken: dict[str, Probe]) -> str:
    name, n = wanted, 2
    while name in taken:
        name, n = f"{wanted}-{n}", n + 1
    return name


def configured_probes(config: LastgoodConfig | None = None) -> dict[str, Probe]:
    """Every dependency the configuration declares: its sources, the datasets' database, S3."""
    config = config or get_config()
    probes: dict[str, Probe] = {source.name: source_probe(source) for source in config.sources}
    if config.datasets and not any(s.url_secret == DATASETS_URL_NAME for s in config.sources):
        probes[_free_name("mongodb", probes)] = engine_probe("mongodb", "mongodb", DATASETS_URL_NAME)
    probes[_free_name("s3", probes)] = probe_s3
    return probes
