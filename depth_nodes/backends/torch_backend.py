"""torch backend: ``.pt2`` programs from ``torch.export`` (the runtime path), or a depth model file.

``torch`` is imported only when this backend is created.

``.pt2`` safety. ``torch.export.load`` unpickles parts of the archive with
``torch.load(weights_only=False)`` / ``pickle.loads`` (sample inputs, weights and constants saved
with ``use_pickle``, custom and opaque objects), so a crafted ``.pt2`` could run code. This
backend therefore reads the archive into memory once and, before handing those same bytes to
``torch.export.load``, (1) refuses custom/opaque objects and (2) loads every pickled member with
``torch.load(weights_only=True)``, refusing the file if any member needs more than tensors and
plain containers. A member that passes the restricted unpickler builds the same objects when
torch unpickles it again, so nothing but tensors is constructed. The graph itself is JSON and
calls registered torch operators only.

Model file (``.pt``, ``format: depth_nodes.depth_model/1`` written by training): read with
``torch.load(weights_only=True)``; the network is rebuilt with ``depth_training`` (imported
lazily, so this path needs the training package installed; robots should use ``.pt2``/``.onnx``).
It computes what ``depth-train export`` would export: input ``image`` ``(B, 3, H, W)`` RGB in
``[0, 1]`` at the model's training size, output ``depth`` or ``disparity`` (``output=`` to choose).

``.pt2`` files written by :func:`export_pt2` carry their input/output names in
``extra/depth_nodes.json``; other ``.pt2`` files get the forward's argument names and
``output0``, ``output1`` ...
"""
from __future__ import annotations

import io
import json
import time
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np

from depth_nodes.backends.base import BackendError
from depth_nodes.backends.inference import TensorSpec, check_feeds

__all__ = ["TorchBackend", "check_pt2_archive", "export_pt2", "PT2_EXTRA"]

PT2_EXTRA = "depth_nodes.json"
_TORCH_DTYPES = {"float32": "float32", "float16": "float16", "float64": "float64", "int64": "int64",
                 "int32": "int32", "uint8": "uint8", "bool": "bool"}


def check_pt2_archive(path: str | Path, data: bytes) -> None:
    """Refuse a ``.pt2`` archive (its bytes ``data``) whose pickled members need more than tensors.

    Raises:
        BackendError: not a zip archive, holds custom/opaque Python objects, or a pickled member
            that ``torch.load(weights_only=True)`` refuses.
    """
    import torch

    where = str(path)
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise BackendError(f"{where}: not a torch.export .pt2 archive (not a zip file)") from exc
    names = zf.namelist()
    if not any(n.endswith("models/model.json") or "/models/" in n for n in names):
        raise BackendError(f"{where}: not a torch.export .pt2 archive (no models/*.json)")
    pickled: list[str] = []
    for name in names:
        base = name.rsplit("/", 1)[-1]
        if "/data/constants/" in f"/{name}" and base.startswith(("custom_obj_", "opaque_obj_")):
            raise BackendError(f"{where}: holds a pickled Python object ({name}); refusing to load it")
        if base.endswith((".pt", ".pkl", ".pickle")):
            pickled.append(name)
        if base.endswith("_config.json") and ("/data/weights/" in f"/{name}" or "/data/constants/" in f"/{name}"):
            try:
                config = json.loads(zf.read(name)).get("config", {})
            except (ValueError, AttributeError) as exc:
                raise BackendError(f"{where}: unreadable {name} ({exc})") from exc
            folder = name.rsplit("/", 1)[0]
            for meta in config.values():
                if meta.get("use_pickle"):
                    pickled.append(f"{folder}/{meta.get('path_name')}")
    for name in pickled:
        try:
            torch.load(io.BytesIO(zf.read(name)), weights_only=True, map_location="cpu")
        except KeyError as exc:
            raise BackendError(f"{where}: archive member {name} is missing") from exc
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{where}: {name} is a pickle that needs more than tensors ({first}); "
                               f"refusing to load it") from exc


