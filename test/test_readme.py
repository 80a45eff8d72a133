"""README.md stays true: the two set-up commands first, every node parameter documented, and
every console script and config file it names exists."""
import re
from pathlib import Path

from depth_nodes.nodes.stereo_depth_node import PARAMS

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def test_readme_starts_with_demo_and_test():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


def test_every_stereo_parameter_is_in_the_readme_table_with_its_default():
    for p in PARAMS:
        row = [line for line in README.splitlines() if line.startswith(f"| `{p.name}` |")]
        assert row, f"README has no row for parameter {p.name}"
        default = str(p.default).lower() if isinstance(p.default, bool) else (
            repr(p.default) if isinstance(p.default, str) else str(p.default))
        assert f"| {default} |" in row[0], f"README default of {p.name} is not {default}"


def test_files_and_scripts_the_readme_names_exist():
    for rel in re.findall(r"(?:config|rviz|launch|scripts)/[\w./-]+\.(?:yaml|xml|rviz|py)", README):
        assert (REPO / rel).exists(), f"README names {rel}, which does not exist"
    setup = (REPO / "setup.py").read_text()
    for script in set(re.findall(r"\.venv/bin/([\w-]+)", README)) - {"python", "activate"}:
        assert f'"{script} =' in setup or f"'{script} =" in setup or f"{script} = " in setup, script
