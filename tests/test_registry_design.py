"""The one registry design (lakegate.registry): lazy references, install hints, suggestions, no overriding."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from lakegate.registry import Reference, RegistrationError, Registry, UnknownNameError


def _accept_int(name: str, obj: object) -> int:
    if not isinstance(obj, int):
        raise TypeError(name)
    return obj


def test_builtins_are_imported_only_when_looked_up() -> None:
    registry = Registry("number", _accept_int, builtins={"maxsize": Reference("sys:maxsize")})
    assert registry.names() == ("maxsize",)
    assert registry.loaded() == {}
    assert registry.get("maxsize") == sys.maxsize
    assert registry.loaded() == {"maxsize": sys.maxsize}


def test_a_missing_optional_dependency_names_the_install_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "lakegate_test_kafka_connector.py").write_text(
        "import lakegate_absent_extra\nconnector = 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    hint = "pip install 'lakegate[kafka]'"
    registry = Registry(
        "connector",
        _accept_int,
        builtins={"kafka": Reference("lakegate_test_kafka_connector:connector", hint)},
    )
    with pytest.raises(RegistrationError) as caught:
        registry.get("kafka")
    message = str(caught.value)
    assert "needs the package 'lakegate_absent_extra'" in message
    assert "install it: pip install 'lakegate[kafka]'" in message


def test_unknown_names_get_a_suggestion_and_the_known_list() -> None:
    registry = Registry("number", _accept_int, builtins={"maxsize": Reference("sys:maxsize")})
    with pytest.raises(UnknownNameError, match=r"unknown number 'maxsise' \(did you mean 'maxsize'\?\); "):
        registry.get("maxsise")
    with pytest.raises(UnknownNameError, match=r"unknown number 'zzz'; known numbers: maxsize$"):
        registry.get("zzz")


def test_a_built_in_or_taken_name_is_never_replaced() -> None:
    registry = Registry("number", _accept_int, builtins={"maxsize": Reference("sys:maxsize")})
    with pytest.raises(RegistrationError, match="'maxsize' is already registered"):
        registry.register("maxsize", 1)
    registry.register("one", 1)
    with pytest.raises(RegistrationError, match="'one' is already registered"):
        registry.register("one", 2)
    assert registry.get("one") == 1
