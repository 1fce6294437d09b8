"""Zone settings and outages of an S3 store (moto server) as a user meets them through the CLI: a zone
with a ``region`` still feeds the files connector, and a store that does not answer is one line naming
the zone's URL (never a credential), exit status 2."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import s3fs

from dagster_project.cli import main
from pipelines.demo import write_demo
from tests.conftest import isolate, service_unavailable
from tests.services.s3 import MotoServer
from tests.store_params import S3_STORAGE, s3_env
from zones import ZoneName, load_config, open_zone

pytestmark = pytest.mark.s3

SECRET = "s3cr3t/with+slash=="


def _zones_in(home: Path, bucket: str, extra: str = "") -> Path:
    config = home.parent / "lakegate.yaml"
    config.write_text(
        "zones:\n"
        + "".join(
            f"  {z}: {{url: 's3://{bucket}/{z}', storage: {{{S3_STORAGE}{extra}}}}}\n" for z in ZoneName
        )
    )
    return config


def test_a_zone_with_a_region_feeds_the_files_connector(
    s3_server: MotoServer, lakegate_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3_env(monkeypatch, s3_server.url)
    s3fs.S3FileSystem(key="testing", secret="testing", endpoint_url=s3_server.url).mkdir("regional")
    monkeypatch.setenv("LAKEGATE_CONFIG", str(_zones_in(lakegate_home, "regional", ", region: us-east-1")))
    demo = write_demo(load_config(), rows=20)

    assert main(["run", "events"]) == 0

    raw = open_zone(ZoneName.RAW).read("web", "events")
    assert raw.height == demo.input_rows["web/events"]


@pytest.fixture(scope="module")
def stopped_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Zones with a table in a store (its own moto server, a secret key) that has stopped since."""
    root = tmp_path_factory.mktemp("stopped")
    server = MotoServer(root / "moto.log")
    try:
        server.start()
    except (OSError, RuntimeError) as exc:
        service_unavailable("moto S3 server", str(exc))
    with pytest.MonkeyPatch.context() as mp:
        home = isolate(mp, root)
        s3_env(mp, server.url)
        mp.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        s3fs.S3FileSystem(key="testing", secret=SECRET, endpoint_url=server.url).mkdir("gone")
        # Short client retries: an outage is reported in seconds, not after object_store's minutes.
        mp.setenv("LAKEGATE_CONFIG", str(_zones_in(home, "gone", ", connect_timeout: 1, retry_timeout: 2")))
        write_demo(load_config(), rows=20)
        try:
            assert main(["run", "events"]) == 0
        finally:
            server.stop()
        yield


@pytest.mark.parametrize(
    "command",
    [
        ["table", "raw", "web/events"],
        ["table", "raw", "web/events", "--head", "3"],
        ["quarantine", "web/events"],
    ],
)
def test_a_stopped_store_is_one_line_naming_the_zone_url(
    stopped_store: None, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    capsys.readouterr()
    assert main(command) == 2
    out, err = capsys.readouterr()
    zone = "quarantine" if command[0] == "quarantine" else "raw"
    assert err.startswith(f"lakegate: error: zone '{zone}' at s3://gone/{zone} cannot be reached: ")
    assert err.count("\n") == 1 and "Traceback" not in err and not out
    assert SECRET not in err and "s3cr3t" not in err
