"""The transform registry: built-ins, ``register_transform``, entry points and ``apply_transforms``.

Entry-point tests install a real plugin distribution (a module plus a ``*.dist-info`` folder with an
``entry_points.txt``) into a temporary folder on ``sys.path``, where ``importlib.metadata`` finds it.
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from transforms import (
    ENTRY_POINT_GROUP,
    TransformContext,
    TransformLoadError,
    UnknownTransformError,
    _registry,
    apply_transforms,
    cast_schema,
    dedupe_latest,
    get_transform,
    normalize_strings,
    register_transform,
    transform_names,
)

PLUGIN_MODULE = "lakegate_test_plugin"


class InstallPlugin(Protocol):
    def __call__(
        self, source: str, entry_points: dict[str, str], distribution: str = "lakegate_test_plugin"
    ) -> None: ...


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let each test register and discover transforms without affecting the others."""
    monkeypatch.setattr(_registry.REGISTRY, "_loaded", dict(_registry.REGISTRY._loaded))
    monkeypatch.setattr(_registry.REGISTRY, "_in_process", set(_registry.REGISTRY._in_process))
    yield
    sys.modules.pop(PLUGIN_MODULE, None)


@pytest.fixture
def install_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InstallPlugin:
    """Return a function installing a plugin distribution with ``source`` and the given entry points."""

    def install(
        source: str, entry_points: dict[str, str], distribution: str = "lakegate_test_plugin"
    ) -> None:
        (tmp_path / f"{PLUGIN_MODULE}.py").write_text(textwrap.dedent(source))
        dist_info = tmp_path / f"{distribution}-1.0.dist-info"
        dist_info.mkdir()
        (dist_info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {distribution}\nVersion: 1.0\n")
        lines = [f"{name} = {value}" for name, value in entry_points.items()]
        (dist_info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n" + "\n".join(lines) + "\n")
        monkeypatch.syspath_prepend(str(tmp_path))

    return install


SHOUT_PLUGIN = """
    import polars as pl

    def shout(lf, ctx):
        return lf.with_columns(pl.col("name").str.to_uppercase())
"""


def test_built_ins_are_registered() -> None:
    assert get_transform("cast_schema") is cast_schema
    assert get_transform("normalize_strings") is normalize_strings
    assert get_transform("dedupe_latest") is dedupe_latest
    names = transform_names()
    assert {"cast_schema", "dedupe_latest", "normalize_strings"} <= set(names)
    assert list(names) == sorted(names)


def test_unknown_name_lists_the_known_transforms_sorted() -> None:
    with pytest.raises(UnknownTransformError) as raised:
        get_transform("dedupe_lastest")
    assert isinstance(raised.value, ValueError)
    assert str(raised.value) == (
        "unknown transform 'dedupe_lastest' (did you mean 'dedupe_latest'?); "
        f"known transforms: {', '.join(transform_names())}"
    )
    assert "cast_schema, cdc_apply, dedupe_latest, event_date, mask_ip, normalize_strings" in str(
        raised.value
    )


def test_register_transform_adds_a_name() -> None:
    @register_transform("add_one")
    def add_one(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
        return lf.with_columns(pl.col("x") + 1)

    assert get_transform("add_one") is add_one
    assert "add_one" in transform_names()


def test_register_transform_refuses_to_override_a_built_in() -> None:
    def impostor(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
        return lf

    with pytest.raises(ValueError, match="'cast_schema' is already registered"):
        register_transform("cast_schema")(impostor)
    assert get_transform("cast_schema") is cast_schema


def test_register_transform_refuses_a_second_registration() -> None:
    register_transform("mine")(normalize_strings)
    with pytest.raises(ValueError, match="'mine' is already registered"):
        register_transform("mine")(dedupe_latest)
    assert get_transform("mine") is normalize_strings


def test_apply_transforms_applies_in_the_given_order() -> None:
    for suffix in "ab":

        def append(lf: pl.LazyFrame, ctx: TransformContext, suffix: str = suffix) -> pl.LazyFrame:
            return lf.with_columns(pl.col("s") + suffix)

        register_transform(f"append_{suffix}")(append)

    lf = pl.LazyFrame({"s": ["x"]})
    ctx = TransformContext()
    assert apply_transforms(lf, ["append_a", "append_b"], ctx).collect()["s"].to_list() == ["xab"]
    assert apply_transforms(lf, ["append_b", "append_a"], ctx).collect()["s"].to_list() == ["xba"]
    assert_frame_equal(apply_transforms(lf, [], ctx).collect(), lf.collect())


def test_apply_transforms_passes_the_context() -> None:
    lf = pl.LazyFrame({"id": ["1", "1"], "v": [" a", "b "]})
    ctx = TransformContext(primary_key=("id",), schema={"id": "int64"})
    result = apply_transforms(lf, ["normalize_strings", "cast_schema", "dedupe_latest"], ctx).collect()
    expected = pl.DataFrame(
        {"id": [1], "v": ["b"], "_lakegate_cast_errors": [None]},
        schema={"id": pl.Int64, "v": pl.String, "_lakegate_cast_errors": pl.String},
    )
    assert_frame_equal(result, expected)


def test_apply_transforms_resolves_every_name_before_running_any() -> None:
    calls: list[str] = []

    @register_transform("record")
    def record(lf: pl.LazyFrame, ctx: TransformContext) -> pl.LazyFrame:
        calls.append("record")
        return lf

    with pytest.raises(UnknownTransformError, match="'nope'"):
        apply_transforms(pl.LazyFrame({"x": [1]}), ["record", "nope"], TransformContext())
    assert calls == []


def test_apply_transforms_rejects_a_single_string() -> None:
    with pytest.raises(TypeError, match="sequence of transform names"):
        apply_transforms(pl.LazyFrame({"x": [1]}), "cast_schema", TransformContext())


def test_entry_point_transform_is_discovered_and_applied(install_plugin: InstallPlugin) -> None:
    install_plugin(SHOUT_PLUGIN, {"shout": f"{PLUGIN_MODULE}:shout"})

    assert "shout" in transform_names()
    lf = pl.LazyFrame({"name": [" ada "]})
    result = apply_transforms(lf, ["normalize_strings", "shout"], TransformContext()).collect()
    assert_frame_equal(result, pl.DataFrame({"name": ["ADA"]}))
    with pytest.raises(UnknownTransformError, match=r"known transforms: .*shout"):
        get_transform("whisper")


def test_entry_point_module_is_imported_only_when_its_transform_is_asked_for(
    install_plugin: InstallPlugin,
) -> None:
    install_plugin(SHOUT_PLUGIN, {"shout": f"{PLUGIN_MODULE}:shout"})

    assert "shout" in transform_names()
    get_transform("cast_schema")
    assert PLUGIN_MODULE not in sys.modules
    transform = get_transform("shout")
    assert transform is sys.modules[PLUGIN_MODULE].shout


def test_entry_points_installed_later_are_found_without_a_restart(install_plugin: InstallPlugin) -> None:
    assert "shout" not in transform_names()
    install_plugin(SHOUT_PLUGIN, {"shout": f"{PLUGIN_MODULE}:shout"})
    assert "shout" in transform_names()


def test_broken_entry_point_error_names_it(install_plugin: InstallPlugin) -> None:
    install_plugin("import lakegate_no_such_module_anywhere\n", {"broken": f"{PLUGIN_MODULE}:transform"})

    with pytest.raises(TransformLoadError, match=rf"transform 'broken': cannot import {PLUGIN_MODULE}"):
        get_transform("broken")
    # A broken plugin does not break the other transforms.
    assert get_transform("dedupe_latest") is dedupe_latest
    assert "broken" in transform_names()


def test_entry_point_to_a_missing_attribute_error_names_it(install_plugin: InstallPlugin) -> None:
    install_plugin(SHOUT_PLUGIN, {"typo": f"{PLUGIN_MODULE}:shuot"})

    with pytest.raises(TransformLoadError, match="'typo'") as raised:
        get_transform("typo")
    assert isinstance(raised.value.__cause__, AttributeError)


def test_entry_point_that_is_not_callable_is_refused(install_plugin: InstallPlugin) -> None:
    install_plugin("NOT_A_TRANSFORM = 42\n", {"number": f"{PLUGIN_MODULE}:NOT_A_TRANSFORM"})

    with pytest.raises(
        TransformLoadError, match=r"'number' resolves to a int object, not a callable transform"
    ):
        get_transform("number")


def test_entry_point_cannot_take_a_built_in_name(install_plugin: InstallPlugin) -> None:
    install_plugin(SHOUT_PLUGIN, {"cast_schema": f"{PLUGIN_MODULE}:shout"})

    with pytest.raises(TransformLoadError, match="reuse the transform name\(s\) cast_schema"):
        get_transform("cast_schema")
    with pytest.raises(TransformLoadError, match="cast_schema"):
        transform_names()
    assert PLUGIN_MODULE not in sys.modules


def test_two_distributions_may_not_publish_the_same_name(install_plugin: InstallPlugin) -> None:
    install_plugin(SHOUT_PLUGIN, {"shout": f"{PLUGIN_MODULE}:shout"})
    install_plugin(SHOUT_PLUGIN, {"shout": f"{PLUGIN_MODULE}:other"}, distribution="lakegate_other_plugin")

    with pytest.raises(TransformLoadError, match=rf"'shout' .* is declared twice: {PLUGIN_MODULE}:"):
        get_transform("shout")
