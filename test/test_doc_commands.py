"""Every command line shown in README.md and docs/*.md parses as written (issue 12 item 4, issue 20 item 9).

Each command in a fenced code block (continuation lines joined, ``# comments`` dropped, a trailing
``&`` dropped) is checked against the real thing:

* ``depth-train ...`` (also ``torchrun ... -m depth_training.cli ...``) and ``depth-nodes ...`` go
  through their real parsers: an unknown option, a wrong choice or a number the parser refuses
  fails the test with the file and the line;
* a node (``mono_depth_node --ros-args ...``) may only set parameters it declares (``-p``), remap
  names it subscribes or publishes (``-r``; ``__ns``/``__node`` too) and name a ``--params-file`` of
  this repository that exists.
"""
import importlib
import shlex
from pathlib import Path

import pytest

from depth_training.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md"] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))
NODES = ("stereo_depth_node", "mono_depth_node", "descriptor_tracker_node")


def _command_lines(path: Path) -> list[tuple[int, list[str]]]:
    """``(first line number, words)`` of every command in the fenced code blocks of ``path``."""
    out, in_block, pending, start = [], False, "", 0
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_block, pending = not in_block, ""
            continue
        if not in_block:
            continue
        text = line.split(" #", 1)[0].rstrip() if not line.lstrip().startswith("#") else ""
        if not pending:
            start = n
        pending += " " + text.rstrip("\\").strip()
        if text.endswith("\\"):
            continue
        cmd, pending = pending.strip().removesuffix("&").strip(), ""
        for part in cmd.split(" && "):
            words = shlex.split(part) if part.strip() else []
            if words:
                out.append((start, words))
    return out


def _program(words: list[str]) -> tuple[str, list[str]] | None:
    """``(program, argv)`` for the commands this test knows how to check, else None."""
    if "-m" in words and "depth_training.cli" in words:  # torchrun ... -m depth_training.cli ARGS
        return "depth-train", words[words.index("depth_training.cli") + 1:]
    name = Path(words[0]).name
    if name in ("depth-train", "depth-nodes") or name in NODES:
        return name, words[1:]
    return None


ALL = [(doc, n, *prog) for doc in DOCS for n, words in _command_lines(ROOT / doc) if (prog := _program(words))]
CASES = [(doc, n, argv) for doc, n, prog, argv in ALL if prog == "depth-train"]
TOOL_CASES = [(doc, n, argv) for doc, n, prog, argv in ALL if prog == "depth-nodes"]
NODE_CASES = [(doc, n, prog, argv) for doc, n, prog, argv in ALL if prog in NODES]


def test_the_docs_have_training_commands():
    per_doc = {doc: sum(1 for d, _, _ in CASES if d == doc) for doc in DOCS}
    assert per_doc["README.md"] >= 3 and per_doc["docs/training.md"] >= 8, per_doc
    assert per_doc["docs/recording_and_training.md"] >= 8, per_doc
    assert {argv[0] for _, _, argv in CASES} >= {"info", "sim", "mono", "stereo", "supervised", "eval", "export",
                                                 "repair", "descriptors", "keypoints", "eval-descriptors"}
    assert {argv[0] for _, _, argv in TOOL_CASES} >= {"play", "verify", "build-engine"}
    assert {prog for _, _, prog, _ in NODE_CASES} == set(NODES)


@pytest.mark.parametrize("doc,line,argv", CASES, ids=[f"{d}:{n}" for d, n, _ in CASES])
def test_documented_command_parses(doc, line, argv, capsys):
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{doc}:{line}: `depth-train {' '.join(argv)}` is refused by the parser: "
                    f"{capsys.readouterr().err.strip().splitlines()[-1]}")
    assert callable(args.func)
    if args.command in ("mono", "stereo", "supervised"):  # the checks made before anything is read
        from depth_training.modes.cli import check_args

        check_args(args)


@pytest.mark.parametrize("doc,line,argv", TOOL_CASES, ids=[f"{d}:{n}" for d, n, _ in TOOL_CASES])
def test_documented_depth_nodes_command_parses(doc, line, argv, capsys):
    from depth_nodes.cli import build_parser as nodes_parser

    try:
        args = nodes_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"{doc}:{line}: `depth-nodes {' '.join(argv)}` is refused by the parser: "
                    f"{capsys.readouterr().err.strip().splitlines()[-1]}")
    assert callable(args.func)


