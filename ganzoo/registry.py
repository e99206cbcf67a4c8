"""Names -> component builders, for built-ins and for plugins found through entry points.

The whole public surface::

    @register("generator", "unet_256")
    class UnetGenerator(nn.Module): ...

    create("generator", "unet_256", in_channels=3, out_channels=3, norm="batch")
    list("generator", "unet*")          # names, without importing any plugin module

Third-party packages announce components in their ``pyproject.toml``::

    [project.entry-points."ganzoo.generators"]
    my_gen = "my_pkg.gen:MyGenerator"

A plugin module is imported the first time one of its components is used; one that fails to
import is reported by name (a warning) and every other component keeps working.
"""

from __future__ import annotations

import builtins
import fnmatch
import importlib
import importlib.metadata
import inspect
import typing
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ganzoo.errors import GanzooError, RegistryError, did_you_mean, first_line
from ganzoo.params import Param, signature_params, validate_value

#: kind -> (entry-point group, the arguments the recipe builder supplies, never the user).
KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "generator": ("ganzoo.generators", ("in_channels", "out_channels")),
    "discriminator": ("ganzoo.discriminators", ("in_channels",)),
    "attention": ("ganzoo.attention", ("channels",)),
    "objective": ("ganzoo.objectives", ()),
    "dataset": ("ganzoo.datasets", ("root", "split", "in_channels", "out_channels")),
    "logger": ("ganzoo.loggers", ("run_dir",)),
    "launcher": ("ganzoo.launchers", ()),
    "callback": ("ganzoo.callbacks", ()),
    "regularizer": ("ganzoo.regularizers", ()),
}

#: kind -> the modules whose import registers its built-in components. A lookup imports only
#: the modules of the kind it asks for, so ``ganzoo list generator`` and
#: ``create("generator", ...)`` do not pay for the ablation runner, the launchers or scipy.
_BUILTIN_MODULES: dict[str, tuple[str, ...]] = {
    "generator": ("ganzoo.generators",),
    "discriminator": ("ganzoo.discriminators",),
    "attention": ("ganzoo.attention",),
    "objective": ("ganzoo.losses",),
    "dataset": ("ganzoo.data.aligned", "ganzoo.data.folders"),
    "logger": ("ganzoo.loggers",),
    "launcher": ("ganzoo.launchers",),
    "callback": ("ganzoo.training.observers",),
    "regularizer": ("ganzoo.regularizers",),
}
#: kind -> the module that finishes the networks of that kind (init, spectral norm, attention
#: slots): imported with the kind's built-ins, it installs itself in :data:`FINISHERS`.
_FINISHER_MODULES: dict[str, str] = {
    "generator": "ganzoo.build",
    "discriminator": "ganzoo.build",
}

BUILTIN = "built-in"


@dataclass(frozen=True)
class Finish:
    """How the builder finishes a network: its defaults for the settings every network takes
    from the recipe (registry metadata: ``@register("generator", "x", finish=Finish(...))``).

    ``spectral_norm``: on by default (True), off (False), or a mode the network names in
    ``spectral_modes``; ``spectral_key``: the recipe key that sets it (SPADE: ``spectral``);
    ``zero_bias``: conv biases start at 0 (pix2pix) or keep PyTorch's default (pix2pixHD);
    ``options``: further finishing settings a recipe may change for this entry (``zero_bias``).
    """

    spectral_norm: bool | str = False
    init: str = "normal"
    init_gain: float = 0.02
    zero_bias: bool = True
    spectral_key: str = "spectral_norm"
    spectral_modes: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def describe(self) -> str:
        """One line for ``ganzoo show`` and the catalogue."""
        bias = "biases 0" if self.zero_bias else "biases kept at PyTorch's default"
        sn = {True: "on", False: "off"}.get(self.spectral_norm, self.spectral_norm)  # type: ignore[call-overload]
        key = "" if self.spectral_key == "spectral_norm" else f" (`{self.spectral_key}`)"
        return f"init `{self.init}` (gain {self.init_gain}), {bias}, spectral norm {sn}{key}"


