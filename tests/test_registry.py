"""The registry: registration, lookup with suggestions, parameter validation, plugins."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import warnings
from typing import Literal

import pytest
from torch import nn

from ganzoo import registry
from ganzoo.errors import RegistryError
from ganzoo.registry import PluginWarning, Registry


@pytest.fixture()
def reg() -> Registry:
    r = Registry(builtin_modules=())
    r._plugins_loaded = True  # no entry-point discovery in these unit tests

    @r.register("generator", "unet_256", paper="Isola et al. 2017")
    class Unet(nn.Module):
        """A test U-Net."""

        def __init__(
            self,
            in_channels: int,
            out_channels: int,
            ngf: int = 64,
            norm: Literal["batch", "instance"] = "batch",
            dropout: bool = True,
        ) -> None:
            super().__init__()
            self.args = (in_channels, out_channels, ngf, norm, dropout)

    @r.register("generator", "unet_128")
    def unet_128(in_channels: int, out_channels: int, ngf: int = 64) -> str:
        """Function builders work too."""
        return f"unet_128 {in_channels}->{out_channels} ngf={ngf}"

    return r


def test_create_passes_supplied_and_params(reg: Registry) -> None:
    net = reg.create("generator", "unet_256", in_channels=1, out_channels=3, ngf=8)
    assert net.args == (1, 3, 8, "batch", True)
    assert reg.create("generator", "unet_128", 3, 3) == "unet_128 3->3 ngf=64"


def test_list_with_pattern(reg: Registry) -> None:
    assert reg.list("generator") == ["unet_128", "unet_256"]
    assert reg.list("generator", "*256") == ["unet_256"]
    assert reg.list("discriminator") == []


def test_unknown_name_suggests_closest_in_one_line(reg: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        reg.get("generator", "unet_265")
    msg = str(info.value)
    assert "did you mean 'unet_256'" in msg
    assert "ganzoo list generator" in msg and "\n" not in msg


def test_unknown_kind(reg: Registry) -> None:
    with pytest.raises(RegistryError, match="unknown kind 'generators'"):
        reg.list("generators")


def test_duplicate_name_names_both_origins(reg: Registry) -> None:
    with pytest.raises(RegistryError) as info:

        @reg.register("generator", "unet_256")
        class Other(nn.Module):
            pass

    msg = str(info.value)
    assert msg.count("built-in") == 2 and "Unet" in msg and "Other" in msg


def test_unknown_parameter_lists_accepted_with_types_and_defaults(reg: Registry) -> None:
    with pytest.raises(RegistryError) as info:
        reg.validate_params("generator", "unet_256", {"ngff": 3}, where="generator")
    msg = str(info.value)
    assert msg.startswith("generator.ngff:")
    assert "did you mean 'ngf'" in msg
    assert "ngf: int = 64" in msg and "norm: 'batch'|'instance' = 'batch'" in msg
    assert "in_channels" not in msg  # supplied by the recipe builder, not the user


def test_wrong_type_is_one_line_with_path(reg: Registry) -> None:
    with pytest.raises(RegistryError, match=r"^generator\.ngf: expected an integer, got 'three'$"):
        reg.validate_params("generator", "unet_256", {"ngf": "three"}, where="generator")
    with pytest.raises(RegistryError, match="expected one of 'batch' or 'instance', got 'group'"):
        reg.validate_params("generator", "unet_256", {"norm": "group"})
    with pytest.raises(RegistryError, match="expected a boolean"):
        reg.create("generator", "unet_256", 3, 3, dropout="maybe")


def test_params_are_coerced(reg: Registry) -> None:
    assert reg.validate_params("generator", "unet_256", {"ngf": "32"}) == {"ngf": 32}


def test_summary_and_parameters(reg: Registry) -> None:
    entry = reg.get("generator", "unet_256")
    assert entry.summary() == "A test U-Net."
    assert entry.paper == "Isola et al. 2017"
    assert [p.name for p in entry.parameters()] == ["ngf", "norm", "dropout"]


def _fake_distribution(root, dist: str, group: str, name: str, target: str, code: str) -> None:
    """A minimal installed distribution (dist-info with entry points) under ``root``."""
    module = target.split(":")[0]
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{name} = {target}\n")


@pytest.fixture()
def plugin_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for mod in [m for m in sys.modules if m.startswith("gz_test_")]:
        del sys.modules[mod]
    registry.refresh()


def test_plugin_is_listed_without_import_and_loaded_on_use(plugin_path) -> None:
    _fake_distribution(
        plugin_path,
        "gz-test-good",
        "ganzoo.generators",
        "gz_test_gen",
        "gz_test_good:Gen",
        '''
        from torch import nn
        class Gen(nn.Module):
            """A plugin generator."""
            def __init__(self, in_channels: int, out_channels: int, width: int = 4):
                super().__init__()
                self.width = width
        ''',
    )
    registry.refresh()
    assert "gz_test_gen" in registry.list("generator")
    entry = registry.get("generator", "gz_test_gen")
    assert entry.origin == "distribution gz-test-good 0.1"
    assert "gz_test_good" not in sys.modules  # listing imported nothing
    assert registry.create("generator", "gz_test_gen", 3, 3, width=7).width == 7
    assert "gz_test_good" in sys.modules


def test_broken_plugin_warns_and_others_keep_working(plugin_path) -> None:
    _fake_distribution(
        plugin_path,
        "gz-test-broken",
        "ganzoo.discriminators",
        "gz_test_bad",
        "gz_test_bad:D",
        "raise RuntimeError('boom at import')\n",
    )
    registry.refresh()
    assert "gz_test_bad" in registry.list("discriminator")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(RegistryError) as info:
            registry.create("discriminator", "gz_test_bad", in_channels=6)
    assert "gz-test-broken" in str(info.value) and "boom at import" in str(info.value)
    assert any(
        issubclass(w.category, PluginWarning) and "gz-test-broken" in str(w.message) for w in caught
    )
    # every other component still works
    assert registry.create("discriminator", "patchgan", in_channels=6, ndf=8) is not None


def test_plugin_clashing_with_builtin_names_both(plugin_path) -> None:
    _fake_distribution(
        plugin_path,
        "gz-test-clash",
        "ganzoo.generators",
        "unet_256",
        "gz_test_clash:G",
        "G = None\n",
    )
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        registry.refresh()
        registry.list("generator")
    with pytest.raises(RegistryError) as info:
        registry.get("generator", "unet_256").load()
    msg = str(info.value)
    assert "built-in" in msg and "gz-test-clash" in msg


def test_a_registry_imports_the_builtin_modules_of_the_kind_asked_only(plugin_path) -> None:
    (plugin_path / "gz_test_kind_gen.py").write_text("")
    (plugin_path / "gz_test_kind_all.py").write_text("")
    r = Registry(builtin_modules={"generator": ("gz_test_kind_gen",)})
    r._plugins_loaded = True
    assert r.list("discriminator") == []
    assert "gz_test_kind_gen" not in sys.modules
    r.list("generator")
    assert "gz_test_kind_gen" in sys.modules
    flat = Registry(builtin_modules=("gz_test_kind_all",))  # one list: imported for any kind
    flat._plugins_loaded = True
    flat.list("objective")
    assert "gz_test_kind_all" in sys.modules


def test_every_builtin_lives_under_the_modules_mapped_to_its_kind() -> None:
    # components other test files register into the default registry live outside ganzoo
    for entry in registry.entries():
        if not entry.is_plugin and entry.source.startswith("ganzoo."):
            modules = registry._BUILTIN_MODULES[entry.kind]
            assert entry.source.startswith(tuple(f"{m}." for m in modules)), entry


def test_generator_lookups_import_no_ablation_launcher_or_scipy() -> None:
    code = textwrap.dedent("""\
        import sys
        import ganzoo
        from ganzoo.cli import app
        assert "unet_256" in ganzoo.list_components("generator")
        ganzoo.create("generator", "unet_128", in_channels=3, out_channels=3, ngf=4)
        app(["list", "generator"], standalone_mode=False)
        heavy = ("ganzoo.ablation", "ganzoo.launchers", "scipy")
        print(sorted(m for m in sys.modules if m.split(".")[0] == "scipy" or m in heavy))
        """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert result.stdout.splitlines()[-1] == "[]"


def test_the_builder_finishes_a_registered_network_but_leaves_what_it_declares_itself() -> None:
    """A network registered with ``finish=`` gets the finishing settings from the builder; a
    setting it declares itself (an older plugin doing its own init) stays its own."""
    from ganzoo.registry import Finish

    r = Registry(builtin_modules=())
    r._plugins_loaded = True

    @r.register("generator", "finished", finish=Finish(init="xavier", spectral_norm=True))
    class Finished(nn.Module):
        """Architecture only."""

        def __init__(self, in_channels: int, out_channels: int, ngf: int = 4) -> None:
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 3, bias=True)

    @r.register("generator", "self_init", finish=Finish())
    class SelfInit(nn.Module):
        """Initialises itself."""

        def __init__(self, in_channels: int, out_channels: int, init: str = "ones") -> None:
            super().__init__()
            self.conv = nn.Conv2d(in_channels, out_channels, 3)
            nn.init.ones_(self.conv.weight)
            self.init = init

    names = [p.name for p in r.get("generator", "finished").parameters()]
    assert names == ["ngf", "spectral_norm", "init", "init_gain"]
    defaults = {p.name: p.default for p in r.get("generator", "finished").parameters()}
    assert defaults["init"] == "xavier" and defaults["spectral_norm"] is True
    net = r.create("generator", "finished", 3, 3, init_gain=0.5)
    assert hasattr(net.conv, "parametrizations") and not net.conv.bias.any()
    off = r.create("generator", "finished", 3, 3, spectral_norm=False)
    assert not hasattr(off.conv, "parametrizations")
    with pytest.raises(RegistryError, match="did you mean 'init_gain'"):
        r.create("generator", "finished", 3, 3, init_gian=0.5)

    own = r.create("generator", "self_init", 3, 3, init="mine", init_gain=0.5)
    assert own.init == "mine" and bool((own.conv.weight == 1).all())  # not re-initialised
    assert [p.name for p in r.get("generator", "self_init").parameters()] == [
        "init",
        "spectral_norm",
        "init_gain",
    ]
