"""read_yaml_or_json: the format by suffix (else the caller's default), one-line errors naming the file."""
import pytest

from depth_nodes.structured_files import read_yaml_or_json


class Oops(Exception):
    pass


def test_format_follows_the_suffix_then_the_default(tmp_path):
    (tmp_path / "a.json").write_text('{"x": [1, 2]}')
    (tmp_path / "a.yaml").write_text("x: [1, 2]\n")
    (tmp_path / "a.yml").write_text("x: [1, 2]\n")
    (tmp_path / "a.txt").write_text("x: [1, 2]\n")  # YAML, not JSON
    for name in ("a.json", "a.yaml", "a.yml"):
        assert read_yaml_or_json(tmp_path / name, Oops) == {"x": [1, 2]}
    assert read_yaml_or_json(tmp_path / "a.txt", Oops, default="yaml") == {"x": [1, 2]}
    with pytest.raises(Oops, match=r"a\.txt: not valid JSON"):
        read_yaml_or_json(tmp_path / "a.txt", Oops, default="json")
    with pytest.raises(ValueError, match="default"):
        read_yaml_or_json(tmp_path / "a.txt", Oops, default="toml")


def test_errors_are_one_line_of_the_callers_class(tmp_path):
    (tmp_path / "bad.yaml").write_text("x: [1, 2\ny: 3\n")
    (tmp_path / "bad.json").write_text('{"x": 1,}')
    (tmp_path / "latin.json").write_bytes(b'{"x": "\xe9"}')
    cases = [(tmp_path / "bad.yaml", "bad.yaml: not valid YAML ("), (tmp_path / "bad.json", "bad.json: not valid JSON ("),
             (tmp_path / "latin.json", "latin.json: cannot read the manifest ("),
             (tmp_path / "missing.json", "missing.json: cannot read the manifest (")]
    for path, start in cases:
        with pytest.raises(Oops) as info:
            read_yaml_or_json(path, Oops, what="manifest")
        text = str(info.value)
        assert str(path.parent) in text and start in text and "\n" not in text, text
