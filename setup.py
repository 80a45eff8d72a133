"""ament_python / pip build for depth_nodes.

Two Python packages ship from this repository:
  * ``depth_nodes``     (folder ``depth_nodes/``): the ROS 2 runtime (nodes, glue, pipelines,
    inference backends, camera geometry).
  * ``depth_training``  (folder ``training/``): offline tools behind the ``depth-train`` command.
    The runtime never imports it.
"""
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "depth_nodes"

runtime_packages = find_packages(include=["depth_nodes", "depth_nodes.*"])
training_packages = ["depth_training"] + [
    "depth_training." + p for p in find_packages(where="training")
]

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=runtime_packages + training_packages,
    package_dir={"depth_training": "training"},
    package_data={"depth_training": ["assets/*", "assets/**/*"], "depth_nodes": ["models/*.onnx", "models/*.json"]},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + PACKAGE + "/config/models", glob("config/models/*.yaml")),
        ("share/" + PACKAGE + "/rviz", glob("rviz/*.rviz")),
    ],
    install_requires=["setuptools"],
    zip_safe=False,
    maintainer="depth_nodes maintainers",
    maintainer_email="maintainers@depth-nodes.invalid",
    description="Depth and dense-descriptor keypoint nodes for ROS 2, with training tools.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "stereo_depth_node = depth_nodes.nodes.stereo_depth_node:main",
            "mono_depth_node = depth_nodes.nodes.mono_depth_node:main",
            "descriptor_tracker_node = depth_nodes.nodes.descriptor_tracker_node:main",
            "depth-train = depth_training.cli:main",
            "depth-nodes = depth_nodes.cli:main",
        ],
    },
)