def node_command_problems(node: str, argv: list[str]) -> list[str]:
    """What is wrong with ``node ARGV`` as a command line: unknown parameters, remaps, missing files."""
    module = importlib.import_module(f"depth_nodes.nodes.{node}")
    params = {p.name for p in module.PARAMS} | {"use_sim_time"}
    names = {t for t, _, _ in (*module.USAGE.inputs, *module.USAGE.outputs)} | {"__ns", "__node"}
    if "--ros-args" not in argv:
        return [] if argv in ([], ["--help"], ["-h"]) else [f"arguments {argv} without --ros-args"]
    problems, words = [], argv[argv.index("--ros-args") + 1:]
    for flag, value in zip(words, words[1:] + [""]):
        if flag == "-p" and value.partition(":=")[0] not in params:
            problems.append(f"-p {value}: {node} has no parameter {value.partition(':=')[0]!r}")
        elif flag == "-r" and value.partition(":=")[0] not in names:
            problems.append(f"-r {value}: {node} neither subscribes nor publishes {value.partition(':=')[0]!r}")
        elif flag == "--params-file" and not value.startswith("/") and not (ROOT / value).is_file():
            problems.append(f"--params-file {value}: no such file in the repository")
    return problems


@pytest.mark.parametrize("doc,line,node,argv", NODE_CASES, ids=[f"{d}:{n}" for d, n, _, _ in NODE_CASES])
def test_documented_node_command_names_real_parameters_and_topics(doc, line, node, argv):
    assert not node_command_problems(node, argv), f"{doc}:{line}: {node_command_problems(node, argv)}"


def test_the_node_command_check_catches_mistakes():
    assert node_command_problems("mono_depth_node", ["--ros-args", "-p", "model_pth:=x.onnx"])
    assert node_command_problems("mono_depth_node", ["--ros-args", "-r", "image_raw:=/cam/image"])
    assert node_command_problems("stereo_depth_node", ["--ros-args", "--params-file", "config/stereo.yaml"])
    assert not node_command_problems("descriptor_tracker_node", [
        "--ros-args", "--params-file", "config/descriptor_tracker.yaml", "-p", "model_path:=d.onnx",
        "-r", "depth/image:=/camera/depth/image_rect_raw", "-r", "__ns:=/tracker"])


@pytest.mark.parametrize("doc", DOCS)
def test_model_best_is_only_used_from_runs_that_validate(doc):
    """A documented ``runs/X/model_best.pt`` comes from a documented run ``--out runs/X`` that validates."""
    parser = build_parser()
    runs = {}
    for _, _, argv in (c for c in CASES if c[0] == doc):
        args = parser.parse_args(argv)
        if args.command in ("mono", "stereo", "supervised"):
            runs[str(args.out).rstrip("/")] = bool(args.val_bag) or args.val_fraction > 0
    for _, line, argv in (c for c in CASES if c[0] == doc):
        args = parser.parse_args(argv)
        model = getattr(args, "model", None)
        if model and str(model).endswith("model_best.pt"):
            run = str(Path(model).parent)
            assert runs.get(run), f"{doc}:{line}: {model} but no documented run --out {run} that validates"


@pytest.mark.parametrize("doc,line,argv", [c for c in TOOL_CASES if c[2][0] == "play"],
                         ids=[f"{d}:{n}" for d, n, a in TOOL_CASES if a[0] == "play"])
def test_documented_play_waits_for_subscribers_and_remaps_camera_info_with_its_image(doc, line, argv):
    """Issue 20 item 10: README's play example remapped the image but not its camera_info (no clouds)
    and started without --wait-for-subscribers (26 of 60 frames lost)."""
    from depth_nodes.cli import build_parser as nodes_parser
    from depth_nodes.tools.play import parse_remaps

    args = nodes_parser().parse_args(argv)
    assert args.wait_for_subscribers > 0, f"{doc}:{line}: play without --wait-for-subscribers"
    remaps = parse_remaps(args.remap)
    for src in remaps:
        if src.endswith(("/image_raw", "/image_rect", "/image")):
            info = src.rsplit("/", 1)[0] + "/camera_info"
            assert info in remaps, f"{doc}:{line}: {src} is remapped but not {info}"
