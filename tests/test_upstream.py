"""``ganzoo import``: upstream options files and flags -> recipes, upstream state dicts -> ganzoo.

The two fixture trajectories (../shared) are real upstream checkpoints; the other
architectures are state dicts built here with the upstream's key names and shapes, transcribed
from the upstream module lists (pytorch-CycleGAN-and-pix2pix models/networks.py,
NVIDIA/pix2pixHD models/networks.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT, tiny_recipe

from ganzoo.artifacts.checkpoint import list_checkpoints, load_checkpoint
from ganzoo.artifacts.loading import load_generator
from ganzoo.cli import main
from ganzoo.errors import GanzooError
from ganzoo.training.schedule import total_epochs
from ganzoo.training.trainer import Trainer
from ganzoo.upstream import import_checkpoint, parse_flags, read_options
from ganzoo.upstream.importer import load_upstream

FIXTURES = ROOT.parent / "shared" / "fixtures" / "reference_pix2pix"
needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason="../shared is absent")


# -- options files ------------------------------------------------------------------------------
def pix2pix_opt_file(values: dict, defaults: dict | None = None) -> str:
    """A train_opt.txt as BaseOptions.print_options writes it."""
    lines = ["----------------- Options ---------------"]
    for k, v in sorted(values.items()):
        default = (defaults or {}).get(k, v)
        comment = f"\t[default: {default}]" if default != v else ""
        lines.append(f"{k:>25}: {str(v):<30}{comment}")
    lines.append("----------------- End -------------------")
    return "\n".join(lines) + "\n"


def pix2pixhd_opt_file(values: dict) -> str:
    """An opt.txt as pix2pixHD's BaseOptions.parse writes it."""
    body = "".join(f"{k}: {v}\n" for k, v in sorted(values.items()))
    return "------------ Options -------------\n" + body + "-------------- End ----------------\n"


def test_a_pix2pix_train_opt_becomes_the_equivalent_recipe(tmp_path: Path) -> None:
    values = {
        "name": "facades_label2photo",
        "dataroot": "./datasets/facades",
        "model": "pix2pix",
        "netG": "unet_256",
        "netD": "basic",
        "norm": "batch",
        "ngf": 64,
        "ndf": 64,
        "no_dropout": False,
        "direction": "BtoA",
        "lambda_L1": 100.0,
        "gan_mode": "vanilla",
        "lr": 0.0002,
        "beta1": 0.5,
        "n_epochs": 100,
        "n_epochs_decay": 100,
        "lr_policy": "linear",
        "load_size": 286,
        "crop_size": 256,
        "preprocess": "resize_and_crop",
        "pool_size": 0,
        "gpu_ids": "0",
        "isTrain": True,
        "batch_size": 1,
        "num_threads": 4,
        "no_flip": False,
    }
    path = tmp_path / "train_opt.txt"
    path.write_text(pix2pix_opt_file(values, {"norm": "instance", "netG": "resnet_9blocks"}))
    options = read_options(path)
    assert options.family == "pix2pix" and options["ngf"] == 64 and options["no_dropout"] is False
    recipe = options.to_recipe().to_dict()
    reference = json.loads(
        json.dumps(
            __import__("ganzoo.recipe", fromlist=["load_recipe"])
            .load_recipe(ROOT / "recipes" / "pix2pix_unet256.yaml")
            .to_dict()
        )
    )
    for section in ("generator", "discriminator", "loss", "optim", "schedule"):
        for key, value in recipe[section].items():
            if key in reference[section] and key not in ("init", "init_gain"):
                assert value == reference[section][key], (section, key)
    assert recipe["data"]["direction"] == "BtoA" and recipe["data"]["crop_size"] == 256
    assert recipe["name"] == "facades_label2photo"


