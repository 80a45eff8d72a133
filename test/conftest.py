"""Test-wide settings.

Every test process keeps DDS traffic on loopback and uses its own ROS domain, so parallel runs
(and other people's robots on the network) never hear each other.
"""
import os

os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(1 + os.getpid() % 100))
os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
