"""``depth-train eval`` on a tiny simulated recording: sources agree, numbers are right, errors are clear."""
import json

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from depth_training.bags import StreamSpec, SyncedSamples, open_bag
from depth_training.cli import main as depth_train
from depth_training.geometry_torch import disp_to_depth
from depth_training.metrics import METRIC_NAMES, compute_depth_metrics
from depth_training.models import build_depth_net
from depth_training.models.artifact import load_depth_model, save_depth_model
from depth_training.sim import bag_writer as topics
from depth_training.sim.groundtruth import load_groundtruth

torch.set_num_threads(2)

W, H, FRAMES = 96, 72, 8
CONFIG = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
          "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "relative_depth", "mode": "mono"}


@pytest.fixture(scope="module")
def rec(tmp_path_factory):
    """A tiny sim recording, its ground truth, the bag's decoded frames and model files.

    At 1 frame/s the held-out tail (frames 6, 7) lies more than the 2 s read margin after frames 0..3,
    so evaluating it reads only part of the bag."""
    root = tmp_path_factory.mktemp("eval")
    bag = root / "ep"
    assert depth_train(["sim", "--out", str(bag), "--frames", str(FRAMES), "--width", str(W), "--height", str(H),
                        "--seed", "3", "--objects", "3", "--rate", "1", "--quiet"]) == 0
    with open_bag(bag) as b:
        samples = list(SyncedSamples(b, [StreamSpec("color", topics.COLOR_IMAGE, "color"),
                                         StreamSpec("depth", topics.DEPTH_IMAGE, "depth")]))
    rgb = np.stack([s["color"].image for s in samples])
    depth = np.stack([s["depth"].image for s in samples])
    torch.manual_seed(1)
    net = build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))
    with torch.no_grad():  # a fresh net's disparity is ~0.48 everywhere: sharpen its heads so that the
        for head in net.decoder.dispconv:  # prediction follows the image and pipeline details show in the metrics
            head[1].weight.mul_(50.0)
            head[1].bias.zero_()
    models = {}
    for kind in ("relative_depth", "metric_depth", "relative_disparity"):
        models[kind] = root / f"{kind}.pt"
        save_depth_model(models[kind], net, {**CONFIG, "output": kind})
    return {"root": root, "bag": bag, "gt_path": root / "ep.groundtruth.npz", "gt": load_groundtruth(
        root / "ep.groundtruth.npz"), "rgb": rgb, "depth": depth, "models": models}


