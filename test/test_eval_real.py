"""``depth-train eval --images``: manifests, the inverse-depth alignment, the priors, both model routes, real frames."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from depth_nodes.known_models import write_affine_depth_model
from depth_training.cli import main as depth_train
from depth_training.evaluation.predict import NetworkPredictor
from depth_training.evaluation.real_eval import frame_metrics, prior_inverse_depth
from depth_training.evaluation.real_frames import gt_to_depth, load_real_set
from depth_training.models import build_depth_net
from depth_training.models.artifact import save_depth_model
from real_data import real_path

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
H, W = 36, 52  # non-square; rows and columns tell apart


def _eval(capsys, *args):
    rc = depth_train(["eval", "--device", "cpu", "--threads", "1", *map(str, args)])
    out, err = capsys.readouterr()
    return rc, out, err


def test_priors_and_alignment_match_hand_computed_values():
    # three rows of inverse depth 1, 1, 4 (depth 1, 1, 0.25), repeated over 5 columns
    depth = np.repeat(np.array([[1.0], [1.0], [0.25]]), 5, axis=1)
    # ramp: fit s v + t to (0, 1), (1, 1), (2, 4): s = 1.5, t = 0.5 -> inverse 0.5, 2, 3.5 -> depth 2, 0.5, 2/7
    ramp = frame_metrics(prior_inverse_depth("ramp", 3, 5), depth, 1e-3, 10.0)
    assert ramp["a1"] == pytest.approx(1 / 3)
    assert ramp["abs_rel"] == pytest.approx((1.0 + 0.5 + (2 / 7 - 0.25) / 0.25) / 3)
    # constant: s = 0, t = mean(1, 1, 4) = 2 -> depth 0.5 everywhere: ratios 2, 2, 2
    const = frame_metrics(prior_inverse_depth("constant", 3, 5), depth, 1e-3, 10.0)
    assert const["a1"] == 0.0 and const["abs_rel"] == pytest.approx((0.5 + 0.5 + 1.0) / 3)
    # unknown pixels and pixels outside the range are not evaluated
    holes = depth.copy()
    holes[2, :2], holes[0, 4] = np.nan, 20.0
    assert frame_metrics(prior_inverse_depth("ramp", 3, 5), holes, 1e-3, 10.0)["pixels"] == 12
    assert prior_inverse_depth("ramp", 3, 5)[:, 0].tolist() == [0, 1, 2]


def test_an_exact_ramp_scores_one_and_an_inverted_one_falls_back_to_the_constant():
    v = np.arange(H, dtype=np.float64)[:, None] * np.ones((1, W))
    depth = 1.0 / (0.2 + 0.05 * v)  # inverse depth linear in the row, growing downwards
    ramp = frame_metrics(prior_inverse_depth("ramp", H, W), depth, 1e-3, 10.0)
    assert ramp["a1"] == 1.0 and ramp["abs_rel"] < 1e-9
    assert frame_metrics(prior_inverse_depth("constant", H, W), depth, 1e-3, 10.0)["a1"] < 0.6
    flipped = depth[::-1]  # far at the bottom: scale >= 0 leaves only the shift
    assert frame_metrics(prior_inverse_depth("ramp", H, W), flipped, 1e-3, 10.0) == \
        frame_metrics(prior_inverse_depth("constant", H, W), flipped, 1e-3, 10.0)


def test_ground_truth_conversion():
    raw = np.array([[0, 5000, 10000], [65535, 2500, 0]], np.uint16)
    z = gt_to_depth(raw, "depth", 1 / 5000)
    assert np.isnan(z[0, 0]) and np.isnan(z[1, 2]) and z[0, 1] == pytest.approx(1.0) and z[1, 1] == pytest.approx(0.5)
    d = gt_to_depth(np.array([[0.0, 2.0, -1.0, 40.0]], np.float32), "disparity", 0.5, focal_baseline=3.0)
    assert np.isnan(d[0, 0]) and np.isnan(d[0, 2]) and d[0, 1] == pytest.approx(3.0) and d[0, 3] == pytest.approx(0.15)


def _scene():
    """Colour whose red channel is a column-and-row pattern, and metric depth whose inverse is
    affine in that red value (so the affine ONNX model below is exact) but not in the row."""
    v, u = np.mgrid[0:H, 0:W]
    red = (30 + 14 * (u % 13) + v).astype(np.uint8)
    rgb = np.stack([red, np.full_like(red, 90), (u * 4).astype(np.uint8)], axis=-1)
    depth = 1.0 / (0.25 + 2.0 * red / 255.0)  # metres, 0.48 .. 2.1
    return rgb, depth


def _write_folder(folder: Path, kind: str = "depth", manifest_name: str = "manifest.json") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rgb, depth = _scene()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b.png"), cv2.cvtColor(rgb[::-1].copy(), cv2.COLOR_RGB2BGR))
    if kind == "depth":
        mm = np.round(depth * 1000).astype(np.uint16)
        mm[:3, :5] = 0  # no reading
        cv2.imwrite(str(folder / "a_depth.png"), mm)
        cv2.imwrite(str(folder / "b_depth.png"), mm[::-1].copy())
        gt = {"kind": "depth", "scale": 0.001}
    else:  # disparity of a camera with fx * B = 20 px m, stored in float
        disp = (20.0 / depth).astype(np.float32)
        np.save(folder / "a_depth.npy", disp)
        np.save(folder / "b_depth.npy", disp[::-1].copy())
        gt = {"kind": "disparity", "scale": 1.0}
    suffix = "npy" if kind == "disparity" else "png"
    doc = {"format": "depth_nodes.real_eval/1", "name": "synthetic", "ground_truth": gt,
           "intrinsics": {"fx": 60.0, "fy": 55.0, "cx": 27.5, "cy": 16.0}, "min_depth": 0.01, "max_depth": 5.0,
           "frames": [{"name": "up", "color": "a.png", "gt": f"a_depth.{suffix}"},
                      {"color": "b.png", "gt": f"b_depth.{suffix}"}]}
    (folder / manifest_name).write_text(json.dumps(doc))


@pytest.mark.parametrize("kind", ["depth", "disparity"])
def test_cli_on_a_written_folder_with_an_onnx_model_through_the_runtime(tmp_path, capsys, kind):
    _write_folder(tmp_path / "imgs", kind)
    onnx, _ = write_affine_depth_model(tmp_path / "m.onnx", H, W, a=0.25, b=2.0, kind="relative_inverse_depth")
    rc, out, err = _eval(capsys, "--images", tmp_path / "imgs", "--model", onnx, "--json", tmp_path / "r.json")
    assert rc == 0, err
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["format"] == "depth_nodes.real_eval_report/1" and rep["model"]["kind"] == "runtime"
    assert [f["frame"] for f in rep["frames"]] == ["up", "b"]
    for f in rep["frames"]:
        assert f["pixels"] == H * W - (15 if kind == "depth" else 0)
        model = f["results"]["model"]
        assert model["a1"] == 1.0 and model["abs_rel"] < 2e-3  # exact up to millimetre / float rounding
        assert f["results"]["ramp"]["a1"] < 0.9 and f["results"]["constant"]["a1"] < 0.9
    # the priors in the report are those of the ground truth read back from the files
    s = load_real_set(tmp_path / "imgs")
    expect = frame_metrics(prior_inverse_depth("ramp", H, W), s.frames[1].depth, 0.01, 5.0)
    assert rep["frames"][1]["results"]["ramp"]["a1"] == pytest.approx(expect["a1"])
    assert rep["mean"]["ramp"]["a1"] == pytest.approx(np.mean([f["results"]["ramp"]["a1"] for f in rep["frames"]]))
    assert rep["mean"]["model"]["frames"] == 2
    lines = out.splitlines()
    assert any(line.startswith("synthetic/up ") for line in lines) and any(line.startswith("mean ") for line in lines)
    assert "model d1" in out and "ramp d1" in out and "constant d1" in out


def test_cli_with_a_depth_model_file_and_a_manifest_beside_the_folder(tmp_path, capsys):
    _write_folder(tmp_path / "imgs", "depth", manifest_name="elsewhere.json")
    (tmp_path / "imgs" / "elsewhere.json").rename(tmp_path / "m.json")
    torch.manual_seed(0)
    net = build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128))
    config = {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
              "width": 96, "min_depth": 0.1, "max_depth": 10.0, "output": "relative_disparity", "mode": "supervised"}
    save_depth_model(tmp_path / "model.pt", net, config)
    rc, _, err = _eval(capsys, "--images", tmp_path / "imgs", "--manifest", tmp_path / "m.json",
                       "--model", tmp_path / "model.pt", "--json", tmp_path / "r.json")
    assert rc == 0, err
    rep = json.loads((tmp_path / "r.json").read_text())
    s = load_real_set(tmp_path / "imgs", tmp_path / "m.json")
    predictor = NetworkPredictor(net, config, "ssi_disparity", "cpu")
    for row, frame in zip(rep["frames"], s.frames):
        direct = frame_metrics(predictor(frame.rgb[None])[0], frame.depth, 0.01, 5.0)
        assert row["results"]["model"]["a1"] == pytest.approx(direct["a1"])
        assert row["results"]["model"]["abs_rel"] == pytest.approx(direct["abs_rel"])


def test_bad_folders_and_options_exit_2_naming_the_problem(tmp_path, capsys):
    _write_folder(tmp_path / "imgs")
    rc, _, err = _eval(capsys, "--images", tmp_path / "nothing")
    assert rc == 2 and "nothing: no such image folder" in err
    (tmp_path / "empty").mkdir()
    rc, _, err = _eval(capsys, "--images", tmp_path / "empty")
    assert rc == 2 and "no manifest" in err
    (tmp_path / "imgs" / "b_depth.png").unlink()
    rc, _, err = _eval(capsys, "--images", tmp_path / "imgs")
    assert rc == 2 and "b_depth.png: no such ground-truth file" in err
    cv2.imwrite(str(tmp_path / "imgs" / "b_depth.png"), np.ones((H, W - 1), np.uint16))
    rc, _, err = _eval(capsys, "--images", tmp_path / "imgs")
    assert rc == 2 and "registered to the colour image" in err
    doc = json.loads((tmp_path / "imgs" / "manifest.json").read_text())
    (tmp_path / "imgs" / "manifest.json").write_text(json.dumps({**doc, "ground_truth": {"kind": "depth", "scal": 1}}))
    rc, _, err = _eval(capsys, "--images", tmp_path / "imgs")
    assert rc == 2 and "manifest.json: unknown ground_truth key(s) ['scal']" in err
    rc, _, err = _eval(capsys, "--images", tmp_path / "imgs", "--alignment", "median")
    assert rc == 2 and "--alignment median" in err
    rc, _, err = _eval(capsys, "--npz", tmp_path / "x.npz")
    assert rc == 2 and "--model: required" in err


REAL = [("stereo/cones", "cones.yaml"), ("rgbd/tum_fr1_desk", "tum_fr1_desk.yaml"),
        ("rgbd/kinect_5_frames_with_poses", "kinect_5_frames_with_poses.yaml")]
# the priors on the shared real frames as issue 19 measured them (delta1 after the inverse-depth fit)
EXPECTED = {"cones/left": (0.870, 0.313), "tum_fr1_desk/desk1": (0.671, 0.533),
            "tum_fr1_desk/desk2": (0.665, 0.507)}


def test_the_shared_real_frames_through_the_repository_manifests(tmp_path, capsys):
    args = []
    for folder, manifest in REAL:
        args += ["--images", real_path(*folder.split("/")), "--manifest", ROOT / "config" / "real_eval" / manifest]
    rc, out, err = _eval(capsys, *args, "--json", tmp_path / "real.json")
    assert rc == 0, err
    rep = json.loads((tmp_path / "real.json").read_text())
    got = {f"{f['set']}/{f['frame']}": f for f in rep["frames"]}
    assert len(got) == 8 and all(f["pixels"] > 150_000 for f in got.values())
    for name, (ramp, const) in EXPECTED.items():
        assert got[name]["results"]["ramp"]["a1"] == pytest.approx(ramp, abs=0.006), name
        assert got[name]["results"]["constant"]["a1"] == pytest.approx(const, abs=0.006), name
    kinect = [f["results"] for n, f in got.items() if n.startswith("kinect_room/")]
    assert all(0.28 <= r["ramp"]["a1"] <= 0.42 and 0.2 <= r["constant"]["a1"] <= 0.41 for r in kinect)