class Finisher(typing.Protocol):
    """What finishes a network kind (installed by :data:`_FINISHER_MODULES`)."""

    def parameters(self, entry: Entry, own: builtins.list[Param]) -> builtins.list[Param]:
        """The settings a recipe may give ``entry``: its own architecture ``own`` and the
        finishing ones."""

    def create(
        self, entry: Entry, builder: Callable[..., Any], args: tuple, params: dict[str, Any]
    ) -> Any:
        """Build and finish ``entry`` from supplied ``args`` and validated ``params``."""


#: kind -> its finisher; filled by :data:`_FINISHER_MODULES` when they are imported.
FINISHERS: dict[str, Finisher] = {}


class PluginWarning(UserWarning):
    """A plugin that could not be loaded or that clashes with another component."""


@dataclass
class Entry:
    """A registered component: a builder in memory, or an entry point not imported yet."""

    kind: str
    name: str
    origin: str
    builder: Callable[..., Any] | None = None
    entry_point: importlib.metadata.EntryPoint | None = None
    error: str | None = None
    paper: str = ""
    source: str = ""  # module.qualname of a built-in, for messages
    finish: Finish | None = None  # a network's finishing defaults (None: not finished)
    clashes: builtins.list[str] = field(default_factory=builtins.list)

    @property
    def is_plugin(self) -> bool:
        return self.entry_point is not None

    @property
    def finisher(self) -> Finisher | None:
        """What finishes this network: built-ins registered with ``finish=``, and every plugin
        of a network kind (with the default :class:`Finish`); None for anything else."""
        if self.kind not in _FINISHER_MODULES or (self.finish is None and not self.is_plugin):
            return None
        importlib.import_module(_FINISHER_MODULES[self.kind])
        return FINISHERS.get(self.kind)

    @property
    def finishing(self) -> Finish:
        """This entry's finishing defaults (a plugin's: the default :class:`Finish`)."""
        return self.finish or Finish()

    def load(self) -> Callable[..., Any]:
        """The builder, importing its plugin module on first use."""
        if self.clashes:
            origins = " and ".join([self.origin, *self.clashes])
            raise RegistryError(
                f"{self.kind} '{self.name}' is provided twice: by {origins}; "
                "uninstall one of them or rename its entry point"
            )
        if self.builder is None and self.error is None:
            assert self.entry_point is not None
            try:
                self.builder = self.entry_point.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # a broken plugin (even one calling sys.exit) must
                # not take ganzoo down
                self.error = first_line(exc, with_type=True)
                warnings.warn(
                    f"plugin {self.origin} failed to import '{self.entry_point.value}' "
                    f"({self.error}); its {self.kind} '{self.name}' is unavailable",
                    PluginWarning,
                    stacklevel=2,
                )
        if self.builder is None:
            raise RegistryError(
                f"{self.kind} '{self.name}' from {self.origin} failed to import ({self.error}); "
                "reinstall or fix that plugin"
            )
        return self.builder

    def summary(self) -> str:
        """First line of the builder's docstring (imports a plugin module)."""
        doc = inspect.getdoc(self.load()) or ""
        return doc.strip().splitlines()[0] if doc.strip() else ""

    def parameters(self) -> builtins.list[Param]:
        """The parameters a user may set (the ones the recipe builder supplies left out)."""
        supplied = KINDS[self.kind][1]
        own = [p for p in signature_params(self.load()) if p.name not in supplied]
        finisher = self.finisher
        return own if finisher is None else finisher.parameters(self, own)


