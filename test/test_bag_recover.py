"""Issue 8 item 8: cut-off recordings are read up to their last complete message, and repaired.

Real bags written with rosbags (MCAP uncompressed and zstd-chunked, sqlite3) are cut at several
points - inside the chunk header, inside the chunk's records, just before the end - the way a
killed recorder leaves them (no summary, footer or metadata.yaml; a .db3 missing its last pages).
"""
import re
import warnings

import pytest

from depth_training.bags.errors import BagOpenError, BagWarning
from depth_training.bags.reader import open_bag
from depth_training.bags.recover import recover_bag, scan_mcap
from depth_training.bags.synthetic import write_synthetic_bag
from depth_training.cli import main as depth_train
from train_modes_helpers import FAST, write_tiny_bag


def _messages(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagWarning)
        with open_bag(path) as bag:
            return [(m.topic, m.log_ns, bytes(m.data)) for m in bag.raw_messages()]


def _cut(src_dir, dst_dir, keep_bytes):
    """A copy of the rosbag2 directory ``src_dir`` as a killed recorder leaves it: storage file cut, no metadata."""
    dst_dir.mkdir()
    storage = next(p for p in src_dir.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage.read_bytes()
    (dst_dir / storage.name).write_bytes(data[:keep_bytes if keep_bytes > 0 else len(data) + keep_bytes])
    return dst_dir


@pytest.fixture(scope="module")
def bags(tmp_path_factory):
    root = tmp_path_factory.mktemp("recover")
    out = {}
    for fmt in ("mcap", "sqlite3"):
        write_synthetic_bag(root / fmt, fmt, frames=16)
        out[fmt] = root / fmt
    # an MCAP with zstd-compressed chunks (rosbag2's storage presets with compression write these)
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

    # zstd decodes whole 128 KiB blocks only: a longer recording, so that a cut chunk has complete blocks
    src, dst = root / "long", root / "zstd"
    write_synthetic_bag(src, "mcap", frames=100)
    w = Writer(dst, version=9, storage_plugin=StoragePlugin.MCAP)
    w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with open_bag(src) as bag, w:
        conns = {}
        for raw in bag.raw_messages():
            if raw.topic not in conns:
                conns[raw.topic] = w.add_connection(raw.topic, raw.msgtype, typestore=bag._reader.typestore)
            w.write(conns[raw.topic], raw.log_ns, raw.data)
    out["zstd"] = dst
    return out


def _storage_size(d):
    return next(p for p in d.iterdir() if p.suffix in (".mcap", ".db3")).stat().st_size


@pytest.mark.parametrize("fmt", ["mcap", "zstd", "sqlite3"])
def test_cut_off_bags_read_up_to_the_last_complete_message(bags, tmp_path, fmt):
    full = _messages(bags[fmt])
    size = _storage_size(bags[fmt])
    counts = []
    for frac in ((0.3, 0.6, 0.9) if fmt == "zstd" else (0.2, 0.5, 0.8)):
        cut = _cut(bags[fmt], tmp_path / f"cut{frac}", int(size * frac))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BagWarning)
            bag = open_bag(cut)
        texts = [str(w.message) for w in caught]
        assert any("metadata.yaml is missing" in t for t in texts)  # the recorder never closed it
        assert any(re.search(r"cut off .*recovered \d+ complete messages.*stopped at byte \d+ of", t) for t in texts)
        with bag:
            got = [(m.topic, m.log_ns, bytes(m.data)) for m in bag.raw_messages()]
            assert bag.recovery is not None and bag.recovery.message_count == len(got) == bag.message_count
            assert sum(1 for _ in bag.messages()) == len(got)  # every recovered message deserialises
            assert set(bag.topics) == {t for t, _, _ in full}  # topics whose messages were lost stay listed
        assert 0 < len(got) < len(full)
        # exactly the messages that were written before the cut (the reader sorts by log time)
        assert set(got) <= set(full) and len(set(got)) == len(got)
        counts.append(len(got))
    assert counts == sorted(counts) and len(set(counts)) == 3


