"""The evaluation's outputs: a text table (stdout) and a JSON report.

Table rows are the model and each baseline; columns are the standard metrics (see
:mod:`depth_training.metrics`; ``d_k`` is the fraction of pixels with
``max(d/d*, d*/d) < 1.25^k``, stored as ``a1 .. a3`` in the JSON) and the number of frames
evaluated.

JSON layout (``format: "depth_nodes.depth_eval/1"``)::

    {"format": ..., "settings": {"alignment", "alignment_default", "min_depth", "max_depth",
                                  "batch_size", "device", "baselines", "seed"},
     "source": {"kind", "path", ..., "frames_total", "frames_selected", "frames_evaluated",
                "selection", "indices"},
     "model": {"path", "config"},
     "results": {"model": {"abs_rel", "sq_rel", "rmse", "rmse_log", "a1", "a2", "a3", "num_images"},
                 "untrained": {..., "seed"}, "constant": {..., "value_m"}}}

NaN (no evaluated pixel) is written as ``null``.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

from depth_training.engine.checkpoint import atomic_write_bytes

__all__ = ["REPORT_FORMAT", "COLUMNS", "format_table", "write_json", "json_safe"]

REPORT_FORMAT = "depth_nodes.depth_eval/1"
# (header, key, format)
COLUMNS = (("AbsRel", "abs_rel", "{:.4f}"), ("SqRel", "sq_rel", "{:.4f}"), ("RMSE", "rmse", "{:.4f}"),
           ("RMSE log", "rmse_log", "{:.4f}"), ("d1", "a1", "{:.4f}"), ("d2", "a2", "{:.4f}"),
           ("d3", "a3", "{:.4f}"), ("frames", "num_images", "{:d}"))


def _cell(fmt: str, value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return fmt.format(int(value) if fmt == "{:d}" else float(value))


def format_table(results: Mapping[str, Mapping[str, Any]], labels: Mapping[str, str] | None = None) -> str:
    """``{row name: metrics}`` -> aligned text table, one row per entry (in order), NaN shown as ``-``."""
    labels = labels or {}
    names = [labels.get(k, k) for k in results]
    width = max((len(n) for n in names), default=0)
    cols = [max(len(h), 8) for h, _, _ in COLUMNS]
    lines = [" ".join([" " * width] + [h.rjust(w) for (h, _, _), w in zip(COLUMNS, cols)])]
    for name, metrics in zip(names, results.values()):
        cells = [_cell(fmt, metrics.get(key)).rjust(w) for (_, key, fmt), w in zip(COLUMNS, cols)]
        lines.append(" ".join([name.ljust(width)] + cells))
    return "\n".join(lines)


def json_safe(value: Any) -> Any:
    """Nested dicts/lists/tuples with NaN/inf -> ``None`` and numpy scalars -> Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(path: str | Path, report: Mapping[str, Any]) -> None:
    """Write ``report`` (made :func:`json_safe`) to ``path`` atomically, strict JSON, indented."""
    text = json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n"
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, text.encode())
