"""README.md and docs/ stay true: the two set-up commands first, every node parameter documented on
its node's page with its default, the files, scripts and pages they name exist, and the topics
they tell users to record are the ones ``depth-train`` reads by default."""
import importlib
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
PAGES = {p: (REPO / p).read_text() for p in ["README.md"] + sorted(
    str(f.relative_to(REPO)) for f in (REPO / "docs").glob("*.md"))}
NODES = ("stereo_depth_node", "mono_depth_node", "descriptor_tracker_node")


def test_readme_starts_with_demo_and_test():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_readme_stays_an_entry_page():
    """Issue 20 item 9: the details live under docs/; README is short and links every page."""
    assert len(README.splitlines()) <= 150, len(README.splitlines())
    for page in PAGES:
        if page != "README.md":
            assert f"({page})" in README, f"README does not link {page}"
    quick = README[README.index("## Quick start"):README.index("## What works")]
    block = quick.split("```")[1]
    assert len(block.strip().splitlines()) <= 22 and "depth-nodes play" in block and "depth-train sim" in block


@pytest.mark.parametrize("node", NODES)
def test_every_node_parameter_is_in_its_page_table_with_its_default(node):
    text = PAGES[f"docs/{node}.md"]
    for p in importlib.import_module(f"depth_nodes.nodes.{node}").PARAMS:
        rows = [ln for ln in text.splitlines() if ln.startswith(f"| `{p.name}` |")]
        assert rows, f"docs/{node}.md has no row for parameter {p.name}"
        default = str(p.default).lower() if isinstance(p.default, bool) else (
            repr(p.default) if isinstance(p.default, str) else str(p.default))
        assert f"| {default} |" in rows[0], f"docs/{node}.md: default of {p.name} is not {default}"


@pytest.mark.parametrize("page", PAGES)
def test_files_scripts_and_pages_named_exist(page):
    text = PAGES[page]
    for rel in re.findall(r"(?:config|rviz|launch|scripts)/[\w./-]+\.(?:yaml|xml|rviz|py|sh)", text):
        assert (REPO / rel).exists(), f"{page} names {rel}, which does not exist"
    setup = (REPO / "setup.py").read_text()
    for script in set(re.findall(r"\.venv/bin/([\w-]+)", text)) - {"python", "activate"}:
        assert f'"{script} =' in setup or f"'{script} =" in setup or f"{script} = " in setup, (page, script)
    for link in re.findall(r"\]\(([^)#:]+\.(?:md|png))(?:#[^)]*)?\)", text):
        assert (REPO / page).parent.joinpath(link).resolve().is_file(), f"{page} links {link}, which does not exist"


def _recorded_topics(text: str) -> list[set[str]]:
    joined = re.sub(r"\\\n\s*", " ", text)
    return [{w for w in shlex.split(line.split(" #")[0]) if w.startswith("/")}
            for line in joined.splitlines() if line.strip().startswith("ros2 bag record ") and " -o " in line]


@pytest.mark.parametrize("page", ["README.md", "docs/recording_and_training.md"])
def test_documented_recording_holds_the_topics_depth_train_reads_by_default(page):
    from depth_training.bags.summary import TopicConfig

    wanted = {getattr(TopicConfig(), role) for role in (
        "color", "color_info", "depth", "depth_info", "tf", "tf_static", "joint_states", "robot_description")}
    records = _recorded_topics(PAGES[page])
    assert records, f"{page} shows no ros2 bag record command"
    for topics in records:
        assert topics == wanted, f"{page}: ros2 bag record {sorted(topics)} != depth-train defaults {sorted(wanted)}"
