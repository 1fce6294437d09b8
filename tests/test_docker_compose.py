"""The docker-compose stack, checked without Docker (these machines have no Docker engine).

The compose file is parsed with PyYAML (``<<`` merge keys resolved) and checked for what would otherwise only
fail at ``docker compose up``: missing services, dangling ``depends_on``, clashing host ports, webserver and
daemon disagreeing on storage or zones, zones outside the MinIO bucket, a source PostgreSQL without logical
decoding, literal secrets, and files the stack references but the repository lacks. Each check returns its
problems; the ``*_detects_*`` tests break a copy of the file and prove the check then fails.
"""

from __future__ import annotations

import copy
import re
import shutil
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from zones import ZoneName, open_zone
from zones.config import load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
DAGSTER_YAML = ROOT / "deploy" / "dagster.yaml"
DOCKER_ZONES = ROOT / "lakegate.docker.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
PYPROJECT = ROOT / "pyproject.toml"

EXPECTED_SERVICES = {
    "dagster-webserver",
    "dagster-daemon",
    "dagster-postgres",  # Dagster run/event/schedule storage
    "minio",
    "minio-init",
    "fake-gcs",
    "kafka",
    "source-postgres",
}
DAGSTER_SERVICES = ("dagster-webserver", "dagster-daemon")
ONE_SHOT_SERVICES = {"minio-init"}
MINIO_SERVICE, MINIO_S3_PORT = "minio", 9000
DAGSTER_HOME = "/opt/dagster/home"
LAKEGATE_CONFIG = "/app/lakegate.docker.yaml"

# The only literal values allowed as defaults of secret-like variables (``${VAR:-placeholder}``): obvious
# local-development stand-ins. A real deployment sets the variables; nothing else may appear in the file.
DEV_PLACEHOLDERS = frozenset(
    {
        "dev-only-change-me",  # every password / secret key default
        "lakegate",  # MinIO root user, which doubles as the S3 access key id
    }
)
# Secrets that must never have a default, not even a placeholder: compose refuses to start without them.
REQUIRED_SECRETS = frozenset({"LAKEGATE_PII_KEY"})
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|KEY", re.IGNORECASE)
_REFERENCE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
_URL_PASSWORD = re.compile(r"://[^/:@\s]+:(?P<password>[^@\s]+)@")


# ------------------------------------------------------------------------------------------------ helpers
def load_compose() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(document, dict) and isinstance(document.get("services"), dict), (
        f"{COMPOSE_FILE}: expected a mapping with 'services'"
    )
    return document


