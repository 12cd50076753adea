"""Issue 15's new user (two PostgreSQL databases, one MongoDB, no Upstash): health probes exactly
the declared sources (plus S3), nothing the demo happens to declare."""

from __future__ import annotations

from pathlib import Path

from lastgood.core.config import load_config_file
from lastgood.monitoring.probes import configured_probes

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "config" / "two-postgres-one-mongodb.toml"


def test_health_probes_exactly_the_declared_sources_and_s3():
    # Given the declaration of two PostgreSQL databases and one MongoDB, no Upstash
    config = load_config_file(FIXTURE)
    # When health builds its probes from it
    probes = configured_probes(config)
    # Then it probes those three sources and S3 — no upstash, no fixed demo list
    assert set(probes) == {"app", "billing", "catalog", "s3"}