def test_mcap_cut_inside_the_chunk_says_so_and_keeps_its_first_records(bags, tmp_path):
    size = _storage_size(bags["mcap"])
    rec = scan_mcap(next(_cut(bags["mcap"], tmp_path / "c", size // 2).iterdir()))
    assert "cut inside the chunk starting at byte" in rec.reason and rec.messages
    assert rec.stopped_at_byte <= size // 2
    head = scan_mcap(next(_cut(bags["mcap"], tmp_path / "h", 60).iterdir()))  # inside the chunk header
    assert head.messages == [] and "chunk header" in head.reason
    with pytest.raises(BagOpenError, match="nothing recoverable"):
        recover_bag(tmp_path / "h", tmp_path / "h_out")


def test_whole_file_is_reported_complete(bags, tmp_path):
    rec = scan_mcap(next(p for p in bags["mcap"].iterdir() if p.suffix == ".mcap"))
    assert rec.complete and len(rec.messages) == len(_messages(bags["mcap"]))


@pytest.mark.parametrize("fmt", ["mcap", "sqlite3"])
def test_repair_writes_a_closed_copy_with_the_recovered_messages(bags, tmp_path, capsys, fmt):
    cut = _cut(bags[fmt], tmp_path / "cut", int(_storage_size(bags[fmt]) * 0.6))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BagWarning)
        recovered = _messages(cut)
    assert depth_train(["repair", str(cut), "--out", str(tmp_path / "fixed")]) == 0
    out = capsys.readouterr().out
    assert f"recovered {len(recovered)} complete messages" in out and "properly closed" in out
    assert (tmp_path / "fixed" / "metadata.yaml").is_file()
    with warnings.catch_warnings():
        warnings.simplefilter("error", BagWarning)  # the copy opens without any warning
        assert _messages(tmp_path / "fixed") == recovered
    assert depth_train(["repair", str(cut), "--out", str(tmp_path / "fixed")]) == 2  # never overwrites
    assert "already exists" in capsys.readouterr().err


def test_info_and_training_read_a_cut_off_recording(tmp_path, capsys, caplog):
    bag = write_tiny_bag(tmp_path / "tiny", frames=12)
    cut = _cut(bag, tmp_path / "cut", int(_storage_size(bag) * 0.8))
    assert depth_train(["info", str(cut), "--topics", "color_info=/camera/color/camera_info"]) == 0
    out = capsys.readouterr().out
    assert "recording was cut off" in out and f"depth-train repair {cut}" in out
    run = tmp_path / "run"
    assert depth_train(["supervised", "--dataset", str(cut), "--out", str(run), *FAST, "--steps", "2",
                        "--batch-size", "2", "--val-every", "0", "--ckpt-every", "0", "--val-fraction", "0"]) == 0
    logged = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("recording was cut off" in m and "recovered 29 complete messages" in m for m in logged), logged
    assert (run / "model.pt").is_file()


def test_eval_reads_a_cut_off_recording(tmp_path, capsys):
    from depth_training.models import build_depth_net
    from depth_training.models.artifact import save_depth_model

    bag = write_tiny_bag(tmp_path / "tiny", frames=12)
    cut = _cut(bag, tmp_path / "cut", int(_storage_size(bag) * 0.7))
    save_depth_model(tmp_path / "model.pt", build_depth_net("mobile", decoder_channels=(8, 16, 32, 64, 128)),
                     {"encoder": "mobile", "num_scales": 4, "decoder_channels": [8, 16, 32, 64, 128], "height": 64,
                      "width": 64, "min_depth": 0.1, "max_depth": 10.0, "output": "metric_depth"})
    assert depth_train(["eval", "--model", str(tmp_path / "model.pt"), "--bag", str(cut), "--baselines", "none"]) == 0
    captured = capsys.readouterr()
    assert "depth-train eval: warning:" in captured.err and "recording was cut off" in captured.err
    assert "abs_rel" in captured.out.lower() or "AbsRel" in captured.out