@pytest.fixture
def compose() -> dict[str, Any]:
    return load_compose()


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's environment as a dict (compose accepts a mapping or a list of ``KEY=VALUE``)."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def interpolate(value: str, variables: Mapping[str, str]) -> str:
    """Compose variable interpolation: ``${V}``, ``${V:-d}``, ``${V-d}``, ``${V:?e}``, ``${V?e}``, ``$$``."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = name in variables
        empty = not variables.get(name)
        if op in {":-", "-"} and (not present or (op == ":-" and empty)):
            return arg
        if op in {":?", "?"} and (not present or (op == ":?" and empty)):
            raise KeyError(f"{name} is required: {arg}")
        return variables.get(name, "")

    return _REFERENCE.sub(one, value.replace("$$", "\0")).replace("\0", "$")


def host_ports(service: Mapping[str, Any]) -> list[str]:
    """Published host ports as ``port/protocol`` (short and long syntax)."""
    published = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            if entry.get("published") is not None:
                published.append(f"{entry['published']}/{entry.get('protocol', 'tcp')}")
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.split(":")
        if len(parts) >= 2:  # [host_ip:]host:container; a lone container port gets an ephemeral host port
            published.append(f"{parts[-2]}/{protocol or 'tcp'}")
    return published


def bucket_created_by_init(document: Mapping[str, Any]) -> set[str]:
    """Buckets the minio-init job creates (``mc mb [flags] <alias>/<bucket>``)."""
    command = document["services"]["minio-init"].get("command") or []
    text = " ".join(command) if isinstance(command, list) else str(command)
    return set(re.findall(r"mc mb(?: --?[\w-]+)* \w+/([a-z0-9][a-z0-9.-]+)", text))


# ------------------------------------------------------------------------------------------------- checks
def missing_services(document: Mapping[str, Any]) -> list[str]:
    return sorted(EXPECTED_SERVICES - set(document["services"]))


def dependency_problems(document: Mapping[str, Any]) -> list[str]:
    services = document["services"]
    problems = []
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        targets = {d: {} for d in depends} if isinstance(depends, list) else depends
        for target, options in targets.items():
            if target not in services:
                problems.append(f"{name} depends on unknown service {target}")
                continue
            condition = (options or {}).get("condition", "service_started")
            if condition == "service_healthy" and not services[target].get("healthcheck"):
                problems.append(f"{name} waits for {target} to be healthy but {target} has no healthcheck")
            if condition == "service_completed_successfully" and target not in ONE_SHOT_SERVICES:
                problems.append(f"{name} waits for {target} to exit, but {target} is a long-running service")
    return problems


def duplicate_host_ports(document: Mapping[str, Any]) -> list[str]:
    owners: dict[str, list[str]] = {}
    for name, service in document["services"].items():
        for port in host_ports(service):
            owners.setdefault(port, []).append(name)
    return [f"host port {port} published by {', '.join(who)}" for port, who in owners.items() if len(who) > 1]


def _shared_keys(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k.startswith(("DAGSTER_", "LAKEGATE_", "AWS_"))}


def dagster_divergence(document: Mapping[str, Any]) -> list[str]:
    """Webserver and daemon must run one image with one Dagster storage and one zone layout."""
    web, daemon = (document["services"][name] for name in DAGSTER_SERVICES)
    problems = []
    for key in ("image", "build"):
        if web.get(key) != daemon.get(key):
            problems.append(f"{key} differs: webserver {web.get(key)!r}, daemon {daemon.get(key)!r}")
    if not web.get("image"):
        problems.append("the Dagster services name no image")
    web_env, daemon_env = _shared_keys(environment(web)), _shared_keys(environment(daemon))
    for key in sorted(web_env.keys() | daemon_env.keys()):
        if web_env.get(key) != daemon_env.get(key):
            problems.append(f"{key} differs: webserver {web_env.get(key)!r}, daemon {daemon_env.get(key)!r}")
    for key, wanted in {"DAGSTER_HOME": DAGSTER_HOME, "LAKEGATE_CONFIG": LAKEGATE_CONFIG}.items():
        if web_env.get(key) != wanted:
            problems.append(f"{key} must be {wanted}, is {web_env.get(key)!r}")
    return problems


def zone_problems(document: Mapping[str, Any]) -> list[str]:
    """Every zone URL of the Dagster services is a prefix of a bucket minio-init creates, reached on MinIO."""
    buckets = bucket_created_by_init(document)
    problems = [] if buckets else ["minio-init creates no bucket (expected `mc mb ... <alias>/<bucket>`)"]
    for name in DAGSTER_SERVICES:
        env = environment(document["services"][name])
        for zone in ZoneName:
            key = f"LAKEGATE_ZONE_{zone.value.upper()}_URL"
            url = env.get(key)
            match = re.fullmatch(r"s3://([^/]+)/(.+)", url or "")
            if not match:
                problems.append(f"{name}: {key} must be s3://<bucket>/<prefix>, is {url!r}")
            elif match[1] not in buckets:
                problems.append(f"{name}: {key}={url} is outside the MinIO bucket(s) {sorted(buckets)}")
        endpoint = env.get("AWS_ENDPOINT_URL", "")
        if endpoint != f"http://{MINIO_SERVICE}:{MINIO_S3_PORT}":
            problems.append(f"{name}: AWS_ENDPOINT_URL must reach the minio service, is {endpoint!r}")
        minio = environment(document["services"].get(MINIO_SERVICE, {}))
        for key, root in (
            ("AWS_ACCESS_KEY_ID", "MINIO_ROOT_USER"),
            ("AWS_SECRET_ACCESS_KEY", "MINIO_ROOT_PASSWORD"),
        ):
            if env.get(key) != minio.get(root):
                problems.append(
                    f"{name}: {key} is {env.get(key)!r} but MinIO's {root} is {minio.get(root)!r}"
                )
    env = environment(document["services"][DAGSTER_SERVICES[0]])
    urls = [env.get(f"LAKEGATE_ZONE_{zone.value.upper()}_URL") or "" for zone in ZoneName]
    for i, url in enumerate(urls):
        if any(other == url or other.startswith(url + "/") for j, other in enumerate(urls) if j != i):
            problems.append(f"zone location {url} is shared with or contains another zone: {urls}")
    return problems


def replication_problems(document: Mapping[str, Any]) -> list[str]:
    service = document["services"].get("source-postgres", {})
    command = service.get("command") or []
    tokens = command.split() if isinstance(command, str) else [str(t) for t in command]
    problems = []
    if not str(service.get("image", "")).startswith("postgres:15"):
        problems.append(f"source-postgres must run postgres:15, runs {service.get('image')!r}")
    settings = [tokens[i + 1] for i, t in enumerate(tokens[:-1]) if t == "-c"]
    settings += [t[2:] for t in tokens if t.startswith("--")]  # postgres also takes --name=value
    settings = [s.replace(" ", "").partition("=") for s in settings]
    settings = {f"{name.replace('-', '_')}={value}" for name, _, value in settings}
    if "wal_level=logical" not in settings:
        problems.append(f"source-postgres does not start with -c wal_level=logical (command: {tokens})")
    return problems


def _secret_value_problem(where: str, value: str) -> str | None:
    match = _REFERENCE.fullmatch(value.strip())
    if not match:
        return f"{where} holds a literal value; use ${{VARIABLE}} (with a dev placeholder default at most)"
    name, op, arg = match["name"], match["op"], match["arg"]
    if op in {":-", "-"} and arg not in DEV_PLACEHOLDERS:
        return f"{where} defaults to {arg!r}, not a documented dev placeholder {sorted(DEV_PLACEHOLDERS)}"
    if name in REQUIRED_SECRETS and op not in {":?", "?"}:
        return f"{where} must be required with ${{{name}:?message}}, never defaulted"
    return None


def literal_secrets(document: Mapping[str, Any]) -> list[str]:
    problems = []
    for name, service in document["services"].items():
        for key, value in environment(service).items():
            where = f"{name}: {key}"
            if _SECRET_NAME.search(key) and (problem := _secret_value_problem(where, value)):
                problems.append(problem)
            for embedded in _URL_PASSWORD.finditer(value):
                if problem := _secret_value_problem(
                    f"{where} (password inside the URL)", embedded["password"]
                ):
                    problems.append(problem)
    return problems


def interpolated_variables(document: Mapping[str, Any]) -> set[str]:
    """Every variable the compose file reads from the operator's shell or ``.env`` (``$$`` is an escape)."""

    def walk(node: Any) -> set[str]:
        if isinstance(node, str):
            return {m["name"] for m in _REFERENCE.finditer(node.replace("$$", ""))}
        if isinstance(node, Mapping):
            return set().union(*(walk(v) for v in node.values()), set())
        if isinstance(node, list):
            return set().union(*(walk(v) for v in node), set())
        return set()

    return walk(document)


