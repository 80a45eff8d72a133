"""Evaluation and export of trained depth models (``depth-train eval``, ``depth-train export``).

Modules:
    selection  which frames of a recording are evaluated (range, every k-th, held-out tail)
    sources    ground truth + colour images from a bag, a simulator ``.groundtruth.npz`` or a
               generic ``.npz`` -> :class:`~depth_training.evaluation.sources.EvalFrames`
    predict    a model file's network -> predictions at the ground truth's resolution
    baselines  the untrained network and the constant-depth prediction
    evaluate   batched evaluation of one predictor with :func:`depth_training.metrics.compute_depth_metrics`
    report     the results table and the JSON report
    previews   ``--save-predictions``: colour | ground truth | prediction PNGs
    export     ONNX export of :class:`~depth_training.models.DepthInference` + sidecar + verification
    cli        the two subcommands
"""