def _eval(capsys, *args):
    rc = depth_train(["eval", "--device", "cpu", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def _results(path):
    return json.loads(path.read_text())


def test_bag_and_npz_of_the_same_frames_give_the_same_metrics(rec, tmp_path, capsys):
    assert rec["rgb"].shape == (FRAMES, H, W, 3) and np.isnan(rec["depth"]).any()  # the sensor has holes
    np.savez(tmp_path / "frames.npz", rgb=rec["rgb"], depth=rec["depth"])
    sel = ["--frames", "1:7", "--every", "2", "--batch-size", "2"]
    rc, out, err = _eval(capsys, "--model", rec["models"]["relative_depth"], "--bag", rec["bag"], *sel,
                         "--json", tmp_path / "bag.json")
    assert rc == 0, err
    rc, _, err = _eval(capsys, "--model", rec["models"]["relative_depth"], "--npz", tmp_path / "frames.npz", *sel,
                       "--json", tmp_path / "npz.json")
    assert rc == 0, err
    a, b = _results(tmp_path / "bag.json"), _results(tmp_path / "npz.json")
    assert a["source"]["indices"] == b["source"]["indices"] == [1, 3, 5]
    assert a["source"]["kind"] == "bag" and b["source"]["kind"] == "npz"
    assert a["results"] == b["results"]
    assert a["settings"]["alignment"] == "median" and a["settings"]["alignment_default"] is True
    # the table: one row per predictor with the frame count
    rows = {line.split()[0]: line.split() for line in out.splitlines()}
    assert {"model", "untrained", "constant"} <= set(rows)
    assert rows["model"][-1] == rows["constant"][-1] == "3"
    assert rows["model"][-8] == f"{a['results']['model']['abs_rel']:.4f}"


def test_simulator_ground_truth_uses_exact_depth_and_the_bags_colour(rec, tmp_path, capsys):
    gt = rec["gt"]
    np.savez(tmp_path / "exact.npz", rgb=rec["rgb"], depth=gt.depth_m)
    sel = ["--frames", "2:", "--every", "3", "--alignment", "none", "--max-depth", "2.5"]
    rc, out, err = _eval(capsys, "--model", rec["models"]["relative_depth"], "--npz", rec["gt_path"], *sel,
                         "--json", tmp_path / "sim.json")
    assert rc == 0, err
    assert "simulator ground truth" in out
    rc, _, err = _eval(capsys, "--model", rec["models"]["relative_depth"], "--npz", tmp_path / "exact.npz", *sel,
                       "--json", tmp_path / "exact.json")
    assert rc == 0, err
    a, b = _results(tmp_path / "sim.json"), _results(tmp_path / "exact.json")
    assert a["source"]["kind"] == "sim_groundtruth" and a["source"]["bag"] == str(rec["bag"])
    assert a["source"]["indices"] == [2, 5]
    assert a["results"] == b["results"]
    # the constant baseline is the median of the evaluated ground-truth pixels, by hand
    g = gt.depth_m[[2, 5]].astype(np.float64)
    c = np.median(g[np.isfinite(g) & (g > 1e-3) & (g < 2.5)])
    assert a["results"]["constant"]["value_m"] == pytest.approx(c, rel=1e-12)
    abs_rel = np.mean([np.mean(np.abs(np.float32(c) - gi[v]) / gi[v])
                       for gi in g for v in [np.isfinite(gi) & (gi > 1e-3) & (gi < 2.5)]])
    assert a["results"]["constant"]["abs_rel"] == pytest.approx(abs_rel, rel=1e-9)



def test_stereo_left_camera_of_a_simulator_file_uses_its_own_depth_and_images(rec, tmp_path, capsys):
    """--sim-camera stereo_left: the left stereo images with the left stereo camera's exact depth."""
    gt = rec["gt"]
    with open_bag(rec["bag"]) as b:
        left = np.stack([s["left"].image for s in SyncedSamples(b, [StreamSpec("left", topics.LEFT_IMAGE, "color")])])
    np.savez(tmp_path / "left.npz", rgb=left, depth=gt.stereo_left_depth_m)
    sel = ["--frames", "1:", "--every", "2", "--alignment", "none", "--max-depth", "3"]
    rc, out, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", rec["gt_path"],
                         "--sim-camera", "stereo_left", *sel, "--json", tmp_path / "sim.json")
    assert rc == 0, err
    assert "stereo_left_depth_m" in out and topics.LEFT_IMAGE in out
    rc, _, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", tmp_path / "left.npz", *sel,
                       "--json", tmp_path / "left.json")
    assert rc == 0, err
    a, b = _results(tmp_path / "sim.json"), _results(tmp_path / "left.json")
    assert a["source"]["camera"] == "stereo_left" and a["source"]["color_topic"] == topics.LEFT_IMAGE
    assert a["results"] == b["results"]
    assert not np.allclose(gt.stereo_left_depth_m, gt.depth_m)  # a different camera, not the wrist one
    rc, out_color, _ = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", rec["gt_path"], *sel)
    assert rc == 0 and out_color != out
    # --sim-camera only means something for a simulator file
    rc, _, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", tmp_path / "left.npz",
                       "--sim-camera", "stereo_left")
    assert rc == 2 and "left.npz" in err and "--sim-camera" in err
    rc, _, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--bag", rec["bag"], "--sim-camera", "color")
    assert rc == 2 and "--sim-camera" in err

