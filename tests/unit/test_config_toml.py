"""Issue 15, config part: one `lastgood.toml`, validated whole with line-precise messages.

Items 1 (the file, its resolution, no packaged default), 2 (the checks behind `config check`
and function start), 5 (bundled copies are the project's) and the "Bad input" list: each bad
file is refused with `<file>:<line>: <where>: <why>`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lastgood.backups import retention
from lastgood.core import config as config_module
from lastgood.core.config import (
    check_config_file,
    default_config_path,
    get_config,
    load_config_file,
    require_secrets,
    reset_config,
)
from lastgood.core.config_model import RETENTION_COUNT_RULES, RETENTION_WINDOW_RULES, secret_kind
from lastgood.core.errors import ConfigError
from lastgood.core.schedule import check_schedule
from lastgood.core.settings import get_secret, package_dir, reset_settings
from lastgood.core.toml_lines import key_lines
from lastgood.site.loader import missing_bundled_copies

from tests.helpers.kv_alerts import load_handler

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "config"

PG = """
[[sources]]
name = "app"
engine = "postgres"
url_secret = "DATABASE_URL"
"""


def write(tmp_path: Path, text: str, name: str = "lastgood.toml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors(path: Path) -> list[str]:
    return [str(p) for p in check_config_file(path).errors]


@pytest.fixture
def fresh(monkeypatch):
    """Caches reset around a test that changes which config the process uses."""
    reset_settings()
    reset_config()
    yield monkeypatch
    reset_settings()
    reset_config()


# ---------------------------------------------------------------- item 1: the file


def test_case_1_lastgood_toml_at_the_project_root_is_the_default_and_none_is_an_error(tmp_path, fresh):
    # Given no LASTGOOD_CONFIG, an empty working directory and a project root without a file
    fresh.delenv("LASTGOOD_CONFIG")
    fresh.chdir(tmp_path)
    fresh.setattr(config_module, "project_root", lambda: tmp_path)
    # When the config is located / Then it is an error naming the file to create (no silent default)
    with pytest.raises(ConfigError) as caught:
        default_config_path()
    message = str(caught.value)
    assert f"create {tmp_path / 'lastgood.toml'}" in message
    assert "lastgood.example.toml" in message and "LASTGOOD_CONFIG" in message
    with pytest.raises(ConfigError, match="no config file"):
        get_config()
    # When the project root gets a lastgood.toml / Then that is the file, and it is read as TOML
    root_file = write(tmp_path, PG)
    reset_config()
    assert default_config_path() == root_file
    assert [s.name for s in get_config().sources] == ["app"]
    # When LASTGOOD_CONFIG names another file / Then it wins
    other = write(tmp_path, PG.replace('"app"', '"other"'), "other.toml")
    fresh.setenv("LASTGOOD_CONFIG", str(other))
    reset_settings()
    reset_config()
    assert [s.name for s in get_config().sources] == ["other"]


def test_case_1_the_package_ships_no_demo_config_and_no_sample_data():
    # Given the lastgood package as installed from the source tree
    pkg = package_dir()
    # Then it holds no config file and no bundled data: those are the project's (or the demo's)
    assert not (pkg / "config").exists()
    assert not (pkg / "bundled").exists()
    assert not list(pkg.rglob("*.toml")) and not [p for p in pkg.rglob("*.json")]


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "lastgood.toml",
        ROOT / "lastgood.example.toml",
        ROOT / "devstack" / "demo" / "lastgood.toml",
        FIXTURES / "demo.toml",
        FIXTURES / "two-postgres-one-mongodb.toml",
    ],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_case_1_every_checked_in_config_is_valid(path):
    # Given a config file the repository ships / When checked / Then no errors
    check = check_config_file(path, environ={})
    assert check.errors == [], [str(e) for e in check.errors]
    assert check.config is not None and check.config.sources


def test_case_1_the_suite_and_the_demo_declare_the_same_setup():
    # Given the suite's fixture and the demo's config / Then they declare the same sources and datasets
    suite = load_config_file(FIXTURES / "demo.toml")
    demo = load_config_file(ROOT / "devstack" / "demo" / "lastgood.toml")
    assert suite.sources == demo.sources and suite.datasets == demo.datasets
    assert [s.name for s in suite.sources] == ["postgres", "mongodb", "upstash"]


def test_case_1_the_issues_new_user_declares_two_postgres_and_one_mongodb_and_no_upstash():
    config = load_config_file(FIXTURES / "two-postgres-one-mongodb.toml")
    assert [(s.name, s.engine) for s in config.sources] == [
        ("app", "postgres"),
        ("billing", "postgres"),
        ("catalog", "mongodb"),
    ]
    billing = config.source("billing")
    assert (billing.rpo_seconds, billing.rto_seconds, billing.schedule) == (300, 3600, "rate(5 minutes)")


# ---------------------------------------------------------------- bad input, line by line


def test_case_2_a_toml_syntax_error_names_its_line(tmp_path):
    # Given a file whose line 4 is not TOML (an unquoted string)
    path = write(tmp_path, PG + "schedule = every hour\n")
    # When checked / Then one error with tomllib's line
    assert errors(path) == [f"{path}:5: TOML syntax error: Invalid value (column 12)"]
    # And function start refuses it with the same message
    with pytest.raises(ConfigError) as caught:
        load_config_file(path)
    assert str(caught.value) == f"{path}:5: TOML syntax error: Invalid value (column 12)"


def test_case_2_a_source_named_twice_names_both_lines(tmp_path):
    path = write(tmp_path, PG + PG)
    assert errors(path) == [
        f"{path}:7: sources[1].name: duplicate source names: app (also sources[0], line 2)"
    ]


def test_case_2_a_dataset_named_twice_is_refused_too(tmp_path):
    path = write(
        tmp_path, '[[datasets]]\nname = "a"\ncollection = "a"\n\n[[datasets]]\nname = "a"\ncollection = "b"\n'
    )
    assert errors(path) == [
        f"{path}:6: datasets[1].name: duplicate dataset names: a (also datasets[0], line 2)"
    ]


def test_case_2_an_unknown_engine_names_the_line(tmp_path):
    path = write(tmp_path, PG.replace('"postgres"', '"oracle"'))
    assert errors(path) == [
        f"{path}:3: sources[0].engine: unknown engine 'oracle': expected postgres, mongodb, upstash or redis"
    ]


@pytest.mark.parametrize(
    ("schedule", "why"),
    [
        ("cron(0 7 * * *)", "6 fields"),
        ("cron(0 7 * * MON *)", "exactly one of day-of-month and day-of-week must be '?'"),
        ("cron(61 7 * * ? *)", "minutes field '61'"),
        ("cron(0 7 ? FOO MON *)", "month field 'FOO'"),
        ("rate(0 hours)", "positive whole number"),
        ("rate(1 week)", "minute(s), hour(s) or day(s)"),
        ("rate(1hour)", "expected rate(value unit)"),
        ("every hour", "not a Scheduler expression"),
        ("at(2030-13-01T00:00:00)", "not a valid date"),
        (" rate(1 hour)", "not a Scheduler expression"),
    ],
)
def test_case_2_a_schedule_that_is_not_a_scheduler_expression_names_the_line(tmp_path, schedule, why):
    path = write(tmp_path, PG + f'schedule = "{schedule}"\n')
    [message] = errors(path)
    assert message.startswith(f"{path}:5: sources[0].schedule: ")
    assert why in message


@pytest.mark.parametrize(
    "schedule",
    [
        "rate(1 hour)",
        "rate(15 minutes)",
        "rate(7 days)",
        "cron(0 7 * * ? *)",
        "cron(30 2 ? * MON-FRI *)",
        "cron(0/15 * * * ? *)",
        "cron(0 12 L * ? 2030)",
        "cron(0 9 ? * 2#1 *)",
        "cron(0 18 15W JAN,JUL ? *)",
        "at(2030-01-01T00:00:00)",
    ],
)
def test_case_2_scheduler_expressions_are_accepted(schedule):
    check_schedule(schedule)


@pytest.mark.parametrize(
    ("policy", "line"),
    [
        ("retention = { keep_daily = 0 }\n", 5),
        ("retention = {}\n", 5),
        ("\n[sources.retention]\nkeep_last = 0\nkeep_hourly = 0\n", 6),
    ],
    ids=["all-zero", "empty", "table"],
)
def test_case_2_a_retention_policy_that_keeps_nothing_names_the_line(tmp_path, policy, line):
    path = write(tmp_path, PG + policy)
    [message] = errors(path)
    assert message.startswith(f"{path}:{line}: sources[0].retention: this retention policy keeps nothing")


def test_case_2_a_retention_rule_that_prune_cannot_read_names_the_line(tmp_path):
    path = write(tmp_path, PG + 'retention = { keep_daily = 7, keep_within = "2 weeks" }\n')
    [message] = errors(path)
    assert message.startswith(f"{path}:5: sources[0].retention: keep_within: invalid duration")


def test_case_2_the_retention_rules_are_the_ones_prune_reads():
    assert (*RETENTION_COUNT_RULES, *RETENTION_WINDOW_RULES) == retention.KNOWN_KEYS


def test_case_2_a_dataset_without_its_collection_is_refused_and_existence_is_left_to_health(tmp_path):
    path = write(tmp_path, '[[datasets]]\nname = "products"\ncollection = ""\n')
    [message] = errors(path)
    assert message.startswith(
        f"{path}:3: datasets[0].collection: a dataset needs the name of its MongoDB collection"
    )
    assert "reported by health and regenerate" in message


def test_case_2_an_unknown_key_names_its_line_and_the_known_keys(tmp_path):
    path = write(tmp_path, PG + "shedule = 'rate(1 hour)'\n")
    [message] = errors(path)
    assert message.startswith(f"{path}:5: sources[0].shedule: unknown key (known keys: name, engine")
    assert "schedule" in message


def test_case_2_a_wrong_type_names_the_line_inside_a_table(tmp_path):
    path = write(tmp_path, '[[datasets]]\nname = "p"\ncollection = "p"\nmin_count = "ten"\n')
    [message] = errors(path)
    assert message.startswith(f"{path}:4: datasets[0].min_count: ")


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("DATABASE_URL", "env"),
        ("arn:aws:secretsmanager:eu-west-1:123456789012:secret:app-db-AbCdEf", "secretsmanager"),
        ("arn:aws:ssm:eu-west-1:123456789012:parameter/lastgood/db", "ssm"),
        ("/lastgood/prod/db-url", "ssm"),
    ],
)
def test_case_2_secrets_are_named_by_variable_arn_or_ssm_parameter(ref, kind):
    assert secret_kind(ref) == kind


def test_case_2_a_secret_that_names_nothing_is_refused_on_its_line(tmp_path):
    path = write(tmp_path, PG.replace('"DATABASE_URL"', '"postgresql://user:pw@db/app"'))
    [message] = errors(path)
    assert message.startswith(f"{path}:4: sources[0].url_secret: ")
    assert "does not name a secret" in message


def test_case_2_a_secret_named_but_not_set_warns_at_check_and_fails_the_function_start(tmp_path, fresh):
    # Given a source whose secret variable is provided nowhere
    path = write(tmp_path, PG.replace("DATABASE_URL", "BILLING_DATABASE_URL"))
    for name in ("BILLING_DATABASE_URL", "BILLING_DATABASE_URL_SECRET_ARN", "BILLING_DATABASE_URL_SSM_PARAM"):
        fresh.delenv(name, raising=False)
    # When checked / Then valid, with a warning naming the variable and its line (a deploy-time parameter)
    check = check_config_file(path, environ={})
    assert check.errors == []
    assert [str(w) for w in check.warnings if "url_secret" in str(w)] == [
        f"{path}:4: sources[0].url_secret: BILLING_DATABASE_URL is not set (nor BILLING_DATABASE_URL_SECRET_ARN"
        " / BILLING_DATABASE_URL_SSM_PARAM): the deployment must provide it"
    ]
    # When a function starts with that config / Then it refuses before doing anything
    fresh.setenv("LASTGOOD_CONFIG", str(path))
    reset_settings()
    reset_config()
    with pytest.raises(ConfigError) as caught:
        require_secrets(["app"])
    assert str(caught.value).startswith(f"{path}:4: sources[0].url_secret: BILLING_DATABASE_URL is not set")
    # And with the variable's ARN provided (as the deployment does) / Then it starts
    fresh.setenv("BILLING_DATABASE_URL_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    require_secrets(["app"])


def test_case_2_the_backup_function_refuses_an_unset_secret_before_it_runs(tmp_path, fresh, lambda_context):
    # Given a config whose source's secret is not provided, and a backup run that must not start
    path = write(tmp_path, PG.replace("DATABASE_URL", "NOWHERE_DATABASE_URL"))
    fresh.setenv("LASTGOOD_CONFIG", str(path))
    reset_settings()
    reset_config()
    handler = load_handler("backup")
    fresh.setitem(handler.__globals__, "run_backup", lambda *a, **k: pytest.fail("the backup ran"))
    # When the scheduled backup is invoked / Then it fails at start naming the variable and the line
    with pytest.raises(
        ConfigError, match=rf"^{path}:4: sources\[0\]\.url_secret: NOWHERE_DATABASE_URL is not set"
    ):
        handler({"source": "app"}, lambda_context)


def test_case_2_function_start_refuses_an_invalid_file_whole_with_the_check_messages(tmp_path, fresh):
    # Given a file with two problems (one source fine, one broken)
    path = write(
        tmp_path,
        PG + PG.replace('"app"', '"ok2"').replace('"postgres"', '"oracle"') + 'schedule = "hourly"\n',
    )
    fresh.setenv("LASTGOOD_CONFIG", str(path))
    reset_settings()
    reset_config()
    expected = errors(path)
    assert len(expected) == 2
    # When a function loads its config / Then nothing of it is applied: every problem, one per line
    with pytest.raises(ConfigError) as caught:
        get_config()
    assert str(caught.value).splitlines() == expected


def test_case_2_a_secret_named_by_arn_is_read_from_there(fresh):
    # Given a source secret named by its Secrets Manager ARN (no variable involved)
    from aws_lambda_powertools.utilities import parameters

    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db-AbCdEf"
    asked = []
    fresh.setattr(parameters, "get_secret", lambda name, **_: asked.append(name) or "postgresql://db/app")
    get_secret.cache_clear()
    # When resolved / Then Secrets Manager is asked for that ARN
    assert get_secret(arn) == "postgresql://db/app"
    assert asked == [arn]
    get_secret.cache_clear()


# ---------------------------------------------------------------- the line map


def test_key_lines_follow_tables_arrays_and_multiline_values():
    text = textwrap.dedent(
        '''
        top = 1
        [[sources]]
        name = "a"
        note = """
        [[sources]]  # inside a string
        """
        list = [
          1,
          { x = "]" },
        ]
        [sources.retention]
        keep_daily = 1
        [[sources]]
        "quoted key" = 'x'
        dotted.key = 2
        [[datasets]]
        [datasets.schema.properties]
        _id = { type = "string" }
        '''
    ).lstrip("\n")
    lines = key_lines(text)
    assert lines[("top",)] == 1
    assert lines[("sources", 0)] == 2
    assert lines[("sources", 0, "note")] == 4
    assert lines[("sources", 0, "list")] == 7
    assert lines[("sources", 0, "retention", "keep_daily")] == 12
    assert lines[("sources", 1)] == 13
    assert lines[("sources", 1, "quoted key")] == 14
    assert lines[("sources", 1, "dotted", "key")] == 15
    assert lines[("datasets", 0, "schema", "properties", "_id")] == 18
    assert ("sources", 2) not in lines


# ---------------------------------------------------------------- item 5: bundled copies


def test_case_5_datasets_without_a_bundled_copy_are_listed(tmp_path):
    # Given the suite's three datasets and a bundled folder holding only prompts
    config = load_config_file(FIXTURES / "demo.toml")
    (tmp_path / "prompts.json").write_text("[]")
    # Then the other two are the missing ones; the demo's folder has all three
    assert missing_bundled_copies(tmp_path, config) == ["patterns", "learning"]
    assert missing_bundled_copies(ROOT / "devstack" / "demo" / "bundled", config) == []


def test_case_5_the_bundled_folder_is_the_projects_next_to_its_config(tmp_path, fresh):
    # Given a project config declaring its bundled folder, and no LASTGOOD_BUNDLED_DIR
    path = write(tmp_path, 'bundled_dir = "copies"\n' + PG)
    fresh.setenv("LASTGOOD_CONFIG", str(path))
    fresh.delenv("LASTGOOD_BUNDLED_DIR", raising=False)
    reset_settings()
    reset_config()
    # Then the loader (and `lastgood bundle`) use <config dir>/copies
    from lastgood.site.loader import bundled_dir

    assert bundled_dir() == tmp_path / "copies"
