"""The site bucket's key layout, the paths CloudFront serves, and the bundled folder's file names.

Bucket `SITE_BUCKET` (CloudFront serves `/data/<name>.json` from an origin
group — primary origin path `/live`, failover `/last-good`)::

    versions/<name>/<sha256>.json   immutable content-addressed copy
    live/data/<name>.json           what browsers get
    last-good/data/<name>.json      the last published good copy (failover origin, loader layer 2)
    history/<name>.json             counts accepted within the shrink window (not served)

Bundled folder (`lastgood.core.config.bundled_folder`: the project's `bundled/`, shipped in the layer)::

    <name>.json                     the bytes of last-good/data/<name>.json
    _bundle.json                    per dataset: sha256, count, generated_at

Every module that reads or writes these (publish, loader, bundle, monitoring)
builds the names here.
"""

from __future__ import annotations

LIVE_ORIGIN = "live"
LAST_GOOD_ORIGIN = "last-good"
VERSIONS_PREFIX = "versions/"
HISTORY_PREFIX = "history/"
BUNDLE_INDEX = "_bundle.json"  # dataset names start with [a-z0-9]: never collides with `<name>.json`


def public_path(name: str) -> str:
    """The path browsers request through CloudFront (and the one invalidated)."""
    return f"/data/{name}.json"


def live_key(name: str) -> str:
    return LIVE_ORIGIN + public_path(name)


def last_good_key(name: str) -> str:
    return LAST_GOOD_ORIGIN + public_path(name)


def version_key(name: str, sha256: str) -> str:
    return f"{VERSIONS_PREFIX}{name}/{sha256}.json"


def versions_prefix(name: str) -> str:
    """The prefix listing every version copy of one dataset."""
    return f"{VERSIONS_PREFIX}{name}/"


def history_key(name: str) -> str:
    return f"{HISTORY_PREFIX}{name}.json"


def bundled_name(name: str) -> str:
    """The file name of a dataset's copy in the bundled folder."""
    return f"{name}.json"


# The status page's public copy (opt-in: the template's `PublishStatusPage` sets
# `STATUS_PAGE_PUBLIC`, and only then may the summary write it): below `live/`, so the
# distribution's default behaviour serves it as `/status/index.html`; never a dataset path.
STATUS_PAGE_PATH = "/status/index.html"


def status_page_key() -> str:
    return LIVE_ORIGIN + STATUS_PAGE_PATH