def export_pt2(module, example: Sequence, path: str | Path, input_names: Sequence[str] = ("image",),
               output_names: Sequence[str] = ("depth",), dynamic_batch: bool = True) -> Path:
    """``torch.export`` ``module`` on ``example`` inputs and save it to ``path`` with its I/O names.

    ``dynamic_batch`` makes dimension 0 of every input dynamic (the export then needs an example
    batch of at least 2, torch specialises sizes 0 and 1).
    """
    import torch

    dynamic_shapes = None
    if dynamic_batch:
        batch = torch.export.Dim("batch", min=1, max=64)
        dynamic_shapes = tuple({0: batch} for _ in example)
    ep = torch.export.export(module.eval(), tuple(example), dynamic_shapes=dynamic_shapes)
    path = Path(path)
    meta = {"inputs": list(input_names), "outputs": list(output_names)}
    torch.export.save(ep, str(path), extra_files={PT2_EXTRA: json.dumps(meta)})
    return path


class TorchBackend:
    """A ``torch.export`` program or a depth model file behind the inference interface.

    Args:
        path: ``.pt2`` or ``.pt``.
        device: ``"cpu"`` or ``"cuda"``.
        half: run in float16 (CUDA); inputs and outputs stay float32 at the interface.
        output: for a ``.pt`` model file, ``"depth"`` or ``"disparity"`` (default as the export).
        compile: wrap the module in ``torch.compile``.
    """

    name = "torch"

    def __init__(self, path: str | Path, device: str = "cpu", half: bool = False, output: str | None = None,
                 compile: bool = False):
        import torch

        self._torch = torch
        self.path = Path(path)
        where = str(self.path)
        if not self.path.is_file():
            raise BackendError(f"{where}: no such model file")
        if device == "cuda" and not torch.cuda.is_available():
            raise BackendError(f"{where}: device 'cuda' requested but torch has no CUDA device")
        self.device = torch.device(device)
        self.half = bool(half)
        if self.path.suffix.lower() == ".pt2":
            module, self.inputs, self.outputs = self._load_pt2(where)
        else:
            module, self.inputs, self.outputs = self._load_model_file(where, output)
        try:
            module = module.to(self.device)
        except Exception as exc:
            raise BackendError(f"{where}: cannot move the program to {device} ({exc})") from exc
        if self.half:
            module = module.half()
        if compile:
            module = torch.compile(module)
        self.module = module
        self._host: dict[tuple, list] = {}
        self.last_latency_s = float("nan")

    # -- loading -------------------------------------------------------------------------------
    def _load_pt2(self, where: str):
        torch = self._torch
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise BackendError(f"{where}: cannot read ({exc})") from exc
        check_pt2_archive(where, data)
        extra = {PT2_EXTRA: ""}
        try:
            ep = torch.export.load(io.BytesIO(data), extra_files=extra)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{where}: not a loadable torch.export program ({first})") from exc
        meta = json.loads(extra[PT2_EXTRA]) if extra[PT2_EXTRA] else {}
        sig = ep.graph_signature
        placeholders = {n.name: n for n in ep.graph.nodes if n.op == "placeholder"}
        in_names = list(meta.get("inputs") or sig.user_inputs)
        inputs = []
        for i, user in enumerate(sig.user_inputs):
            val = placeholders[user].meta.get("val")
            shape = tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape)
            name = in_names[i] if i < len(in_names) else user
            inputs.append(TensorSpec(name, shape, str(val.dtype).replace("torch.", "")))
        out_nodes = [n for n in ep.graph.nodes if n.op == "output"][0].args[0]
        out_names = list(meta.get("outputs") or [])
        outputs = []
        for i, node in enumerate(out_nodes):
            val = node.meta.get("val") if hasattr(node, "meta") else None
            shape = tuple(int(d) if isinstance(d, int) or str(d).isdigit() else None for d in val.shape) \
                if val is not None else ()
            dtype = str(val.dtype).replace("torch.", "") if val is not None else "float32"
            outputs.append(TensorSpec(out_names[i] if i < len(out_names) else f"output{i}", shape, dtype))
        return ep.module(), inputs, outputs

    def _load_model_file(self, where: str, output: str | None):
        torch = self._torch
        try:
            blob = torch.load(str(self.path), map_location="cpu", weights_only=True)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{where}: not a readable torch file without code ({first})") from exc
        if not isinstance(blob, dict) or blob.get("format") != "depth_nodes.depth_model/1":
            raise BackendError(f"{where}: not a depth model file (format depth_nodes.depth_model/1); "
                               "use a .pt2 from torch.export or an .onnx")
        try:
            from depth_training.evaluation.export import default_output
            from depth_training.models.artifact import ModelFileError, build_from_config, check_model_config
            from depth_training.models.depth_decoder import DepthInference
        except ImportError as exc:
            raise BackendError(f"{where}: a model file needs the depth_training package; "
                               "export it to .onnx or .pt2 for the runtime") from exc
        try:
            cfg = check_model_config(blob.get("config") or {}, where)
            net = build_from_config(cfg)
            net.load_state_dict(blob.get("state_dict") or {})
        except (ModelFileError, RuntimeError) as exc:
            raise BackendError(f"{where}: {str(exc).splitlines()[0]}") from exc
        output = output or default_output(cfg)
        module = DepthInference(net.eval(), output, float(cfg["min_depth"]), float(cfg["max_depth"])).eval()
        h, w = int(cfg["height"]), int(cfg["width"])
        self.config = cfg
        return (module, [TensorSpec("image", ("batch", 3, h, w), "float32")],
                [TensorSpec(output, ("batch", 1, h, w), "float32")])

    # -- running -------------------------------------------------------------------------------
    def infer(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one batch. On CPU the returned arrays share memory with torch's outputs (no copy);
        on CUDA they are pinned host buffers reused for every frame of the same shape."""
        torch = self._torch
        where = str(self.path)
        check_feeds(where, self.inputs, feeds)
        args = []
        for spec in self.inputs:
            t = torch.from_numpy(np.ascontiguousarray(feeds[spec.name]))
            if self.device.type != "cpu":
                t = t.to(self.device, non_blocking=True)
            if self.half and t.is_floating_point():
                t = t.half()
            args.append(t)
        t0 = time.perf_counter()
        try:
            with torch.inference_mode():
                out = self.module(*args)
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendError(f"{where}: inference failed ({first})") from exc
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        if len(outs) != len(self.outputs):
            raise BackendError(f"{where}: program returned {len(outs)} outputs, expected {len(self.outputs)}")
        if self.device.type == "cpu":
            result = {s.name: (o.float() if self.half else o).numpy() for s, o in zip(self.outputs, outs)}
        else:
            key = tuple(tuple(o.shape) for o in outs)
            host = self._host.get(key)
            if host is None:
                host = [torch.empty(o.shape, dtype=torch.float32 if o.is_floating_point() else o.dtype,
                                    pin_memory=True) for o in outs]
                self._host[key] = host
            for h, o in zip(host, outs):
                h.copy_(o, non_blocking=True)
            torch.cuda.current_stream(self.device).synchronize()
            result = {s.name: h.numpy() for s, h in zip(self.outputs, host)}
        self.last_latency_s = time.perf_counter() - t0
        return result

    def warmup(self) -> None:
        feeds = {s.name: np.zeros([d if isinstance(d, int) and d > 0 else 1 for d in s.shape], np.dtype(s.dtype))
                 for s in self.inputs}
        for _ in range(2):
            self.infer(feeds)

    def close(self) -> None:
        self.module = None
        self._host.clear()

    def __repr__(self) -> str:
        return f"TorchBackend({str(self.path)!r}, device={self.device}, half={self.half})"