def test_a_pix2pixhd_opt_txt_becomes_the_equivalent_recipe(tmp_path: Path) -> None:
    path = tmp_path / "opt.txt"
    path.write_text(
        pix2pixhd_opt_file(
            {
                "name": "label2city_1024p",
                "netG": "local",
                "ngf": 32,
                "num_D": 3,
                "niter_fix_global": 10,
                "label_nc": 35,
                "no_instance": False,
                "resize_or_crop": "none",
                "gpu_ids": [0],
                "niter": 50,
                "niter_decay": 50,
            }
        )
    )
    options = read_options(path)
    assert options.family == "pix2pixhd"
    r = options.to_recipe()
    assert r.generator.name == "pix2pixhd_local" and r.generator.params["ngf"] == 32
    assert r.discriminator.params["num_d"] == 3 and r.data.in_channels == 36  # labels + edges
    assert r.loss.objective.name == "lsgan" and r.loss.feature_matching == 10
    assert r.loss.perceptual == 10 and r.loss.perceptual_input == "raw"
    assert r.optim.train_only.generator == ["model1_*"] and r.optim.train_only.epochs == 10
    assert (r.schedule.form, r.schedule.epochs, r.schedule.decay_epochs) == ("pix2pixhd", 50, 50)


def test_a_pix2pixhd_label_model_imports_with_its_label_maps(tmp_path: Path) -> None:
    # pix2pixHD_model.py initialize / encode_input: label_nc one-hot channels, + 1 instance-edge
    # channel unless --no_instance; label_nc 0: an input_nc-channel image
    def recipe(flags: str):  # noqa: ANN202
        return parse_flags(flags, "pix2pixhd").to_recipe()

    data = recipe("--label_nc 35").data
    assert data.labels is not None and data.in_channels == 36
    assert (data.labels.num_classes, data.labels.instance) == (35, True)
    data = recipe("--label_nc 182 --no_instance").data
    assert data.labels is not None and data.in_channels == 182 and not data.labels.instance
    data = recipe("--label_nc 0 --no_instance --input_nc 1").data
    assert data.labels is None and data.in_channels == 1
    with pytest.raises(GanzooError, match=r"--label_nc 0 without --no_instance") as info:
        recipe("--label_nc 0")
    assert "\n" not in str(info.value)
    for flags in ("--instance_feat", "--label_feat", "--instance_feat --label_feat"):
        with pytest.raises(GanzooError, match="feature encoder") as info:
            recipe(f"--label_nc 35 {flags}")
        assert flags in str(info.value) and "\n" not in str(info.value)


def test_pix2pix_wgangp_imports_as_the_halved_critic_without_penalty(
    tiny_data: Path, tmp_path: Path
) -> None:
    # pix2pix_model.py backward_D: (GANLoss(fake) + GANLoss(real)) * 0.5, GANLoss('wgangp') =
    # +mean / -mean; cal_gradient_penalty is never called
    objective = parse_flags("--gan_mode wgangp").to_recipe().loss.objective
    assert objective.name == "wgan_gp"
    assert objective.params == {"penalty": 0.0, "d_scale": 0.5}
    recipe = tiny_recipe(
        tiny_data,
        "loss.objective={name: wgan_gp, penalty: 0.0, d_scale: 0.5}",
        "discriminator.norm=none",
        "train.max_steps=1",
    )
    trainer = Trainer(recipe, tmp_path / "run", progress=False)
    batch = next(iter(trainer.train_batches.epoch(0, 0)))
    losses = trainer.train_step(batch)
    assert "d_penalty" not in losses and not trainer.update.objective.needs_penalty
    half = 0.5 * (losses["d_real"] + losses["d_fake"])
    assert losses["d"].item() == pytest.approx(half.item(), rel=1e-6)
    trainer.close()


@pytest.mark.parametrize("policy", ["step", "plateau", "cosine"])
def test_every_lr_policy_runs_n_epochs_plus_n_epochs_decay(policy: str) -> None:
    # train.py: for epoch in range(epoch_count, n_epochs + n_epochs_decay + 1), any lr_policy;
    # cosine anneals over T_max = n_epochs
    flags = f"--lr_policy {policy} --n_epochs 30 --n_epochs_decay 20 --lr_decay_iters 7"
    schedule = parse_flags(flags).to_recipe().schedule
    assert total_epochs(schedule) == 50
    if policy == "cosine":
        assert schedule.epochs == 30
    if policy == "step":
        assert schedule.step_size == 7
    assert "total_epochs" not in parse_flags("").to_recipe().to_dict()["schedule"]