def env_example_problems(document: Mapping[str, Any], example: str) -> list[str]:
    """``.env.example`` names exactly the variables the stack reads, with no value filled in."""
    listed: dict[str, str] = {}
    for line in example.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            listed[name.strip()] = value.strip()
    wanted = interpolated_variables(document)
    problems = [f".env.example lacks {name}" for name in sorted(wanted - listed.keys())]
    problems += [
        f".env.example lists {name}, which the stack never reads" for name in sorted(listed.keys() - wanted)
    ]
    problems += [
        f".env.example fills in {name}: leave values empty" for name, value in listed.items() if value
    ]
    return problems


def dockerfile_problems(dockerfile: str, pyproject: str) -> list[str]:
    """The image copies every package ``pip install .`` must find (pyproject's packages.find include)."""
    include = tomllib.loads(pyproject)["tool"]["setuptools"]["packages"]["find"]["include"]
    copied = {src for src, _ in re.findall(r"^COPY (\S+) (\S+)$", dockerfile, re.MULTILINE)}
    packages = sorted(pattern.rstrip("*") for pattern in include)
    return [f"Dockerfile does not COPY package {package}/" for package in packages if package not in copied]


def missing_healthchecks(document: Mapping[str, Any]) -> list[str]:
    return sorted(
        name
        for name, service in document["services"].items()
        if name not in ONE_SHOT_SERVICES and not (service.get("healthcheck") or {}).get("test")
    )


