"""Print a pip lock (name==version per line) of the running environment.

Only distributions installed from wheels or sdists (``*.dist-info``) are listed. The ROS 2
wheels (``ros-rclpy`` ...) carry the colcon ``*.egg-info`` of their Python packages
(``rclpy``, ``sensor_msgs`` ...); ``pip freeze`` lists those as if they were installable
projects, and a lock naming them fails to install on a clean machine.
"""

import importlib.metadata
import sys

SKIP = {"pip", "setuptools", "wheel", "depth-nodes"}


def main() -> int:
    pins = {}
    for dist in importlib.metadata.distributions():
        path = str(getattr(dist, "_path", ""))
        if not path.endswith(".dist-info"):
            continue
        name = dist.metadata["Name"]
        if name is None or name.lower().replace("_", "-") in SKIP:
            continue
        if (dist.read_text("direct_url.json") or "").find('"editable": true') >= 0:
            continue
        pins[name.lower()] = f"{name}=={dist.version.replace('+cpu', '')}"
    sys.stdout.write("".join(line + "\n" for _, line in sorted(pins.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
