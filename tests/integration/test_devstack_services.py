"""The devstack's services behave like the real ones the product talks to."""

from __future__ import annotations

import base64
import subprocess

import httpx
import pytest

pytestmark = pytest.mark.devstack


def _rest(devstack, path: str = "", *, token: str | None = None, b64: bool = True) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or devstack.env['UPSTASH_REDIS_REST_TOKEN']}"}
    if b64:
        headers["Upstash-Encoding"] = "base64"
    return httpx.Client(base_url=devstack.env["UPSTASH_REDIS_REST_URL"], headers=headers, timeout=5)


def test_upstash_front_round_trips_a_binary_value_in_base64(devstack):
    # Given a value that is not valid UTF-8, written through the Redis protocol
    import valkey

    raw = b"\x00\xff\xfe\x80 test_devstack binary"
    with valkey.Valkey.from_url(devstack.env["REDIS_URL"]) as client:
        client.set(b"test_devstack:binary", raw, ex=60)

    # When it is read through the REST front with base64 encoding
    with _rest(devstack) as rest:
        reply = rest.post("", json=["GET", "test_devstack:binary"]).json()
        ok = rest.post("", json=["SET", "test_devstack:n", 7, "EX", 60]).json()

    # Then the exact bytes come back, and the status reply OK is not encoded
    assert base64.b64decode(reply["result"]) == raw
    assert ok == {"result": "OK"}


def test_upstash_front_answers_pipelines_with_an_array_including_errors(devstack):
    # Given a pipeline with a good command, a counter and an unknown command
    commands = [["SET", "test_devstack:p", "v"], ["INCR", "test_devstack:counter"], ["NOSUCHCMD"]]

    # When it is posted to /pipeline without base64 encoding
    with _rest(devstack, b64=False) as rest:
        rest.post("", json=["DEL", "test_devstack:counter"])
        replies = rest.post("/pipeline", json=commands).json()

    # Then every command has its own result or error, in order
    assert replies[0] == {"result": "OK"}
    assert replies[1] == {"result": 1}
    assert "error" in replies[2]


def test_upstash_front_multi_exec_runs_a_transaction(devstack):
    with _rest(devstack, b64=False) as rest:
        replies = rest.post(
            "/multi-exec", json=[["SET", "test_devstack:tx", "1"], ["INCRBY", "test_devstack:tx", 4]]
        ).json()
    assert replies == [{"result": "OK"}, {"result": 5}]


def test_upstash_front_rejects_a_bad_token_with_401(devstack):
    with _rest(devstack, token="wrong-token") as rest:
        response = rest.post("", json=["PING"])
    assert response.status_code == 401
    assert "error" in response.json()


@pytest.mark.parametrize(("mode", "status"), [("429", 429), ("500", 500)])
def test_upstash_front_fault_modes_answer_the_injected_status(devstack, upstash_fault, mode, status):
    # Given the front is told to misbehave
    with upstash_fault(mode), _rest(devstack) as rest:
        # When a client sends a command
        response = rest.post("", json=["PING"])
    # Then it gets the injected answer, and normal service resumes after the block
    assert response.status_code == status
    if mode == "429":
        assert "max requests limit exceeded" in response.json()["error"]
    else:
        with pytest.raises(ValueError):
            response.json()
    with _rest(devstack) as rest:
        assert base64.b64decode(rest.post("", json=["PING"]).json()["result"]) == b"PONG"


def test_upstash_front_hang_mode_times_out_clients(devstack, upstash_fault):
    with upstash_fault("hang"), _rest(devstack) as rest, pytest.raises(httpx.ReadTimeout):
        rest.post("", json=["PING"], timeout=0.3)


def test_upstash_sdk_sets_and_gets_through_the_front(devstack):
    from upstash_redis import Redis

    # Given the official SDK pointed at the devstack front
    redis = Redis(
        url=devstack.env["UPSTASH_REDIS_REST_URL"],
        token=devstack.env["UPSTASH_REDIS_REST_TOKEN"],
        rest_retries=0,
    )
    # When it writes a string with a TTL, a hash and a sorted set
    redis.set("test_devstack:sdk", "héllo wörld", ex=60)
    redis.hset("test_devstack:sdk:h", values={"a": "1", "b": "2"})
    redis.zadd("test_devstack:sdk:z", {"m": 1.5})

    # Then it reads them back as it would from Upstash
    assert redis.get("test_devstack:sdk") == "héllo wörld"
    assert 0 < redis.ttl("test_devstack:sdk") <= 60
    assert redis.hgetall("test_devstack:sdk:h") == {"a": "1", "b": "2"}
    assert redis.zrange("test_devstack:sdk:z", 0, -1, withscores=True) == [("m", 1.5)]
    redis.delete("test_devstack:sdk", "test_devstack:sdk:h", "test_devstack:sdk:z")