# ----------------------------------------------------------------------------------- the real compose file
def test_expected_services_exist(compose: dict[str, Any]) -> None:
    assert missing_services(compose) == []


def test_every_depends_on_target_exists_and_can_satisfy_its_condition(compose: dict[str, Any]) -> None:
    assert dependency_problems(compose) == []
    for name in DAGSTER_SERVICES:
        depends = compose["services"][name]["depends_on"]
        assert depends["dagster-postgres"]["condition"] == "service_healthy"
        assert depends["minio-init"]["condition"] == "service_completed_successfully"


def test_published_host_ports_are_unique(compose: dict[str, Any]) -> None:
    assert duplicate_host_ports(compose) == []
    assert "3000/tcp" in host_ports(compose["services"]["dagster-webserver"])


def test_webserver_and_daemon_share_image_storage_and_zones(compose: dict[str, Any]) -> None:
    assert dagster_divergence(compose) == []


def test_every_zone_points_into_the_minio_bucket(compose: dict[str, Any]) -> None:
    assert zone_problems(compose) == []


def test_source_postgres_enables_logical_decoding(compose: dict[str, Any]) -> None:
    assert replication_problems(compose) == []


def test_no_literal_secret_values(compose: dict[str, Any]) -> None:
    assert literal_secrets(compose) == []
    pii_key = environment(compose["services"]["dagster-webserver"])["LAKEGATE_PII_KEY"]
    with pytest.raises(KeyError, match="LAKEGATE_PII_KEY"):
        interpolate(pii_key, {})  # compose refuses to start without the PII key


def test_long_running_services_have_healthchecks(compose: dict[str, Any]) -> None:
    assert missing_healthchecks(compose) == []


