"""Mutation testing of the core maths (`make mutation`): mutmut, one module at a time.

For each module below, mutmut makes one-change copies of its functions ("mutants": ``+`` for ``-``,
``1`` for ``0``, an argument dropped, ...) and runs the unit tests that reach the changed function.
A mutant the tests fail on is *killed*; one they pass on *survived*: a bug the suite would not see,
or a change that behaves the same (an *equivalent* mutant, listed with its reason in EQUIVALENT).

Each module runs in its own work folder out/mutation/<module>/ (mutmut keeps its state there, which
--report-only reads), with the installed package names (``depth_training`` is the
folder training/) and only the listed unit tests: no DDS nodes, no training runs. mutmut gets one
worker and the script runs under ``nice``. Each module tests a fixed random sample of its mutants
(``--sample``, ``--seed``; all of them take hours). The report (killed / survived / timeout per
module and each survivor's diff) goes to out/mutation/report.md; docs/mutation.md has the results.

    .venv/bin/python scripts/mutation.py                    # every module, 40 mutants each
    .venv/bin/python scripts/mutation.py --only geometry    # one module (repeatable)
    .venv/bin/python scripts/mutation.py --report-only      # rebuild the report from the saved state
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import random
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "out" / "mutation"
PACKAGES = {"depth_nodes": "depth_nodes", "depth_training": "training"}  # import name -> folder
DATA = ("test", "config")  # folders the tests read, copied next to the mutated packages


@dataclass(frozen=True)
class Module:
    name: str
    globs: tuple[str, ...]  # files to mutate, as import-name paths
    tests: tuple[str, ...]  # pytest arguments selecting the covering unit tests


MODULES = (
    Module("geometry", ("depth_nodes/geometry/*",),
           ("test/test_camera_geometry.py", "test/test_pointcloud.py", "test/test_properties.py",
            "test/test_mono_pipeline.py", "test/test_descriptor_tracking.py")),
    Module("pipelines", ("depth_nodes/pipelines/*",),
           ("test/test_depth_io.py", "test/test_mono_scale.py", "test/test_keypoint_tracking.py",
            "test/test_descriptor_tracking.py", "test/test_stereo_pipeline.py", "test/test_sync_and_worker.py",
            "test/test_pointcloud.py", "test/test_mono_pipeline.py", "test/test_properties.py")),
    Module("description", ("depth_nodes/backends/description.py",),
           ("test/test_description.py", "test/test_depth_io.py")),
    Module("engine_cache", ("depth_nodes/backends/engine_cache.py",),
           ("test/test_engine_cache.py",)),
    Module("losses", ("depth_training/losses/*",),
           ("test/test_losses_photometric.py", "test/test_losses_pixel_contrastive.py",
            "test/test_losses_pixel_distribution.py", "test/test_losses_reprojection.py",
            "test/test_losses_silog.py", "test/test_losses_smoothness.py", "test/test_losses_ssi.py",
            "test/test_losses_stereo.py", "test/test_properties.py")),
    Module("correspondence", ("depth_training/correspondence/*",),
           ("test/test_correspondence_rules.py", "test/test_correspondence.py", "test/test_correspondence_roll.py")),
    Module("recover", ("depth_training/bags/recover.py",),
           ("test/test_bag_recover_offsets.py",)),  # test_bag_recover.py trains a model: minutes per mutant
    Module("input_diagnosis", ("depth_nodes/ros/input_diagnosis.py",),
           ("test/test_input_diagnosis.py", "test/test_qos_auto_and_diagnosis.py", "-k",
            "not follower and not resubscribe")),  # those two start rclpy nodes
)

# Survivors that behave exactly like the original, one line each: mutant name -> why.
EQUIVALENT: dict[str, str] = {
    "depth_nodes.backends.engine_cache.x_ensure_engine__mutmut_131":
        "name of the temporary build record, renamed onto the real one before anything reads it",
    "depth_nodes.backends.engine_cache.x_ensure_engine__mutmut_136":
        "indentation of the JSON build record: it reads back the same",
    "depth_nodes.ros.input_diagnosis.xǁInputDiagnosisǁcheck__mutmut_21": 'float("INF") == float("inf")',
    "depth_nodes.pipelines.depth_io.x_postprocess_depth__mutmut_123": "None stored in a float array is NaN",
    "depth_nodes.pipelines.keypoint_tracking.xǁDescriptorPCAǁcolorize__mutmut_42":
        "float64 instead of float32 gains: the same uint8 colours",
    "depth_nodes.pipelines.mono_scale.x_to_metric_depth__mutmut_75": "an extra copy of a new array",
    "depth_nodes.pipelines.mono_scale.x_to_metric_depth__mutmut_72": "copy=None: a copy only if needed, as copy=False",
    "depth_training.bags.recover.x_scan_sqlite3__mutmut_120": "SQL keywords and names are case-insensitive",
    "depth_training.bags.recover.x_scan_sqlite3__mutmut_191": "SQL keywords and names are case-insensitive",
    "depth_training.bags.recover.x_scan_sqlite3__mutmut_59": "prefix of a temporary folder's name",
    "depth_training.bags.recover.x__chunk_records__mutmut_15":
        "b'XXXX' instead of b'' for an undecodable chunk: 4 bytes hold no record either",
    "depth_training.bags.recover.x_scan_mcap__mutmut_17": "initial reason, always overwritten before returning",
    "depth_training.losses.pixel_distribution.x_gaussian_targets__mutmut_9":
        "integer offsets added to float pixel coordinates: the same float sums",
    "depth_training.losses.reprojection.x_min_reprojection__mutmut_22":
        "noise_std = 0: noise drawn and multiplied by 0, the errors are unchanged",
    "depth_nodes.geometry.camera.x__info_key__mutmut_113": "int(None or 0) == int(0 or 0)",
    "depth_nodes.geometry.camera.x__info_key__mutmut_95": "another constant in the cache key for a header without frame",
    "depth_nodes.geometry.camera.x__info_key__mutmut_96": "another constant in the cache key for a message without header",
    "depth_nodes.geometry.camera.xǁPinholeCameraǁrays__mutmut_9": "an integer arange minus a float cx is float64 too",
    "depth_nodes.geometry.pointcloud.x_organized_points__mutmut_147":
        "unreachable (pragma: no cover): cv2.merge always writes into dst",
    "depth_training.correspondence.roll.x_roll_frame__mutmut_74":
        "float64 instead of uint8 ones warped: the same zeros outside the view",
    "depth_nodes.geometry.pointcloud.x_organized_points__mutmut_146":
        "unreachable (pragma: no cover): cv2.merge always writes into dst",
    "depth_nodes.backends.description.x_description_from_mapping__mutmut_123": "bool(None) == bool(False)",
    "depth_nodes.backends.engine_cache.x_ensure_engine__mutmut_138":
        "layout of the JSON build record: it reads back the same",
    "depth_training.bags.recover.x_scan_sqlite3__mutmut_44":
        "signed or unsigned page count: the same below 2^31 pages (8 TiB at the smallest page size)",
    "depth_nodes.ros.input_diagnosis.xǁInputDiagnosisǁnote_incompatible__mutmut_6":
        "split or rsplit at ':' of 'kind:topic': ROS topic names hold no ':'",
    "depth_training.correspondence.dataset.xǁPairDatasetǁ_frame__mutmut_4":
        "random() <= roll_p and < roll_p differ only when random() returns roll_p exactly",
    "depth_training.correspondence.geometry.x_find_correspondences__mutmut_79":
        "-1e9 or -1000000001 for -inf: clipped to -1e9 right after",
    "depth_training.correspondence.roll.x_roll_frame__mutmut_13": "dsize None: the source size, which is (w, h)",
    "depth_training.correspondence.roll.x_roll_frame__mutmut_63": "dsize None: the source size, which is (w, h)",
    "depth_nodes.geometry.pointcloud.x__packed_rgb_plane__mutmut_10": "scratch buffer key: any name unique to it",
    "depth_nodes.geometry.pointcloud.x_organized_points__mutmut_59": "scratch buffer key: any name unique to it",
    "depth_nodes.ros.input_diagnosis.xǁInputDiagnosisǁcheck__mutmut_17":
        "age_s (time.monotonic) equal to elapsed (the injected clock) only by coincidence: <= and < agree",
}



# Not mutated: raise/log/print statements (message text; the tests check messages with match= where
# it matters, and a changed exception type is still an exception).
SKIP_LINES = (r"\braise\b", r"\.(debug|info|warning|warn|error|exception)\(", r"\bprint\(")


def _config(module: Module) -> str:
    lines = ["[mutmut]", "source_paths =", *(f"    {p}" for p in PACKAGES),
             "only_mutate =", *(f"    {g}" for g in module.globs),
             "do_not_mutate_patterns =", *(f"    {p}" for p in SKIP_LINES),
             "pytest_add_cli_args_test_selection =", *(f"    {t}" for t in module.tests),
             "also_copy =", *(f"    {d}" for d in DATA if d != "test"),
             "pytest_add_cli_args =", "    -p", "    no:cacheprovider",
             "use_git_change_detection = false",
             # workers fork from a server that has imported nothing threaded: a fork of the main
             # process (which ran the tests, torch included) can deadlock on a lock held by a thread
             "process_isolation = forkserver", ""]
    return "\n".join(lines)


def _work_folder(module: Module, work: Path | None = None) -> Path:
    """out/mutation/<module>/ with the packages under their import names and the config."""
    work = work or OUT / module.name
    work.mkdir(parents=True, exist_ok=True)
    for name, folder in PACKAGES.items():
        link = work / name
        if not link.is_symlink():
            link.symlink_to(ROOT / folder, target_is_directory=True)
    for folder in DATA:
        if not (work / folder).is_symlink():
            (work / folder).symlink_to(ROOT / folder, target_is_directory=True)
    (work / "setup.cfg").write_text(_config(module))
    (work / "pytest.ini").write_text((ROOT / "pytest.ini").read_text())
    return work


def all_mutants(module: Module) -> list[str]:
    """The names of every mutant of ``module`` (generated in a scratch copy of its work folder)."""
    scratch = _work_folder(module, OUT / module.name / ".names")
    shutil.rmtree(scratch / "mutants", ignore_errors=True)
    code = ("import json,sys\nfrom pathlib import Path\nfrom mutmut.__main__ import create_mutants_for_file\n"
            "from mutmut.configuration import config\nfrom mutmut.utils.file_utils import walk_mutatable_files\n"
            "names=[]\nfor f in walk_mutatable_files():\n    out=Path('mutants')/f\n"
            "    out.parent.mkdir(parents=True, exist_ok=True)\n    create_mutants_for_file(f, out)\n"
            "    names+=json.loads(Path(str(out)+'.meta').read_text())['exit_code_by_key']\nprint(json.dumps(names))")
    res = subprocess.run([sys.executable, "-c", code], cwd=scratch, capture_output=True, text=True, check=True)
    return sorted(json.loads(res.stdout.strip().splitlines()[-1]))


def run_module(module: Module, log, sample: int, seed: int = 0) -> int:
    work = _work_folder(module)
    names = all_mutants(module)
    pick = random.Random(f"{module.name}:{seed}")
    chosen = names if sample <= 0 or sample >= len(names) else sorted(pick.sample(names, sample))
    (work / "chosen.json").write_text(json.dumps({"all": len(names), "chosen": chosen}))
    print(f"{module.name}: {len(chosen)} of {len(names)} mutants", flush=True)
    if (work / "mutants").exists():  # the source may have changed: mutmut re-creates what differs
        for folder in DATA:  # copied again by mutmut, as they are now
            shutil.rmtree(work / "mutants" / folder, ignore_errors=True)
        # which test reaches which function: mutmut refreshes it for new tests only, not for edited ones
        (work / "mutants" / "mutmut-stats.json").unlink(missing_ok=True)
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1",
               DEPTH_NODES_SIM_CACHE=str(OUT / "sim_cache"))  # simulator episodes recorded once, not per mutant
    cmd = ["nice", "-n", "10", sys.executable, "-m", "mutmut", "run", "--max-children", "1", *chosen]
    start = time.monotonic()
    rc = subprocess.call(cmd, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"{module.name}: mutmut exit {rc} after {time.monotonic() - start:.0f} s", flush=True)
    return rc


def _results(module: Module) -> tuple[dict[str, int | None], int]:
    """The chosen mutants' exit codes (mutmut's saved state) and how many mutants the module has."""
    out: dict[str, int | None] = {}
    for meta in sorted((OUT / module.name / "mutants").rglob("*.py.meta")):
        out.update(json.loads(meta.read_text())["exit_code_by_key"])
    chosen_file = OUT / module.name / "chosen.json"
    if not chosen_file.is_file():
        return {}, 0
    chosen = json.loads(chosen_file.read_text())
    return {n: out.get(n) for n in chosen["chosen"]}, chosen["all"]


def _diffs(module: Module, names: list[str]) -> dict[str, str]:
    """Each survivor's diff, from mutmut in the module's work folder."""
    if not names:
        return {}
    code = ("import json,sys\nfrom mutmut.__main__ import find_mutant, get_diff_for_mutant\n"
            "out={}\nfor n in sys.argv[1:]:\n    out[n]=get_diff_for_mutant(n, path=find_mutant(n).path)\n"
            "print(json.dumps(out))")
    res = subprocess.run([sys.executable, "-c", code, *names], cwd=OUT / module.name, capture_output=True, text=True)
    if res.returncode:
        return {n: f"(no diff: {res.stderr.strip().splitlines()[-1] if res.stderr.strip() else 'mutmut failed'})"
                for n in names}
    return json.loads(res.stdout.strip().splitlines()[-1])


def report(modules) -> str:
    from mutmut.stats import status_by_exit_code  # killed / survived / timeout / segfault / no tests ...
    rows, details = [], []
    for module in modules:
        results, total = _results(module)
        if not results:
            rows.append(f"| {module.name} | not run | | | | | | | |")
            continue
        status = {n: status_by_exit_code[c] for n, c in results.items()}
        killed = sum(s in ("killed", "segfault") for s in status.values())  # segfault: the test process died
        survived = sorted(n for n, s in status.items() if s == "survived")
        timeout = sum(s == "timeout" for s in status.values())
        other = len(status) - killed - len(survived) - timeout  # no tests, not checked: count as not killed
        equivalent = [n for n in survived if n in EQUIVALENT]
        score = 100.0 * (killed + timeout) / max(len(status) - len(equivalent), 1)
        rows.append(f"| {module.name} | {total} | {len(status)} | {killed} | {len(survived)} | {len(equivalent)} | {timeout} "
                    f"| {other} | {score:.1f} % |")
        diffs = _diffs(module, survived)
        for n in survived:
            why = EQUIVALENT.get(n)
            details.append(f"### {n}\n" + (f"Equivalent: {why}\n" if why else "Not killed.\n")
                           + f"```diff\n{diffs.get(n, '').strip()}\n```\n")
        others = sorted(f"{n} ({s})" for n, s in status.items() if s not in ("killed", "segfault", "survived", "timeout"))
        if others:
            details.append(f"### {module.name}: neither killed nor survived\n" + "\n".join(f"- {o}" for o in others) + "\n")
    head = ("| module | mutants | tested | killed | survived | of which equivalent | timeout | other | killed + timeout "
            "of the non-equivalent |\n|---|---|---|---|---|---|---|---|---|")
    return "\n".join(["# Mutation report", "", head, *rows, "", "## Survivors and others", "", *details])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=[m.name for m in MODULES],
                        help="run this module only (repeatable)")
    parser.add_argument("--sample", type=int, default=40,
                        help="test this many mutants per module, a fixed (seeded) random choice; 0 = all (hours)")
    parser.add_argument("--seed", type=int, default=0, help="another seed draws another sample")
    parser.add_argument("--report-only", action="store_true", help="rebuild out/mutation/report.md only")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MODULES}
    chosen = [by_name[n] for n in dict.fromkeys(args.only)] if args.only else list(MODULES)  # in the order given
    OUT.mkdir(parents=True, exist_ok=True)
    failed = []
    if not args.report_only:
        for module in chosen:
            with open(OUT / f"{module.name}.log", "w") as log:
                if run_module(module, log, args.sample, args.seed):
                    failed.append(module.name)
    text = report(MODULES)
    (OUT / "report.md").write_text(text)
    print(text.split("## Survivors")[0])
    print(f"report: {OUT / 'report.md'}; logs: {OUT}/<module>.log")
    if failed:
        print(f"mutmut failed for {', '.join(failed)} (see their logs)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