@pytest.mark.parametrize("kind,alignment,cap", [("metric_depth", "none", 10.0), ("relative_depth", "median", 2.5)])
def test_model_metrics_equal_a_direct_computation(rec, tmp_path, capsys, kind, alignment, cap):
    """On the held-out tail, the CLI's numbers are those of running the network by hand at its input size,
    resizing its disparity bilinearly to the ground truth and converting it to depth; the alignment
    follows the model's output kind and the cap is applied."""
    rc, _, err = _eval(capsys, "--model", rec["models"][kind], "--bag", rec["bag"], "--tail", "0.25",
                       "--max-depth", cap, "--baselines", "none", "--json", tmp_path / "m.json")
    assert rc == 0, err
    report = _results(tmp_path / "m.json")
    assert report["source"]["indices"] == [6, 7] and report["source"]["frames_total"] == FRAMES
    assert report["settings"]["alignment"] == alignment and report["settings"]["max_depth"] == cap
    assert set(report["results"]) == {"model"}
    net, _ = load_depth_model(rec["models"][kind])
    x = torch.from_numpy(rec["rgb"][6:]).permute(0, 3, 1, 2).float() / 255.0
    with torch.no_grad():
        disp = net(F.interpolate(x, size=(64, 96), mode="bilinear", align_corners=False, antialias=True))[0]
    depth = disp_to_depth(F.interpolate(disp, size=(H, W), mode="bilinear", align_corners=False), 0.1, 10.0)[1]
    expected = compute_depth_metrics(depth, rec["depth"][6:], min_depth=1e-3, max_depth=cap, alignment=alignment)
    assert expected["num_images"] == 2 and expected["abs_rel"] > 0.05
    for name in (*METRIC_NAMES, "num_images"):
        assert report["results"]["model"][name] == pytest.approx(expected[name], rel=1e-5), name


def test_json_has_every_metric_for_the_model_and_each_baseline(rec, tmp_path, capsys):
    rc, out, err = _eval(capsys, "--model", rec["models"]["relative_disparity"], "--bag", rec["bag"], "--every", "4",
                         "--color-info", topics.COLOR_INFO, "--json", tmp_path / "r.json",
                         "--save-predictions", tmp_path / "png")
    assert rc == 0, err
    report = _results(tmp_path / "r.json")
    assert report["format"] == "depth_nodes.depth_eval/1"
    assert report["settings"]["alignment"] == "ssi_disparity"
    assert report["model"]["config"]["output"] == "relative_disparity"
    source = report["source"]
    assert source["color_topic"] == topics.COLOR_IMAGE and source["depth_topic"] == topics.DEPTH_IMAGE
    assert set(report["results"]) == {"model", "untrained", "constant"}
    for name, row in report["results"].items():
        for key in (*METRIC_NAMES, "num_images"):
            assert isinstance(row[key], (int, float)), (name, key)
        assert row["num_images"] == 2
        assert 0.0 <= row["a1"] <= row["a2"] <= row["a3"] <= 1.0
    assert report["results"]["untrained"]["seed"] == 0 and report["results"]["constant"]["value_m"] > 0
    pngs = sorted((tmp_path / "png").glob("*.png"))
    assert [p.name for p in pngs] == ["frame_000000.png", "frame_000004.png"]
    assert cv2.imread(str(pngs[0])).shape == (H, 3 * W, 3)


