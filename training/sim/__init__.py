"""Simulated robot-arm RGB-D + stereo recordings (``depth-train sim``).

Modules, in the order the data flows:

* :mod:`.transforms`   SE(3) maths (rotations, quaternions, look-at) used by everything below.
* :mod:`.arm`          kinematic parameters of the 6-joint arm with its wrist camera, and a numpy FK.
* :mod:`.urdf`         the URDF written from those same parameters.
* :mod:`.textures`     seeded procedural textures.
* :mod:`.scene`        random tabletop layout per episode (objects, distractor, stereo rig).
* :mod:`.mjcf`         the MuJoCo MJCF written from the arm and scene descriptions.
* :mod:`.camera_model` MuJoCo camera <-> REP 103 optical frame and pinhole K.
* :mod:`.joint_spline` C2 piecewise quintic Hermite joint trajectories.
* :mod:`.trajectory`   look-at IK and the planner whose wrist camera keeps looking at the table.
* :mod:`.render`       MuJoCo rendering of RGB, metric depth and object segmentation.
* :mod:`.depth_sensor` a 16UC1 millimetre RGB-D sensor model with holes.
* :mod:`.messages`     ROS 2 message construction (Image, CameraInfo, TF, JointState).
* :mod:`.bag_writer`   the rosbag2 writer (MCAP or sqlite3).
* :mod:`.groundtruth`  the ground-truth sidecar ``<bag>.groundtruth.npz`` and its loader.
* :mod:`.record`       one episode end to end; :mod:`.cli` the ``depth-train sim`` command.
"""
