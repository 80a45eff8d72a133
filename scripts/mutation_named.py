"""The survivors named in issue 21, each applied by hand to a copy of the code and run against the
test written to kill it: every line must say KILLED (the test fails on the mutation).

    .venv/bin/python scripts/mutation_named.py

The copy lives in out/mutation/named/ (packages under their import names, first on PYTHONPATH), so
the working tree is never modified.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "out" / "mutation" / "named"
COPY = {"depth_nodes": "depth_nodes", "depth_training": "training", "test": "test", "config": "config"}

# (what, file as imported, original text, mutated text, test that must fail)
CASES = [
    ("mono_scale: outliers trimmed on one side only", "depth_nodes/pipelines/mono_scale.py",
     "new = np.abs(r) <= thr", "new = r <= thr",
     "test/test_mono_scale.py::test_align_trims_outliers_on_both_sides"),
    ("mono_scale: a negative fitted scale accepted", "depth_nodes/pipelines/mono_scale.py",
     "elif not a > 0:", "elif False:",
     "test/test_mono_scale.py::test_align_refuses_a_scale_that_is_not_positive"),
    ("depth_io: disparity rescaled with the vertical factor", "depth_nodes/pipelines/depth_io.py",
     "y *= np.float32(1.0 / letterbox.scale_x)", "y *= np.float32(1.0 / letterbox.scale_y)",
     "test/test_depth_io.py::test_disparity_uses_the_horizontal_factor_when_the_axes_are_resized_differently"),
    ("descriptor_tracking: half-pixel shift dropped", "depth_nodes/pipelines/descriptor_tracking.py",
     "(track.pixels[:, 0] + 0.5) / lb.scale_x - 0.5", "track.pixels[:, 0] / lb.scale_x",
     "test/test_descriptor_tracking.py::test_network_pixels_map_to_camera_pixels_with_the_half_pixel_shift_per_axis"),
    ("descriptor_tracking: 3D Y computed with fx", "depth_nodes/pipelines/descriptor_tracking.py",
     "(pixels[ok, 1] - camera.cy) / camera.fy", "(pixels[ok, 1] - camera.cy) / camera.fx",
     "test/test_descriptor_tracking.py::test_keypoints_3d_uses_fx_for_x_and_fy_for_y_at_the_nearest_pixel"),
    ("camera: resized() computes cy with the horizontal factor", "depth_nodes/geometry/camera.py",
     "[0.0, sy, 0.5 * sy - 0.5]", "[0.0, sy, 0.5 * sx - 0.5]",
     "test/test_camera_geometry.py::test_resize_with_different_factors_per_axis_on_an_off_centre_camera"),
    ("engine_cache: the profile's opt shape left out of the key", "depth_nodes/backends/engine_cache.py",
     '"opt": list(p.opt), ', "", "test/test_engine_cache.py::test_every_part_of_a_profile_is_in_the_key"),
    ("description: the input range's offset dropped", "depth_nodes/backends/description.py",
     "mean=(-float(lo),) * 3", "mean=(0.0,) * 3",
     "test/test_description.py::test_sidecar_input_range_maps_pixel_0_to_lo_and_255_to_hi"),
    ("description: the old latent bug (mean = lo)", "depth_nodes/backends/description.py",
     "mean=(-float(lo),) * 3", "mean=(float(lo),) * 3",
     "test/test_description.py::test_sidecar_input_range_maps_pixel_0_to_lo_and_255_to_hi"),
    ("recover: the stop offset one record early", "depth_training/bags/recover.py",
     "stop = records_at + inner.pos if", "stop = records_at + ioff if",
     "test/test_bag_recover_offsets.py::test_cut_inside_a_chunk_stops_at_the_first_byte_of_the_partial_record"),
    ("recover: the stop offset past the partial record", "depth_training/bags/recover.py",
     "            buf.pos = start\n            return", "            return",
     "test/test_bag_recover_offsets.py::test_unchunked_cut_inside_a_record_and_between_records"),
    ("recover: a torn last message kept", "depth_training/bags/recover.py",
     "if check.parses(topics[tid], data):", "if True:",
     "test/test_bag_recover_offsets.py::test_repair_drops_a_torn_last_message_and_keeps_the_rest"),
    ("input_diagnosis: the sign of the stamp offset ignored", "depth_nodes/ros/input_diagnosis.py",
     "return min(((s - r) for s in stamps for r in reference), key=abs)",
     "return abs(min(((s - r) for s in stamps for r in reference), key=abs))",
     "test/test_input_diagnosis.py::test_stamp_offsets_keep_their_sign_and_both_signs_are_checked_against_the_tolerance"),
    ("input_diagnosis: only late stamps checked against the tolerance", "depth_nodes/ros/input_diagnosis.py",
     "abs(off) <= slop_ns", "off <= slop_ns",
     "test/test_input_diagnosis.py::test_stamp_offsets_keep_their_sign_and_both_signs_are_checked_against_the_tolerance"),
]


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    for name, folder in COPY.items():
        shutil.copytree(ROOT / folder, WORK / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pytest.ini", WORK / "pytest.ini")
    env = dict(os.environ, PYTHONPATH=str(WORK), PYTHONDONTWRITEBYTECODE="1")

    def pytest(*tests):
        return subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                               *tests], cwd=WORK, env=env, capture_output=True, text=True)

    clean = pytest(*sorted({c[-1] for c in CASES}))  # unmutated, every test must pass (else a kill means nothing)
    if clean.returncode:
        print(f"the tests fail on the unmutated copy:\n{clean.stdout[-3000:]}", file=sys.stderr)
        return 2
    probe = subprocess.run([sys.executable, "-c", "import depth_nodes, depth_training; print(depth_nodes.__file__, "
                            "depth_training.__file__)"], cwd=WORK, env=env, capture_output=True, text=True)
    if not all(p.startswith(str(WORK)) for p in probe.stdout.split()):
        print(f"the copy is not the code imported: {probe.stdout.strip()}", file=sys.stderr)
        return 2
    survived = 0
    for what, rel, old, new, test in CASES:
        path = WORK / rel
        orig = path.read_text()
        if orig.count(old) != 1:
            print(f"STALE    | {what}: {rel} no longer holds {old!r} once", flush=True)
            survived += 1
            continue
        path.write_text(orig.replace(old, new))
        try:
            res = pytest(test)
        finally:
            path.write_text(orig)
        verdict = {1: "KILLED", 0: "SURVIVED"}.get(res.returncode, f"ERROR {res.returncode}")
        survived += verdict != "KILLED"
        tail = (res.stdout.strip().splitlines() or ["?"])[-1]
        print(f"{verdict:8} | {what} | {test.split('::')[-1]} ({tail})", flush=True)
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