def test_referenced_files_exist_and_agree(compose: dict[str, Any]) -> None:
    for path in (DOCKERFILE, DAGSTER_YAML, DOCKER_ZONES):
        assert path.is_file(), f"{path} is referenced by the stack but missing"
    build = compose["services"]["dagster-webserver"]["build"]
    assert (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^FROM python:3\.11-slim\b", dockerfile, re.MULTILINE)
    assert re.search(r"^RUN pip install \.(\s|$)", dockerfile, re.MULTILINE)
    copies = dict(re.findall(r"^COPY (\S+) (\S+)$", dockerfile, re.MULTILINE))
    assert copies.get("deploy/dagster.yaml") == f"{DAGSTER_HOME}/dagster.yaml"
    assert copies.get("lakegate.docker.yaml") == LAKEGATE_CONFIG
    assert dockerfile_problems(dockerfile, PYPROJECT.read_text()) == []


def test_dockerfile_check_notices_a_package_left_out() -> None:
    dockerfile = DOCKERFILE.read_text()
    broken = re.sub(r"^COPY pipelines \S+\n", "", dockerfile, flags=re.MULTILINE)
    assert broken != dockerfile
    assert dockerfile_problems(broken, PYPROJECT.read_text()) == [
        "Dockerfile does not COPY package pipelines/"
    ]


def test_env_example_lists_exactly_the_variables_the_stack_reads(compose: dict[str, Any]) -> None:
    assert "LAKEGATE_PII_KEY" in interpolated_variables(compose)
    assert env_example_problems(compose, ENV_EXAMPLE.read_text()) == []
    broken = copy.deepcopy(compose)
    _set_env(broken, "minio", "MINIO_REGION", "${MINIO_REGION:-eu-west-1}")
    assert env_example_problems(broken, ENV_EXAMPLE.read_text()) == [".env.example lacks MINIO_REGION"]


def test_dagster_yaml_is_a_valid_postgres_instance_fed_by_the_compose_env(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    from dagster._core.instance.config import dagster_instance_config

    shutil.copy(DAGSTER_YAML, tmp_path / "dagster.yaml")
    config, _ = dagster_instance_config(str(tmp_path))  # schema validation, no database needed
    database = config["storage"]["postgres"]["postgres_db"]
    env = environment(compose["services"]["dagster-daemon"])
    for field in ("hostname", "port", "db_name", "username", "password"):
        assert isinstance(database[field], dict) and set(database[field]) == {"env"}, (
            f"deploy/dagster.yaml: storage.postgres.postgres_db.{field} must come from {{env: VARIABLE}}"
        )
        assert database[field]["env"] in env, f"{database[field]['env']} is not set for the Dagster services"
    assert env[database["hostname"]["env"]] in compose["services"]
    storage_pg = environment(compose["services"][env[database["hostname"]["env"]]])
    assert storage_pg["POSTGRES_DB"] == env[database["db_name"]["env"]]
    assert storage_pg["POSTGRES_USER"] == env[database["username"]["env"]]
    assert storage_pg["POSTGRES_PASSWORD"] == env[database["password"]["env"]]


def test_docker_zone_config_loads_with_the_compose_environment(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shell = {"LAKEGATE_PII_KEY": "test-only-pii-key"}  # what the operator exports; everything else defaulted
    env = {k: interpolate(v, shell) for k, v in environment(compose["services"]["dagster-daemon"]).items()}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert env["LAKEGATE_CONFIG"] == LAKEGATE_CONFIG

    config = load_config(path=DOCKER_ZONES)
    for zone in ZoneName:
        assert config.zone(zone).url == env[f"LAKEGATE_ZONE_{zone.value.upper()}_URL"]
        storage = config.zone(zone).resolved_storage()
        assert storage == {
            "key": env["AWS_ACCESS_KEY_ID"],
            "secret": env["AWS_SECRET_ACCESS_KEY"],
            "endpoint_url": env["AWS_ENDPOINT_URL"],
        }
        options = open_zone(zone, config).delta_options()
        assert options["aws_endpoint_url"] == f"http://{MINIO_SERVICE}:{MINIO_S3_PORT}"
        assert options["aws_allow_http"] == "true"
    assert config.zone(ZoneName.PII).classification == "restricted"
    assert config.zone(ZoneName.LANDING).classification == "external"

    # The file alone (no LAKEGATE_ZONE_* overrides) must describe the same zones: two places, one answer.
    for zone in ZoneName:
        monkeypatch.delenv(f"LAKEGATE_ZONE_{zone.value.upper()}_URL")
    from_file = load_config(path=DOCKER_ZONES)
    assert {z: from_file.zone(z).url for z in ZoneName} == {z: config.zone(z).url for z in ZoneName}


# ---------------------------------------------------------------------- the checks fail on a broken file
def _service(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["services"][name]


def _set_env(doc: dict[str, Any], service: str, key: str, value: str) -> None:
    # After YAML merging both Dagster services may share one environment object: give each its own.
    _service(doc, service)["environment"] = {**environment(_service(doc, service)), key: value}


BREAKAGES: dict[str, tuple[Callable[[dict[str, Any]], list[str]], Callable[[dict[str, Any]], None]]] = {
    "service removed": (missing_services, lambda d: d["services"].pop("kafka")),
    "dangling depends_on": (
        dependency_problems,
        lambda d: _service(d, "dagster-daemon").update(
            depends_on={"zookeeper": {"condition": "service_started"}}
        ),
    ),
    "healthy condition without healthcheck": (
        dependency_problems,
        lambda d: _service(d, "kafka").pop("healthcheck"),
    ),
    "duplicate host port": (
        duplicate_host_ports,
        lambda d: _service(d, "fake-gcs").update(ports=["3000:4443"]),
    ),
    "daemon on another image": (
        dagster_divergence,
        lambda d: _service(d, "dagster-daemon").update(image="lakegate:other"),
    ),
    "daemon with another storage host": (
        dagster_divergence,
        lambda d: _set_env(d, "dagster-daemon", "DAGSTER_POSTGRES_HOST", "elsewhere"),
    ),
    "zone outside the bucket": (
        zone_problems,
        lambda d: _set_env(d, "dagster-webserver", "LAKEGATE_ZONE_PII_URL", "s3://other-bucket/pii"),
    ),
    "zones nested": (
        zone_problems,
        lambda d: _set_env(d, "dagster-webserver", "LAKEGATE_ZONE_PII_URL", "s3://lake/raw/pii"),
    ),
    "S3 key not MinIO's": (
        zone_problems,
        lambda d: _set_env(
            d, "dagster-daemon", "AWS_SECRET_ACCESS_KEY", "${OTHER_SECRET:-dev-only-change-me}"
        ),
    ),
    "zone on local disk": (
        zone_problems,
        lambda d: _set_env(d, "dagster-daemon", "LAKEGATE_ZONE_RAW_URL", "file:///tmp/raw"),
    ),
    "no logical decoding": (
        replication_problems,
        lambda d: _service(d, "source-postgres").update(command=["postgres", "-c", "wal_level=replica"]),
    ),
    "literal password": (
        literal_secrets,
        lambda d: _set_env(d, "source-postgres", "POSTGRES_PASSWORD", "hunter2"),
    ),
    "non-placeholder default": (
        literal_secrets,
        lambda d: _set_env(d, "minio", "MINIO_ROOT_PASSWORD", "${MINIO_ROOT_PASSWORD:-s3cr3t-prod}"),
    ),
    "defaulted PII key": (
        literal_secrets,
        lambda d: _set_env(
            d, "dagster-daemon", "LAKEGATE_PII_KEY", "${LAKEGATE_PII_KEY:-dev-only-change-me}"
        ),
    ),
    "password inside a DSN": (
        literal_secrets,
        lambda d: _set_env(
            d, "dagster-daemon", "SOURCE_POSTGRES_DSN", "postgresql://u:hunter2@source-postgres/shop"
        ),
    ),
    "missing healthcheck": (missing_healthchecks, lambda d: _service(d, "minio").pop("healthcheck")),
}


@pytest.mark.parametrize("breakage", sorted(BREAKAGES))
def test_checks_detect_a_broken_compose_file(compose: dict[str, Any], breakage: str) -> None:
    check, breaks = BREAKAGES[breakage]
    assert check(compose) == [], "the unbroken file must pass this check"
    broken = copy.deepcopy(compose)
    breaks(broken)
    assert check(broken), f"{check.__name__} did not notice: {breakage}"


def test_interpolation_follows_compose_rules() -> None:
    assert interpolate("${A:-x}", {}) == "x"
    assert interpolate("${A:-x}", {"A": ""}) == "x"
    assert interpolate("${A-x}", {"A": ""}) == ""
    assert interpolate("a$${B}c${A}", {"A": "1"}) == "a${B}c1"
    with pytest.raises(KeyError):
        interpolate("${A:?set A}", {"A": ""})