class Registry:
    """A table of components by kind and name; ``default_registry`` is the one ganzoo uses."""

    def __init__(
        self, builtin_modules: Mapping[str, Iterable[str]] | Iterable[str] = _BUILTIN_MODULES
    ) -> None:
        """``builtin_modules``: kind -> modules to import before that kind's first lookup, or
        one list of modules imported before any lookup."""
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        if isinstance(builtin_modules, Mapping):
            for kind in builtin_modules:
                _check_kind(kind)
            self._builtin_modules = {k: tuple(builtin_modules.get(k, ())) for k in KINDS}
        else:
            every = tuple(builtin_modules)
            self._builtin_modules = {k: every for k in KINDS}
        self._builtins_loaded: set[str] = set()  # kinds whose built-in modules are imported
        self._discovered: set[str] = set()  # kinds whose entry points have been read

    @property
    def _plugins_loaded(self) -> bool:
        """Whether entry points of every kind have been read (set True to skip discovery)."""
        return self._discovered >= set(KINDS)

    @_plugins_loaded.setter
    def _plugins_loaded(self, value: bool) -> None:
        self._discovered = set(KINDS) if value else set()

    # -- registration ------------------------------------------------------------------------
    def register(
        self, kind: str, name: str, *, paper: str = "", finish: Finish | None = None
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: register a class or function as the builder of ``kind`` ``name``.

        ``finish``: for a generator or discriminator, the builder's defaults for finishing it
        (init, spectral norm, biases); the network itself declares only its architecture."""
        _check_kind(kind)

        def decorator(builder: Callable[..., Any]) -> Callable[..., Any]:
            source = f"{builder.__module__}.{builder.__qualname__}"
            existing = self._entries[kind].get(name)
            if existing is not None and existing.builder is not builder:
                raise RegistryError(
                    f"{kind} '{name}' is registered twice: by {existing.origin} "
                    f"({existing.source}) and by {BUILTIN} ({source})"
                )
            self._entries[kind][name] = Entry(
                kind, name, BUILTIN, builder=builder, paper=paper, source=source, finish=finish
            )
            return builder

        return decorator

    def _ensure_loaded(self, kind: str | None = None) -> None:
        """Import the built-ins of ``kind`` (of every kind if None), then read its entry points.

        Built-ins come first, so that a plugin reusing a built-in name is reported as a clash.
        """
        kinds = [kind] if kind else builtins.list(KINDS)
        for k in kinds:
            if k not in self._builtins_loaded:
                self._builtins_loaded.add(k)
                for module in self._builtin_modules[k]:
                    importlib.import_module(module)
        for k in kinds:
            if k not in self._discovered:
                self._discovered.add(k)
                self._discover_plugins(k)

    def _discover_plugins(self, kind: str) -> None:
        group = KINDS[kind][0]
        for ep in importlib.metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            origin = (
                f"distribution {dist.name} {dist.version}"
                if dist is not None
                else f"entry point {ep.value}"
            )
            entry = Entry(kind, ep.name, origin, entry_point=ep)
            existing = self._entries[kind].get(ep.name)
            if existing is None:
                self._entries[kind][ep.name] = entry
                continue
            if existing.entry_point is not None and existing.entry_point.value == ep.value:
                continue  # the same distribution seen twice on sys.path
            existing.clashes.append(origin)
            warnings.warn(
                f"{kind} '{ep.name}' is provided by {existing.origin} and by {origin}; "
                "using it will fail until one is removed",
                PluginWarning,
                stacklevel=2,
            )

    def refresh(self) -> None:
        """Forget discovered plugins and look again (after installing a package at run time)."""
        importlib.invalidate_caches()
        for kind in KINDS:
            self._entries[kind] = {n: e for n, e in self._entries[kind].items() if not e.is_plugin}
            for e in self._entries[kind].values():
                e.clashes.clear()
        self._discovered = set()

    # -- lookup ------------------------------------------------------------------------------
    def list(self, kind: str, pattern: str = "*") -> builtins.list[str]:
        """Sorted names of ``kind`` matching a glob ``pattern``; imports no plugin module, and
        of the built-ins only the modules of ``kind``."""
        _check_kind(kind)
        self._ensure_loaded(kind)
        return sorted(n for n in self._entries[kind] if fnmatch.fnmatchcase(n, pattern))

    def entries(self, kind: str | None = None) -> builtins.list[Entry]:
        """Registered entries of one kind (or all), without importing plugins."""
        kinds = [kind] if kind else builtins.list(KINDS)
        for k in kinds:
            _check_kind(k)
        self._ensure_loaded(kind)
        return [self._entries[k][n] for k in kinds for n in sorted(self._entries[k])]

    def get(self, kind: str, name: str) -> Entry:
        """The entry for ``name``, or a one-line error suggesting the closest names."""
        _check_kind(kind)
        self._ensure_loaded(kind)
        entry = self._entries[kind].get(name)
        if entry is None:
            raise RegistryError(unknown_name_message(kind, name, self._entries[kind]))
        return entry

    def validate_params(
        self, kind: str, name: str, params: dict[str, Any], *, where: str = ""
    ) -> dict[str, Any]:
        """Check ``params`` against the builder's signature; returns them coerced.

        Parameters that the builder requires but that are missing are not an error here: the
        recipe builder supplies ``KINDS[kind][1]`` and the caller decides about the rest.
        """
        entry = self.get(kind, name)
        accepted = {p.name: p for p in entry.parameters()}
        prefix = f"{where}." if where else ""
        out: dict[str, Any] = {}
        for key, value in params.items():
            param = accepted.get(key)
            if param is None:
                hint = did_you_mean(key, accepted)
                hint = f" ({hint})" if hint else ""
                listing = ", ".join(p.describe() for p in accepted.values()) or "none"
                raise RegistryError(
                    f"{prefix}{key}: {kind} '{name}' takes no parameter '{key}'{hint}; "
                    f"accepted: {listing}"
                )
            out[key] = validate_value(param.annotation, value, f"{prefix}{key}")
        return out

    def create(self, kind: str, name: str, /, *args: Any, **params: Any) -> Any:
        """Build ``kind`` ``name``: supplied arguments positionally or by name, params by name."""
        entry = self.get(kind, name)
        supplied = KINDS[kind][1]
        user = {k: v for k, v in params.items() if k not in supplied}
        fixed = {k: v for k, v in params.items() if k in supplied}
        checked = self.validate_params(kind, name, user, where=name)
        builder = entry.load()
        finisher = entry.finisher

        def build() -> Any:
            if finisher is None:
                return builder(*args, **fixed, **checked)
            return finisher.create(entry, builder, args, {**fixed, **checked})

        if not entry.is_plugin:
            return build()
        try:
            return build()
        except GanzooError:
            raise
        except Exception as exc:  # a plugin's bug is reported by name, in one line
            raise RegistryError(
                f"{kind} '{name}' from {entry.origin} failed to build "
                f"({first_line(exc, with_type=True)}); report it to that plugin's authors"
            ) from None


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown kind '{kind}'; kinds are: {', '.join(KINDS)}")


def unknown_name_message(kind: str, name: str, known: Iterable[str]) -> str:
    """'unknown generator 'unet_265'; did you mean 'unet_256'? ...' in one line."""
    known = sorted(known)
    hint = did_you_mean(name, known, n=3, cutoff=0.5)
    hint = f"; {hint}" if hint else ""
    return (
        f"unknown {kind} '{name}'{hint} "
        f"(`ganzoo list {kind}` shows all {len(known)}: {', '.join(known)})"
    )


default_registry = Registry()
register = default_registry.register
create = default_registry.create
get = default_registry.get
validate_params = default_registry.validate_params
entries = default_registry.entries
refresh = default_registry.refresh


def list(kind: str, pattern: str = "*") -> builtins.list[str]:  # noqa: A001 - the public name
    """Sorted names of ``kind`` matching ``pattern`` (see :meth:`Registry.list`)."""
    return default_registry.list(kind, pattern)