def test_postgres_keeps_its_data_across_stop_and_start(devstack, stopped):
    import psycopg

    # Given a row written to the app database
    url = devstack.env["DATABASE_URL"]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS test_devstack_keep (v text)")
        conn.execute("TRUNCATE test_devstack_keep")
        conn.execute("INSERT INTO test_devstack_keep VALUES ('survives')")

    # When PostgreSQL is stopped (and unreachable), then started again
    with stopped("postgres"), pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=1)

    # Then the same URL works and the row is still there
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute("SELECT v FROM test_devstack_keep").fetchall() == [("survives",)]
        conn.execute("DROP TABLE test_devstack_keep")


def test_env_file_is_shell_sourceable(devstack):
    # Given the env file the devstack wrote
    # When a POSIX shell sources it and prints the variables
    script = f'set -a; . "{devstack.env_file}"; set +a; env'
    result = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    shell_env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)

    # Then every variable has exactly the value the devstack reports
    for key, value in devstack.env.items():
        assert shell_env.get(key) == value, key
    for key in ("AWS_ENDPOINT_URL", "DATABASE_URL", "MONGODB_URI", "UPSTASH_REDIS_REST_URL", "KMS_KEY_ID"):
        assert shell_env[key]


def test_template_resources_exist_in_moto(devstack):
    import boto3

    s3 = boto3.client("s3", endpoint_url=devstack.env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    for bucket in (devstack.env["BACKUP_BUCKET"], devstack.env["SITE_BUCKET"]):
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
    secrets = boto3.client(
        "secretsmanager", endpoint_url=devstack.env["AWS_ENDPOINT_URL"], region_name="us-east-1"
    )
    assert (
        secrets.get_secret_value(SecretId="lastgood/admin-key")["SecretString"] == devstack.env["ADMIN_KEY"]
    )


def test_sns_alerts_fan_out_to_the_local_queue(devstack):
    import boto3

    env = devstack.env
    sns = boto3.client("sns", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    sqs = boto3.client("sqs", endpoint_url=env["AWS_ENDPOINT_URL"], region_name="us-east-1")
    sns.publish(TopicArn=env["ALERT_TOPIC_ARN"], Message="test_devstack alert", Subject="t")
    bodies = []
    for _ in range(5):
        messages = sqs.receive_message(QueueUrl=env["ALERT_QUEUE_URL"], MaxNumberOfMessages=10).get(
            "Messages", []
        )
        bodies += [m["Body"] for m in messages]
        if "test_devstack alert" in bodies:
            break
    assert "test_devstack alert" in bodies


def test_seeding_again_restores_exactly_the_seed_sizes(devstack):
    from pymongo import MongoClient

    # Given the session's seeded stack, seeded once more (idempotent)
    devstack.seed()

    client = MongoClient(devstack.env["MONGODB_URI"], serverSelectionTimeoutMS=3000)
    try:
        db = client[devstack.env["MONGODB_DB_NAME"]]
        counts = {
            name: len(list(db[name].find({}, {"_id": 1}))) for name in ("prompts", "patterns", "learning")
        }
    finally:
        client.close()
    assert counts == {"prompts": 296, "patterns": 18, "learning": 20}


def test_mongodb_keeps_its_data_across_stop_and_start(devstack, stopped):
    from pymongo import MongoClient

    # Given a document in a test collection
    client = MongoClient(devstack.env["MONGODB_URI"], serverSelectionTimeoutMS=2000)
    coll = client[devstack.env["MONGODB_DB_NAME"]]["test_devstack_keep"]
    coll.delete_many({})
    coll.insert_one({"_id": "k1", "v": "survives"})
    client.close()

    # When the MongoDB server is stopped and started again
    with stopped("mongodb"):
        pass

    # Then the same URI answers and the document is still there
    client = MongoClient(devstack.env["MONGODB_URI"], serverSelectionTimeoutMS=5000)
    try:
        coll = client[devstack.env["MONGODB_DB_NAME"]]["test_devstack_keep"]
        assert coll.find_one({"_id": "k1"}) == {"_id": "k1", "v": "survives"}
        coll.drop()
    finally:
        client.close()


def test_upstash_front_accepts_path_style_commands(devstack):
    # Given a value set through a JSON command
    with _rest(devstack, b64=False) as rest:
        rest.post("", json=["SET", "test_devstack:path", "a b/c"])
        # When it is read with the URL path form Upstash also accepts
        reply = rest.get("/get/test_devstack:path")
    # Then the value comes back as text
    assert reply.json() == {"result": "a b/c"}
