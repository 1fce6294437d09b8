"""One registry design for everything lakegate finds by name: connectors, transforms, checks, policies.

Modelled on fsspec's ``known_implementations``: a name maps to a *reference* (``"module:attribute"``)
that is imported only when the name is looked up, so listing names or validating a ``defs.yaml`` never
imports a connector's heavy dependencies. Names come from, in order:

1. built-ins declared by the owning package (with an install hint for an optional extra);
2. objects registered in-process (``register`` or the ``decorator``), e.g. from a notebook or a test;
3. a local package ``<package>.<name>`` exposing the attribute (what ``lakegate new connector`` writes);
4. the distribution entry points of the registry's group (``[project.entry-points."lakegate.connectors"]``).

A taken name is never silently replaced, and an unknown name fails with the known names and a
"did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from typing import Generic, TypeVar

from lakegate.errors import LakegateError

T = TypeVar("T")


class UnknownNameError(LakegateError, LookupError):
    """No registered object has the requested name; the message lists the known ones."""


class RegistrationError(LakegateError, ValueError):
    """A registration would replace another object, or a reference does not load what it should."""


@dataclass(frozen=True)
class Reference:
    """Where a named object lives, and what to install when its import fails.

    Attributes:
        target: ``"module:attribute"``.
        install_hint: Shown when importing the module fails for a missing optional dependency,
            e.g. ``"pip install 'lakegate[kafka]'"``.
    """

    target: str
    install_hint: str = ""


def suggest(name: str, known: Iterator[str] | list[str] | tuple[str, ...]) -> str:
    """``" (did you mean 'x'?)"`` for the closest known name, or ``""`` when nothing is close."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class Registry(Generic[T]):
    """A read-only-to-the-world map of name -> object of one kind, resolved lazily.

    Args:
        kind: What the objects are, for messages (``"connector"``).
        validate: Checks a loaded object and returns it typed; raises ``TypeError`` otherwise.
        builtins: Built-in names and where they live.
        entry_point_group: Entry-point group third-party distributions publish in.
        local_package: Package whose sub-package ``<name>`` may provide the object as ``attribute``.
        attribute: Attribute of a local package holding the object.
        unknown_error: Raised for an unknown name (the owning package's subclass of UnknownNameError).
        broken_error: Raised for a taken name or a broken reference (a RegistrationError subclass).
    """

    def __init__(
        self,
        kind: str,
        validate: Callable[[str, object], T],
        builtins: Mapping[str, Reference] | None = None,
        entry_point_group: str = "",
        local_package: str = "",
        attribute: str = "",
        unknown_error: type[UnknownNameError] = UnknownNameError,
        broken_error: type[RegistrationError] = RegistrationError,
    ) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._validate = validate
        self._builtins = dict(builtins or {})
        self._local_package = local_package
        self._attribute = attribute
        self._loaded: dict[str, T] = {}
        self._in_process: set[str] = set()  # names registered by code, not loaded from a reference
        self._unknown = unknown_error
        self._broken = broken_error

    def register(self, name: str, obj: T) -> T:
        """Register ``obj`` under ``name``; a built-in or already registered name is refused."""
        if name in self._builtins or name in self._loaded:
            raise self._broken(f"a {self.kind} named '{name}' is already registered; pick another name")
        self._loaded[name] = self._validate(name, obj)
        self._in_process.add(name)
        return obj

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")``: register the decorated object and return it unchanged."""

        def wrap(obj: T) -> T:
            return self.register(name, obj)

        return wrap

    def get(self, name: str) -> T:
        """The object registered as ``name``, imported on first use.

        Raises:
            UnknownNameError: nobody registered ``name``; lists the known names and a suggestion.
            RegistrationError: the reference behind ``name`` is broken (names the reference and the fix).
        """
        published = self._entry_points()  # checked first: a plug-in may never shadow a built-in
        if name in self._loaded:
            return self._loaded[name]
        reference = self._builtins.get(name) or self._local(name) or published.get(name)
        if reference is None:
            known = self.names()
            raise self._unknown(
                f"unknown {self.kind} '{name}'{suggest(name, known)}; known {self.kind}s: "
                f"{', '.join(known) or 'none'}"
            )
        obj = self._validate(name, _load(reference, self.kind, name, self._broken))
        self._loaded[name] = obj
        return obj

    def names(self) -> tuple[str, ...]:
        """Every known name (built-in, registered, local package, entry point), sorted."""
        names = set(self._builtins) | set(self._loaded) | set(self._entry_points())
        names |= set(self._local_names())
        return tuple(sorted(names))

    def loaded(self) -> Mapping[str, T]:
        """A read-only copy of the objects loaded so far."""
        return dict(self._loaded)

    def _local(self, name: str) -> Reference | None:
        if not self._local_package or not name.isidentifier():
            return None
        module = f"{self._local_package}.{name}"
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            return None
        return Reference(f"{module}:{self._attribute}") if found else None

    def _local_names(self) -> list[str]:
        if not self._local_package:
            return []
        spec = importlib.util.find_spec(self._local_package)
        folders = list(spec.submodule_search_locations or []) if spec else []
        return [
            child.name
            for folder in folders
            for child in Path(folder).iterdir()
            if child.is_dir() and (child / "__init__.py").is_file() and not child.name.startswith("_")
        ]

    def _entry_points(self) -> dict[str, Reference]:
        if not self.entry_point_group:
            return {}
        found: dict[str, Reference] = {}
        for ep in _published(self.entry_point_group):
            if ep.name in found and found[ep.name].target != ep.value:
                raise self._broken(
                    f"entry point '{ep.name}' of group {self.entry_point_group} is declared twice: "
                    f"{found[ep.name].target} and {ep.value}; uninstall one of the distributions"
                )
            found[ep.name] = Reference(ep.value)
        clashes = sorted(
            n
            for n in found.keys() & (self._builtins.keys() | self._in_process)
            if found[n].target != self._builtins.get(n, Reference("")).target
        )
        if clashes:
            raise self._broken(
                f"entry points of group {self.entry_point_group} reuse the {self.kind} name(s) "
                f"{', '.join(clashes)}; rename them"
            )
        return found