def test_flags_override_the_file_and_unknown_values_are_one_line(tmp_path: Path) -> None:
    options = parse_flags("--netG resnet_6blocks --ngf 32 --no_dropout --norm instance")
    assert options["netG"] == "resnet_6blocks" and options["ngf"] == 32
    assert options["no_dropout"] is True and options["norm"] == "instance"
    assert options.to_recipe().generator.params["dropout"] is False
    with pytest.raises(GanzooError, match="--netG unet_512 has no ganzoo equivalent"):
        parse_flags("--netG unet_512").to_recipe()
    with pytest.raises(GanzooError, match="expected --option"):
        parse_flags("netG unet_256")


def test_import_options_command(tmp_path: Path, capsys) -> None:
    code = main(["import", "options", "--flags", "--netG unet_128 --ngf 16 --direction BtoA"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "name: unet_128" in out and "ngf: 16" in out and "direction: BtoA" in out
    code = main(
        ["import", "options", "--flags", "--netG unet_128", "--out", str(tmp_path / "r.yaml")]
    )
    assert code == 0 and "name: unet_128" in (tmp_path / "r.yaml").read_text()


# -- the real upstream checkpoints --------------------------------------------------------------
@needs_fixtures
@pytest.mark.shared_data
def test_import_the_real_upstream_checkpoints(tmp_path: Path, capsys, tiny_data: Path) -> None:
    unet = FIXTURES / "unet128_basic_batch_vanilla"
    code = main(
        [
            "import",
            "weights",
            str(unet / "init_net_G.pth"),
            "--out",
            str(tmp_path / "unet"),
            "--flags",
            "--netG unet_128 --ngf 8 --ndf 8 --no_dropout",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "init_net_D.pth" in out and "unet_128" in out
    state = load_checkpoint(list_checkpoints(tmp_path / "unet" / "checkpoints")[-1])
    upstream_g = load_upstream(unet / "init_net_G.pth", "G")
    assert all(torch.equal(state["generator"][k], v) for k, v in upstream_g.items())  # same keys
    upstream_d = load_upstream(unet / "init_net_D.pth", "D")
    assert [v.shape for v in upstream_d.values()] == [
        v.shape for v in state["discriminator"].values()
    ]
    assert all(
        torch.equal(a, b)
        for a, b in zip(upstream_d.values(), state["discriminator"].values(), strict=True)
    )

    # an upstream folder with its train_opt.txt beside the weights
    resnet = FIXTURES / "resnet6_nlayers2_instance_lsgan"
    folder = tmp_path / "checkpoints" / "resnet_run"
    folder.mkdir(parents=True)
    for name in ("G", "D"):
        (folder / f"latest_net_{name}.pth").write_bytes(
            (resnet / f"init_net_{name}.pth").read_bytes()
        )
    options = json.loads((resnet / "trajectory.json").read_text())["options"]
    options.pop("max_dataset_size")
    (folder / "train_opt.txt").write_text(pix2pix_opt_file({"name": "resnet_run", **options}))
    imported = import_checkpoint(folder, tmp_path / "resnet")
    assert imported.recipe.generator.name == "resnet_6blocks"
    assert imported.recipe.discriminator.params["n_layers"] == 2
    assert imported.recipe.loss.objective.name == "lsgan"

    # translate, eval, export and a fine-tuning resume take the imported run
    net, recipe, info = load_generator(tmp_path / "unet")
    assert info.step == 0 and recipe.generator.name == "unet_128"
    out_dir = tmp_path / "translated"
    assert (
        main(
            [
                "translate",
                str(tmp_path / "unet"),
                "-i",
                str(tiny_data / "val"),
                "-o",
                str(out_dir),
                "--plain",
            ]
        )
        == 0
    )
    assert len(list(out_dir.glob("*.png"))) == 4
    assert main(["export", str(tmp_path / "unet")]) == 0
    capsys.readouterr()
    code = main(
        [
            "train",
            "--resume",
            str(tmp_path / "unet"),
            "--set",
            f"data.root={tiny_data}",
            "--set",
            "train.max_steps=2",
            "--set",
            "data.num_workers=0",
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "fresh: opt_g" in out  # the optimizers start fresh on imported weights
    assert load_checkpoint(list_checkpoints(tmp_path / "unet" / "checkpoints")[-1])["step"] == 2


@needs_fixtures
@pytest.mark.shared_data
@pytest.mark.parametrize(
    "flags, expected",
    [
        ("--netG unet_128 --ngf 16", "check --ngf (now 16; the file has 8 channels"),
        ("--netG unet_256 --ngf 8", "check --netG unet_256 --norm batch --ngf 8"),
        ("--netG unet_128 --ngf 8 --input_nc 1", "check --input_nc (now 1; the file has 3"),
        ("--netG unet_128 --ngf 8 --norm instance", "--norm instance"),
    ],
)
def test_a_mismatch_names_the_key_and_the_flag(tmp_path: Path, flags: str, expected: str) -> None:
    with pytest.raises(GanzooError) as info:
        import_checkpoint(
            FIXTURES / "unet128_basic_batch_vanilla" / "init_net_G.pth", tmp_path / "x", flags=flags
        )
    assert expected in str(info.value) and "\n" not in str(info.value)
    assert not (tmp_path / "x").exists()  # nothing written


def test_a_pickled_upstream_file_is_refused(tmp_path: Path) -> None:
    import os

    class Evil:
        def __reduce__(self):  # noqa: ANN204
            return (os.system, ("true",))

    torch.save({"model.0.weight": Evil()}, tmp_path / "latest_net_G.pth")
    with pytest.raises(GanzooError, match="refused"):
        import_checkpoint(tmp_path / "latest_net_G.pth", tmp_path / "run", flags="--netG unet_128")


# -- upstream key layouts built here -------------------------------------------------------------
def conv(key: str, c_out: int, c_in: int, k: int, bias: bool = True) -> dict[str, tuple]:
    out = {f"{key}.weight": (c_out, c_in, k, k)}
    if bias:
        out[f"{key}.bias"] = (c_out,)
    return out


def convt(key: str, c_in: int, c_out: int, k: int) -> dict[str, tuple]:
    return {f"{key}.weight": (c_in, c_out, k, k), f"{key}.bias": (c_out,)}


def batchnorm(key: str, c: int) -> dict[str, tuple]:
    return {
        f"{key}.weight": (c,),
        f"{key}.bias": (c,),
        f"{key}.running_mean": (c,),
        f"{key}.running_var": (c,),
        f"{key}.num_batches_tracked": (),
    }


def nlayer_d(prefix: str, in_nc: int, ndf: int, n_layers: int) -> dict[str, tuple]:
    """pix2pix NLayerDiscriminator with batch norm: model.{i} over its flat Sequential."""
    keys = conv(f"{prefix}0", ndf, in_nc, 4)
    i, mult = 2, 1
    for n in range(1, n_layers + 1):
        prev, mult = mult, min(2**n, 8)
        keys |= conv(f"{prefix}{i}", ndf * mult, ndf * prev, 4, bias=False)
        keys |= batchnorm(f"{prefix}{i + 1}", ndf * mult)
        i += 3
    return keys | conv(f"{prefix}{i}", 1, ndf * mult, 4)


def pixel_d(in_nc: int, ndf: int) -> dict[str, tuple]:
    return (
        conv("net.0", ndf, in_nc, 1)
        | conv("net.2", ndf * 2, ndf, 1, bias=False)
        | batchnorm("net.3", ndf * 2)
        | conv("net.5", 1, ndf * 2, 1, bias=False)
    )


def resnet_g(ngf: int, blocks: int, norm: str = "batch") -> dict[str, tuple]:
    """pix2pix ResnetGenerator: batch norm (convs without bias) or instance norm (convs with a
    bias, norm layers without tensors), at the upstream's Sequential indices."""
    bias = norm == "instance"

    def norm_at(key: str, c: int) -> dict[str, tuple]:
        return batchnorm(key, c) if norm == "batch" else {}

    keys = conv("model.1", ngf, 3, 7, bias) | norm_at("model.2", ngf)
    keys |= conv("model.4", ngf * 2, ngf, 3, bias) | norm_at("model.5", ngf * 2)
    keys |= conv("model.7", ngf * 4, ngf * 2, 3, bias) | norm_at("model.8", ngf * 4)
    for b in range(blocks):
        i = 10 + b
        keys |= conv(f"model.{i}.conv_block.1", ngf * 4, ngf * 4, 3, bias)
        keys |= norm_at(f"model.{i}.conv_block.2", ngf * 4)
        keys |= conv(f"model.{i}.conv_block.5", ngf * 4, ngf * 4, 3, bias)
        keys |= norm_at(f"model.{i}.conv_block.6", ngf * 4)
    i = 10 + blocks
    up = {f"model.{i}.weight": (ngf * 4, ngf * 2, 3, 3)} | (
        {f"model.{i}.bias": (ngf * 2,)} if bias else {}
    )
    keys |= up | norm_at(f"model.{i + 1}", ngf * 2)
    up = {f"model.{i + 3}.weight": (ngf * 2, ngf, 3, 3)} | (
        {f"model.{i + 3}.bias": (ngf,)} if bias else {}
    )
    keys |= up | norm_at(f"model.{i + 4}", ngf)
    return keys | conv(f"model.{i + 7}", 3, ngf, 7)


def global_g(
    ngf: int, n_down: int, blocks: int, final: bool = True, in_nc: int = 3
) -> dict[str, tuple]:
    """pix2pixHD GlobalGenerator (instance norm: no norm tensors): model.1, 4, 7, ..."""
    keys = conv("model.1", ngf, in_nc, 7)
    i = 4
    for d in range(n_down):
        keys |= conv(f"model.{i}", ngf * 2 ** (d + 1), ngf * 2**d, 3)
        i += 3
    width = ngf * 2**n_down
    for _ in range(blocks):
        keys |= conv(f"model.{i}.conv_block.1", width, width, 3)
        keys |= conv(f"model.{i}.conv_block.5", width, width, 3)
        i += 1
    for d in range(n_down):
        keys |= convt(f"model.{i}", ngf * 2 ** (n_down - d), ngf * 2 ** (n_down - d - 1), 3)
        i += 3
    return keys | (conv(f"model.{i + 1}", 3, ngf, 7) if final else {})


def local_g(ngf: int, n_down: int, blocks_global: int, blocks_local: int) -> dict[str, tuple]:
    keys = global_g(ngf * 2, n_down, blocks_global, final=False)
    keys |= conv("model1_1.1", ngf, 3, 7) | conv("model1_1.4", ngf * 2, ngf, 3)
    for b in range(blocks_local):
        keys |= conv(f"model1_2.{b}.conv_block.1", ngf * 2, ngf * 2, 3)
        keys |= conv(f"model1_2.{b}.conv_block.5", ngf * 2, ngf * 2, 3)
    keys |= convt(f"model1_2.{blocks_local}", ngf * 2, ngf, 3)
    return keys | conv(f"model1_2.{blocks_local + 4}", 3, ngf, 7)


def multiscale_d(in_nc: int, ndf: int, n_layers: int, num_d: int) -> dict[str, tuple]:
    """pix2pixHD MultiscaleDiscriminator with getIntermFeat: scale{i}_layer{j}.{k}."""
    keys: dict[str, tuple] = {}
    for s in range(num_d):
        keys |= conv(f"scale{s}_layer0.0", ndf, in_nc, 4)
        nf = ndf
        for j in range(1, n_layers + 1):
            prev, nf = nf, min(nf * 2, 512)
            keys |= conv(f"scale{s}_layer{j}.0", nf, prev, 4)
        keys |= conv(f"scale{s}_layer{n_layers + 1}.0", 1, nf, 4)
    return keys


def random_state(shapes: dict[str, tuple]) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {
        k: torch.tensor(7) if k.endswith("num_batches_tracked") else torch.randn(s)
        for k, s in shapes.items()
    }


@pytest.mark.parametrize(
    "flags, family, g_shapes, d_shapes",
    [
        (
            "--netG resnet_9blocks --ngf 8 --netD n_layers --n_layers_D 4 --ndf 8",
            "pix2pix",
            resnet_g(8, 9),
            nlayer_d("model.", 6, 8, 4),
        ),
        (
            "--netG resnet_6blocks --ngf 8 --netD pixel --ndf 8",
            "pix2pix",
            resnet_g(8, 6),
            pixel_d(6, 8),
        ),
        (
            "--netG global --ngf 8 --n_downsample_global 3 --n_blocks_global 2 --label_nc 0 "
            "--no_instance --num_D 2 --n_layers_D 3 --ndf 8",
            "pix2pixhd",
            global_g(8, 3, 2),
            multiscale_d(6, 8, 3, 2),
        ),
        (
            "--netG local --ngf 4 --n_downsample_global 2 --n_blocks_global 2 --n_blocks_local 2 "
            "--label_nc 0 --no_instance --num_D 3 --n_layers_D 2 --ndf 4",
            "pix2pixhd",
            local_g(4, 2, 2, 2),
            multiscale_d(6, 4, 2, 3),
        ),
        (  # 5 label channels + the instance-edge channel (label_nc 5, instance maps)
            "--netG global --ngf 8 --n_downsample_global 3 --n_blocks_global 2 --label_nc 5 "
            "--num_D 2 --n_layers_D 3 --ndf 8",
            "pix2pixhd",
            global_g(8, 3, 2, in_nc=6),
            multiscale_d(9, 8, 3, 2),
        ),
    ],
    ids=[
        "resnet9-nlayers4",
        "resnet6-pixel",
        "pix2pixhd-global",
        "pix2pixhd-local",
        "pix2pixhd-labels",
    ],
)
def test_upstream_layouts_land_on_the_right_tensors(
    tmp_path: Path, flags: str, family: str, g_shapes: dict, d_shapes: dict
) -> None:
    g_state, d_state = random_state(g_shapes), random_state(d_shapes)
    torch.save(g_state, tmp_path / "latest_net_G.pth")
    torch.save({f"module.{k}": v for k, v in d_state.items()}, tmp_path / "latest_net_D.pth")
    imported = import_checkpoint(
        tmp_path,
        tmp_path / "run",
        flags=flags,
        family=family,  # type: ignore[arg-type]
    )
    state = load_checkpoint(imported.checkpoint)
    # every upstream tensor arrives, in order, with its values
    g_values = [v for k, v in g_state.items()]
    assert len(state["generator"]) == len(g_values)
    assert all(
        torch.equal(a, b) for a, b in zip(state["generator"].values(), g_values, strict=True)
    )
    got_d = list(state["discriminator"].values())
    if family == "pix2pixhd":  # upstream scale{num_D-1} sees the full resolution: ganzoo's scale 0
        num_d = imported.recipe.discriminator.params["num_d"]
        per_scale = len(d_state) // num_d
        expected = [
            v
            for s in reversed(range(num_d))
            for v in list(d_state.values())[s * per_scale : (s + 1) * per_scale]
        ]
    else:
        expected = list(d_state.values())
    assert len(got_d) == len(expected)
    assert all(torch.equal(a, b) for a, b in zip(got_d, expected, strict=True))
    # and the network runs with them
    net, _, _ = load_generator(tmp_path / "run")
    channels = imported.recipe.data.in_channels
    assert net(torch.zeros(1, channels, 64, 64)).shape == (1, 3, 64, 64)


def test_old_checkpoints_without_batch_counters_and_with_instance_buffers_import(
    tmp_path: Path,
) -> None:
    # BatchNorm files from before PyTorch 0.4.1 have no num_batches_tracked: counters start at 0
    state = {k: v for k, v in random_state(resnet_g(4, 6)).items() if "num_batches" not in k}
    torch.save(state, tmp_path / "old_bn_net_G.pth")
    imported = import_checkpoint(
        tmp_path / "old_bn_net_G.pth", tmp_path / "bn", flags="--netG resnet_6blocks --ngf 4"
    )
    generator = load_checkpoint(imported.checkpoint)["generator"]
    counters = [v for k, v in generator.items() if "num_batches" in k]
    assert counters and all(int(c) == 0 for c in counters)
    # InstanceNorm files from before 0.4 hold running statistics the layer no longer has
    state = random_state(resnet_g(4, 6, norm="instance"))
    state["model.2.running_mean"] = torch.zeros(4)
    state["model.2.running_var"] = torch.ones(4)
    torch.save(state, tmp_path / "old_in_net_G.pth")
    imported = import_checkpoint(
        tmp_path / "old_in_net_G.pth",
        tmp_path / "in",
        flags="--netG resnet_6blocks --ngf 4 --norm instance",
    )
    assert "model.2.running_mean" not in load_checkpoint(imported.checkpoint)["generator"]
