"""The ``kafka`` connector's vectorized decoding, without a broker: text stays the text that was sent."""

from __future__ import annotations

import json

from connectors.kafka._decode import Decoder, Messages
from connectors.kafka.config import KafkaConfig


def _decode(values: list[bytes]) -> list[dict[str, object]]:
    n = len(values)
    messages = Messages(["t/0"] * n, list(range(n)), [None] * n, list(values), [0] * n, [None] * n)
    tables = Decoder(KafkaConfig(bootstrap_servers="127.0.0.1:1", topics=["t"])).decode(messages)
    assert len(tables) == 1, "no rejects"
    return (
        tables[0].select([c for c in tables[0].column_names if not c.startswith(("_", "kafka_"))]).to_pylist()
    )


def test_date_and_time_strings_are_kept_as_sent() -> None:
    """pyarrow's JSON reader takes such strings for timestamps (dropping the offset): they must not."""
    sent = {
        "at": "2026-11-01T00:00:00+02:00",
        "z": "2026-11-01T00:00:00Z",
        "day": "2026-11-01",
        "nested": {"when": "2026-11-01", "all": ["2026-11-01 10:00:00"]},
        "n": 3,
    }
    rows = _decode([json.dumps(sent).encode()] * 3)
    expected = {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in sent.items()}
    assert rows == [expected] * 3
