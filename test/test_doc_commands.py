"""Issue 12 item 4: every ``depth-train`` command line in README.md and docs/training.md parses as written.

Each command in a fenced code block (continuation lines joined, ``# comments`` dropped; ``torchrun
... -m depth_training.cli ...`` too) goes through the real parser; an unknown option, a wrong
choice or a number the parser refuses fails the test with the file and the line.
"""
import shlex
from pathlib import Path

import pytest

from depth_training.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "docs/training.md"]


def _commands(path: Path) -> list[tuple[int, str]]:
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
        cmd, pending = pending.strip(), ""
        words = shlex.split(cmd) if cmd else []
        if "-m" in words and "depth_training.cli" in words:  # torchrun ... -m depth_training.cli ARGS
            out.append((start, words[words.index("depth_training.cli") + 1:]))
        elif words and words[0].endswith("depth-train"):
            out.append((start, words[1:]))
    return out


CASES = [(doc, n, argv) for doc in DOCS for n, argv in _commands(ROOT / doc)]


def test_the_docs_have_training_commands():
    per_doc = {doc: sum(1 for d, _, _ in CASES if d == doc) for doc in DOCS}
    assert per_doc["README.md"] >= 8 and per_doc["docs/training.md"] >= 8, per_doc
    assert {argv[0] for _, _, argv in CASES} >= {"info", "sim", "mono", "stereo", "supervised", "eval", "export",
                                                 "repair"}


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
