"""depth_nodes: depth and dense-descriptor perception nodes for ROS 2.

Layers (who may import whom), see ``shared/DESIGN.md``:

* :mod:`depth_nodes.nodes`      rclpy entry points (thin)
* :mod:`depth_nodes.ros`        message <-> numpy glue, QoS, parameters, synchronisation
* :mod:`depth_nodes.pipelines`  ROS-free preprocess -> backend -> postprocess
* :mod:`depth_nodes.backends`   inference backends (OpenCV SGBM, ONNX Runtime, TensorRT, torch)
* :mod:`depth_nodes.geometry`   camera model, stereo maths, point clouds (numpy)

Only ``nodes`` and ``ros`` import rclpy or message types.
"""
__version__ = "0.1.0"