def test_user_mistakes_exit_2_naming_the_file(rec, tmp_path, capsys):
    model = rec["models"]["relative_depth"]
    rc, _, err = _eval(capsys, "--model", model, "--bag", rec["bag"], "--depth-topic", "/nope/depth")
    assert rc == 2 and f"{rec['bag']}: /nope/depth" in err and "topic not in the bag" in err
    assert len(err.strip().splitlines()) == 1

    np.savez(tmp_path / "bad.npz", rgb=np.zeros((2, H, W, 3), np.uint8), depth=np.ones((2, H - 2, W), np.float32))
    rc, _, err = _eval(capsys, "--model", model, "--npz", tmp_path / "bad.npz")
    assert rc == 2 and f"{tmp_path / 'bad.npz'}: rgb (2, {H}, {W}, 3) and depth (2, {H - 2}, {W}) do not match" in err

    np.savez(tmp_path / "nodepth.npz", rgb=np.zeros((2, H, W, 3), np.uint8))
    rc, _, err = _eval(capsys, "--model", model, "--npz", tmp_path / "nodepth.npz")
    assert rc == 2 and "nodepth.npz: missing key(s) depth" in err

    (tmp_path / "junk.pt").write_bytes(b"not a model")
    rc, _, err = _eval(capsys, "--model", tmp_path / "junk.pt", "--bag", rec["bag"])
    assert rc == 2 and f"{tmp_path / 'junk.pt'}: not a readable torch file" in err

    orphan = tmp_path / "orphan.groundtruth.npz"
    orphan.write_bytes(rec["gt_path"].read_bytes())
    rc, _, err = _eval(capsys, "--model", model, "--npz", orphan)
    assert rc == 2 and f"{orphan}: holds no colour images and its bag {tmp_path / 'orphan'} does not exist" in err

    rc, _, err = _eval(capsys, "--model", model, "--bag", rec["bag"], "--frames", "50:60")
    assert rc == 2 and "leaves no frame of 8" in err and topics.COLOR_IMAGE in err

    rc, _, err = _eval(capsys, "--model", model, "--bag", rec["bag"], "--max-depth", "0.05")
    assert rc == 2 and f"{rec['bag']}: no ground-truth depth inside (0.001, 0.05) m" in err

    rc, _, err = _eval(capsys, "--model", model, "--bag", rec["bag"], "--baselines", "untrained,oracle")
    assert rc == 2 and "--baselines: unknown oracle" in err


def test_several_sources_are_one_set_with_frame_weighted_means(rec, tmp_path, capsys):
    """Two sources: the model's means are the frame-weighted means of the parts."""
    sel = ["--alignment", "none", "--baselines", "untrained"]
    first = tmp_path / "first.npz"
    np.savez(first, rgb=rec["rgb"][:3], depth=rec["gt"].depth_m[:3])
    outs = {}
    for name, sources in (("a", ["--npz", first]), ("b", ["--npz", rec["gt_path"]]),
                          ("ab", ["--npz", first, "--npz", rec["gt_path"]])):
        rc, out, err = _eval(capsys, "--model", rec["models"]["metric_depth"], *sources, *sel,
                             "--json", tmp_path / f"{name}.json")
        assert rc == 0, err
        outs[name] = out
    a, b, ab = (_results(tmp_path / f"{n}.json") for n in ("a", "b", "ab"))
    assert ab["source"]["kind"] == "multiple" and len(ab["source"]["sources"]) == 2
    assert ab["source"]["frames_evaluated"] == 3 + FRAMES and "2 sources" in outs["ab"]
    for metric in METRIC_NAMES:
        expected = (3 * a["results"]["model"][metric] + FRAMES * b["results"]["model"][metric]) / (3 + FRAMES)
        assert ab["results"]["model"][metric] == pytest.approx(expected, rel=1e-6), metric
    # frames of another size cannot be pooled
    np.savez(tmp_path / "small.npz", rgb=rec["rgb"][:2, :32], depth=rec["gt"].depth_m[:2, :32])
    rc, _, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", first, "--npz",
                       tmp_path / "small.npz", *sel)
    assert rc == 2 and "small.npz" in err and "separately" in err
    rc, _, err = _eval(capsys, "--model", rec["models"]["metric_depth"], "--npz", rec["gt_path"], "--npz",
                       rec["gt_path"], "--bag", rec["bag"])
    assert rc == 2 and "one bag per ground-truth file" in err
