"""ONNX export of the depth inference wrapper: same output in onnxruntime."""
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from depth_training.models import DepthInference, build_depth_net

torch.set_num_threads(2)


@pytest.mark.parametrize("encoder", ["resnet18", "mobile"])
def test_depth_inference_onnx_matches_torch(encoder, tmp_path):
    torch.manual_seed(0)
    net = build_depth_net(encoder)
    # non-trivial BatchNorm statistics, so that eval-mode export is actually exercised
    with torch.no_grad():
        net.train()
        net(torch.rand(2, 3, 64, 96))
    model = DepthInference(net).eval()
    x = torch.rand(1, 3, 64, 96)
    path = tmp_path / f"depth_{encoder}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (x,), str(path), opset_version=17, dynamo=False,
                          input_names=["image"], output_names=["disparity"])
    onnx.checker.check_model(onnx.load(str(path)))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_inputs()[0].shape == [1, 3, 64, 96]
    for sample in (x, torch.rand(1, 3, 64, 96)):
        (out,) = session.run(None, {"image": sample.numpy()})
        with torch.no_grad():
            ref = model(sample).numpy()
        assert out.shape == (1, 1, 64, 96)
        np.testing.assert_allclose(out, ref, atol=1e-5, rtol=1e-4)
