"""``timm:<name>`` backbones: tiny checkpoints saved as timm state dicts (safetensors), loaded by path and from a
Hugging Face cache through timm's own pretrained path, with HF_HUB_OFFLINE=1; and ``prefix:argument`` names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import timm
import torch
from benchkit_backbones._preprocess import Preprocess
from benchkit_backbones.timm_models import TimmBackbone
from click.testing import CliRunner
from safetensors.torch import save_file

from benchkit.cli import main
from benchkit.errors import PluginError
from benchkit.storage.features import file_sha256

VIT = "vit_tiny_patch16_224"
VIT_KW = {"img_size": 32, "patch_size": 8, "depth": 1, "embed_dim": 16, "num_heads": 2}  # 4x4 grid, width 16
SWIN_KW = {"img_size": 56, "embed_dim": 16, "depths": (1, 1), "num_heads": (1, 1), "window_size": 7}


def save(folder: Path, name: str, seed: int = 0, **kwargs) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(seed)
    model = timm.create_model(name, pretrained=False, **kwargs).eval()
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / "model.safetensors")
    return folder / "model.safetensors", model


@pytest.fixture(scope="module")
def vit(tmp_path_factory):
    return save(tmp_path_factory.mktemp("timm") / "vit", VIT, **VIT_KW)


@pytest.fixture(scope="module")
def vit_backbone(vit, registry):
    return registry.build("backbone", registry.resolve("backbone", f"timm:{VIT}",
                                                       {"path": str(vit[0]), "model_kwargs": VIT_KW}))


def clips(t: int, b: int = 2, side: int = 40) -> torch.Tensor:
    g = torch.Generator().manual_seed(t)
    return torch.randint(0, 256, (b, t, side, side + 8, 3), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("frames", [4, 8, 16])
def test_vit_token_shapes(vit_backbone, frames):
    out = vit_backbone.encode(clips(frames))
    assert out.frame.shape == (2, frames, 16) and out.patch.shape == (2, frames, 16, 16) and out.grid == (4, 4)


def test_vit_rows_are_the_loaded_models_cls_and_patches(vit, vit_backbone):
    video = clips(4)
    out = vit_backbone.encode(video)
    with torch.no_grad():
        feats = vit[1].forward_features(vit_backbone.preprocess(video.flatten(0, 1)))  # [CLS, 16 patches], normed
    torch.testing.assert_close(out.frame.flatten(0, 1), feats[:, 0])
    torch.testing.assert_close(out.patch.flatten(0, 1), feats[:, 1:])
    assert not any(p.requires_grad for p in vit_backbone.module.parameters()) and not vit_backbone.module.training


def test_preprocessing_follows_the_pretrained_cfg(vit_backbone):
    # vit_tiny_patch16_224's eval transform: bicubic, crop_pct 0.9, mean = std = 0.5; at img_size 32 the shorter
    # side goes to floor(32 / 0.9) = 35, then a 32x32 centre crop
    assert vit_backbone.preprocess == Preprocess(resize=35, crop=(32, 32), interpolation="bicubic",
                                                 mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


@pytest.mark.parametrize(("name", "kwargs", "side", "grid", "dim"), [
    ("resnet10t", {}, 64, (2, 2), 512),  # an NCHW map: stride 32
    ("swin_tiny_patch4_window7_224", SWIN_KW, 56, (7, 7), 32),  # an NHWC map
])
def test_feature_map_models(tmp_path, registry, name, kwargs, side, grid, dim):
    path, _ = save(tmp_path, name, **kwargs)
    pre = {"resize": side, "crop": [side, side]}
    bb = registry.build("backbone", registry.resolve(
        "backbone", f"timm:{name}", {"path": str(tmp_path), "model_kwargs": kwargs, "preprocess": pre}))
    assert bb.file == path
    out = bb.encode(clips(4, b=1))
    assert out.grid == grid and out.patch.shape == (1, 4, grid[0] * grid[1], dim) and out.frame.shape == (1, 4, dim)
    kw = {"path": str(path), "model_kwargs": kwargs, "preprocess": pre, "frame_token": "mean"}
    mean = registry.build("backbone", registry.resolve("backbone", f"timm:{name}", kw))
    torch.testing.assert_close(mean.encode(clips(4, b=1)).frame, out.patch.mean(2))


def test_loads_from_the_hugging_face_cache(tmp_path, monkeypatch, vit, vit_backbone):
    import huggingface_hub.constants

    repo = tmp_path / "hub" / "models--timm--vit_tiny_patch16_224.augreg_in21k_ft_in1k"
    snapshot = repo / "snapshots" / ("ab" * 20)
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    blob = repo / "blobs" / file_sha256(vit[0])
    shutil.copy(vit[0], blob)
    (snapshot / "model.safetensors").symlink_to(Path("../..") / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("ab" * 20)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    bb = TimmBackbone(VIT, model_kwargs=VIT_KW)
    assert bb.file.resolve() == blob and bb.fingerprint() == vit_backbone.fingerprint()
    torch.testing.assert_close(bb.encode(clips(4)).patch, vit_backbone.encode(clips(4)).patch)


def test_missing_weights_and_bad_checkpoints_are_one_line(tmp_path, monkeypatch, vit, registry):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    with pytest.raises(PluginError) as e:
        registry.build("backbone", registry.resolve("backbone", f"timm:{VIT}"))
    msg = str(e.value)
    assert "\n" not in msg and "hf download timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k" in msg
    assert str(tmp_path / "empty") in msg
    with pytest.raises(PluginError, match=r"cannot load .*model.safetensors into vit_tiny_patch16_224: ") as e:
        TimmBackbone(VIT, path=str(vit[0])).encode(clips(4))  # the full-size architecture
    assert "\n" not in str(e.value)
    with pytest.raises(PluginError, match="unknown timm model 'vit_tiny_patch16_2244'; did you mean"):
        TimmBackbone("vit_tiny_patch16_2244")
    with pytest.raises(PluginError, match="not a checkpoint file"):
        TimmBackbone(VIT, path=str(tmp_path / "nothing.safetensors"))


def test_random_weights_without_files(registry):
    with torch.device("meta"):
        bb = registry.build("backbone", registry.resolve("backbone", "timm:vit_small_patch16_224",
                                                         {"weights": "random"}))
    # ViT-S/16 with its 1000-class head: 12 blocks x 1,774,464 + patch embedding 295,296 + positions 197*384
    # + CLS 384 + final norm 768 + head 385,000
    assert sum(p.numel() for p in bb.module.parameters()) == 22_050_664 and bb.file is None
    tiny = TimmBackbone(VIT, weights="random", model_kwargs=VIT_KW)
    assert tiny.fingerprint() == TimmBackbone(VIT, weights="random", model_kwargs=VIT_KW).fingerprint()
    assert tiny.fingerprint() != TimmBackbone(VIT, weights="random", seed=1, model_kwargs=VIT_KW).fingerprint()
    assert tiny.encode(clips(4)).patch.shape == (2, 4, 16, 16)


def test_prefix_names_resolve_to_the_plugin_and_its_argument(registry):
    r = registry.resolve("backbone", "timm:vit_small_patch16_224", {"weights": "random"})
    assert r.entry.name == "timm" and r.kwargs == {"model": "vit_small_patch16_224", "weights": "random"}
    r = registry.resolve("backbone", "hf:/models/my-vit")
    assert r.entry.name == "hf" and r.kwargs == {"model": "/models/my-vit"} and r.preset is None
    assert registry.resolve("backbone", "dinov2:facebook/dinov2-small").kwargs == {"model": "facebook/dinov2-small"}
    with pytest.raises(PluginError, match="'model' is given both in the name and as a keyword"):
        registry.resolve("backbone", "timm:vit_small_patch16_224", {"model": "resnet50"})
    with pytest.raises(PluginError, match="unknown backbone 'random-vit:x'"):  # no name_argument declared
        registry.resolve("backbone", "random-vit:x")
    with pytest.raises(PluginError, match="unexpected keyword 'modle'"):
        registry.resolve("backbone", "timm:resnet50", {"modle": 1})


def test_validate_accepts_prefix_names(write_grid, tiny_grid):
    tiny_grid["backbone"] = ["timm:vit_small_patch16_224", {"name": "hf:/models/my-vit", "label": "mine"}]
    result = CliRunner().invoke(main, ["validate", str(write_grid(tiny_grid))])
    assert result.exit_code == 0, result.output
    assert "ok, 4 cells" in result.stdout