_PUBLISHED: dict[str, tuple[tuple[object, ...], tuple[EntryPoint, ...]]] = {}


def _published(group: str) -> tuple[EntryPoint, ...]:
    """The installed entry points of ``group``, rescanned only when ``sys.path`` or one of its folders
    changed (a distribution installed later adds a folder entry, so it is still found without a restart).

    Scanning every installed distribution costs ~10 ms; loading 200 pipelines looks names up ~1,500 times.
    """
    state = (tuple(sys.path), tuple(_mtime(folder) for folder in sys.path))
    cached = _PUBLISHED.get(group)
    if cached is None or cached[0] != state:
        cached = (state, tuple(entry_points(group=group)))
        _PUBLISHED[group] = cached
    return cached[1]


def _mtime(folder: str) -> int:
    try:
        return os.stat(folder or ".").st_mtime_ns
    except OSError:
        return -1


def _load(reference: Reference, kind: str, name: str, error: type[RegistrationError]) -> object:
    module_name, _, attribute = reference.target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if reference.install_hint and exc.name and not module_name.startswith(exc.name):
            raise error(
                f"{kind} '{name}' needs the package '{exc.name}'; install it: {reference.install_hint}"
            ) from None
        raise error(f"{kind} '{name}': cannot import {module_name} ({exc})") from exc
    except Exception as exc:  # a plug-in's import can fail in any way; say which plug-in it was
        raise error(f"{kind} '{name}': importing {module_name} failed: {exc!r}") from exc
    try:
        return getattr(module, attribute) if attribute else module
    except AttributeError as exc:
        raise error(
            f"{kind} '{name}': {module_name} has no attribute '{attribute}' ({reference.target})"
        ) from exc
