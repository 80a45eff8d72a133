"""``depth-train descriptors | eval-descriptors | keypoints | export`` end to end on tiny simulated
recordings, plus the bad-input messages (no poses, no depth, a pose that cannot be looked up, a
reference file from another model)."""
import json
import sys

import numpy as np
import pytest
import torch

from depth_nodes.geometry.camera import PinholeCamera
from depth_nodes.keypoints.reference import ReferenceFileError, check_reference_model, load_reference
from depth_training.cli import main

from descriptor_helpers import descriptor_bags
from train_modes_helpers import TINY_K, write_tiny_bag

TINY = ["--height", "64", "--width", "96", "--encoder", "mobile", "--decoder-channels", "8", "8", "16", "16", "32",
        "--descriptor-dim", "3", "--batch-size", "2", "--epoch-samples", "8", "--workers", "0", "--threads", "1",
        "--lr", "1e-3", "--log-every", "2", "--image-every", "3", "--ckpt-every", "3", "--val-every", "3",
        "--val-pairs", "2", "--matches", "64", "--min-matches", "20", "--seed", "0"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    return descriptor_bags(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(bags, tmp_path_factory):
    out = tmp_path_factory.mktemp("desc_run") / "run"
    cache = tmp_path_factory.getbasetemp() / "descriptor_cache"
    argv = ["descriptors", "--dataset", str(bags["a"]), "--dataset", f"{bags['b']}:0.5", "--val-bag", str(bags["d"]),
            "--out", str(out), "--cache-dir", str(cache), *TINY]
    assert main(argv + ["--steps", "3"]) == 0
    assert main(argv + ["--steps", "6"]) == 0  # resumes from the step-3 checkpoint
    return out, cache


def test_training_writes_a_descriptor_model_and_resumes(trained):
    from depth_training.models.descriptor import load_descriptor_model

    out, _ = trained
    net, cfg = load_descriptor_model(out / "model.pt")
    assert cfg["kind"] == "descriptors" and cfg["descriptor_dim"] == 3 and cfg["step"] == 6
    assert net(torch.rand(1, 3, 64, 96)).shape == (1, 3, 64, 96)
    hist = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [0, 3, 6]  # before training, then every 3 steps across the resume
    assert all(0.0 <= h["pck@5"] <= 1.0 and h["median_px"] >= 0 for h in hist)
    assert list((out / "tb").glob("events.*"))


def test_eval_keypoints_export(trained, bags, tmp_path, capsys):
    out, cache = trained
    ev = tmp_path / "eval"
    assert main(["eval-descriptors", "--model", str(out / "model.pt"), "--bag", str(bags["a"]), "--bag", str(bags["b"]),
                 "--out", str(ev), "--cache-dir", str(cache), "--pairs-per-bag", "1", "--points", "20", "--threads", "1",
                 "--min-matches", "20"]) == 0
    table = capsys.readouterr().out
    rep = json.loads((ev / "eval_descriptors.json").read_text())
    assert set(rep["methods"]) == {"trained", "untrained", "sift", "orb"}
    for m in rep["methods"].values():
        s = m["same_object"]
        assert s["count"] == 40 and 0 <= s["pck@1"] <= s["pck@2"] <= s["pck@5"] <= s["pck@10"] <= 1
        assert 0 <= m["cross_object"]["cross_separation"] <= 1
    assert "sift" in table and "PCK@5" in table
    assert (ev / "eval_descriptors.png").stat().st_size > 1000
    # recordings that share objects: the same-object errors, no cross-object measure
    assert main(["eval-descriptors", "--model", str(out / "model.pt"), "--bag", str(bags["a"]), "--bag", str(bags["b"]),
                 "--out", str(ev / "nocross"), "--cache-dir", str(cache), "--pairs-per-bag", "1", "--points", "20",
                 "--threads", "1", "--min-matches", "20", "--baselines", "--no-cross"]) == 0
    table = capsys.readouterr().out
    nocross = json.loads((ev / "nocross" / "eval_descriptors.json").read_text())
    assert "cross_object" not in nocross["methods"]["trained"] and "n/a" in table
    assert nocross["methods"]["trained"]["same_object"] == rep["methods"]["trained"]["same_object"]

    ref_path = tmp_path / "ref.npz"
    assert main(["keypoints", "--model", str(out / "model.pt"), "--bag", str(bags["a"]), "--frame", "2", "--auto", "3",
                 "--out", str(ref_path), "--cache-dir", str(cache)]) == 0
    ref = load_reference(ref_path)
    from depth_training.models.descriptor import file_sha256

    sha = file_sha256(out / "model.pt")
    assert ref.model_sha256 == sha and ref.descriptor_dim == 3 and ref.input_size == (64, 96)
    assert ref.num_keypoints == 3 and ref_path.with_suffix(".png").is_file()
    check_reference_model(ref, sha, 3, str(ref_path))
    with pytest.raises(ReferenceFileError, match="made with model"):
        check_reference_model(ref, "0" * 64, 3, str(ref_path))

    onnx = tmp_path / "desc.onnx"
    assert main(["export", "--model", str(out / "model.pt"), "--onnx", str(onnx)]) == 0
    side = json.loads(onnx.with_suffix(".json").read_text())
    assert side["output"]["name"] == "descriptors" and side["output"]["kind"] == "descriptors"
    assert side["descriptor_dim"] == 3 and side["source_model_sha256"] == sha
    assert side["output"]["shape"] == ["batch", 3, 64, 96]


def _bag_with_partial_tf(path, frames=8, tf_frames=3):
    """Colour + depth + camera_info for ``frames`` frames; /tf only around the first ``tf_frames``."""
    from depth_training.bags.writer import BagWriter

    cam = PinholeCamera(64, 64, TINY_K)
    t0 = 1_700_000_000_000_000_000
    with BagWriter(path) as w:
        for i in range(frames):
            stamp = t0 + i * 100_000_000
            if i < tf_frames:
                T = np.eye(4)
                T[0, 3] = 0.01 * i
                w.tf("/tf", [("world", "camera_color_optical_frame", stamp, T)])
            w.image("/camera/color/image_raw", stamp, np.zeros((64, 64, 3), np.uint8), "rgb8",
                    "camera_color_optical_frame")
            w.camera_info("/camera/color/camera_info", stamp, cam, "camera_color_optical_frame")
            w.image("/camera/depth/image_rect_raw", stamp, np.full((64, 64), 800, np.uint16), "16UC1",
                    "camera_color_optical_frame")
    return path


def _run_bad(argv, capsys):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def test_bad_input_is_one_clear_line(bags, tmp_path, capsys):
    base = ["--out", str(tmp_path / "o"), *TINY, "--steps", "1"]
    no_depth = write_tiny_bag(tmp_path / "nodepth", depth=False)
    err = _run_bad(["descriptors", "--dataset", str(no_depth), *base], capsys)
    assert "nodepth" in err and "/camera/depth/image_rect_raw" in err
    no_pose = write_tiny_bag(tmp_path / "nopose")
    err = _run_bad(["descriptors", "--dataset", str(no_pose), *base], capsys)
    assert "nopose" in err and "/tf" in err
    partial = _bag_with_partial_tf(tmp_path / "partial")
    err = _run_bad(["descriptors", "--dataset", str(partial), *base], capsys)
    assert "partial" in err and "no pose" in err
    err = _run_bad(["descriptors", "--dataset", str(bags["a"]), "--pose-source", "tf", "--min-rotation", "170",
                    "--min-translation", "5", *base], capsys)
    assert "no usable frame pair" in err and str(bags["a"]) in err
    err = _run_bad(["keypoints", "--model", str(tmp_path / "missing.pt"), "--image", "x.png", "--out",
                    str(tmp_path / "r.npz")], capsys)
    assert "missing.pt" in err


def test_descriptors_train_on_two_ranks_under_torchrun(bags, tmp_path):
    import os
    import socket
    import subprocess
    from pathlib import Path

    from depth_training.models.descriptor import load_descriptor_model

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "ddp"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--nnodes=1", "--nproc_per_node=2", "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}",
           "--max-restarts=0", "-m", "depth_training.cli", "descriptors", "--dataset", str(bags["a"]), "--dataset",
           str(bags["b"]), "--val-bag", str(bags["d"]), "--out", str(out), "--cpu", "--steps", "4",
           "--cache-dir", str(tmp_path / "cache"), *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["ckpt-00000003.pt", "ckpt-00000004.pt"]
    assert proc.stderr.count("wrote " + str(out / "model.pt")) == 1, log
    hist = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [0, 3, 4], log  # rank 0 alone validates
    assert load_descriptor_model(out / "model.pt")[1]["step"] == 4


def test_keypoints_from_an_image_file_and_given_pixels(trained, tmp_path, capsys):
    import cv2

    out, _ = trained
    img = np.random.default_rng(0).integers(0, 256, (64, 96, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "frame.png"), img[..., ::-1])
    ref_path = tmp_path / "given.npz"
    assert main(["keypoints", "--model", str(out / "model.pt"), "--image", str(tmp_path / "frame.png"), "--pixels",
                 "10,20", "40.5,30", "--names", "handle", "tip", "--out", str(ref_path)]) == 0
    ref = load_reference(ref_path)
    assert ref.names == ["handle", "tip"] and ref.pixels.tolist() == [[10.0, 20.0], [40.5, 30.0]]
    from depth_training.models.descriptor import load_descriptor_model

    net, _ = load_descriptor_model(out / "model.pt")
    with torch.inference_mode():
        d = net(torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)[0]
    np.testing.assert_allclose(ref.descriptors[0], d[:, 20, 10].numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ref.descriptors[1], d[:, 30, 41].numpy(), rtol=1e-5, atol=1e-6)  # 40.5 rounds to 41
    capsys.readouterr()
    err = _run_bad(["keypoints", "--model", str(out / "model.pt"), "--image", str(tmp_path / "frame.png"), "--pixels",
                    "100,20", "--out", str(tmp_path / "bad.npz")], capsys)
    assert "inside the 96x64 image" in err


def test_distribution_term_and_camera_roll_train(bags, tmp_path, caplog):
    """The optional pixelwise distribution term and roll augmentation run in real training steps."""
    import logging
    out = tmp_path / "dist"
    cache = tmp_path.parent / "descriptor_cache_dist"
    argv = ["descriptors", "--dataset", str(bags["a"]), "--out", str(out), "--cache-dir", str(cache), *TINY,
            "--steps", "2", "--weight-distribution", "1", "--distribution-eta", "0.25", "--roll-p", "1"]
    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert any("distribution=" in r.getMessage() for r in caplog.records), caplog.text[-2000:]
    run = json.loads((out / "run.json").read_text())
    assert run["args"]["weight_distribution"] == "1.0" and run["args"]["roll_p"] == "1.0"
    for bad in (["--distribution-eta", "0"], ["--distribution-sigma", "-1"], ["--weight-distribution", "-1"],
                ["--roll-p", "1.5"], ["--roll-max", "0"]):
        with pytest.raises(SystemExit):
            main(["descriptors", "--dataset", str(bags["a"]), "--out", str(out), *bad])
