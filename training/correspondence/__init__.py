"""Pixel correspondences from recorded camera motion and depth (Dense Object Nets' self-supervision).

ROS-free, numpy only:

* :mod:`.geometry`  projection of frame A's pixels into frame B with the camera_info intrinsics and
  the recorded poses, occlusion test, static-scene violations, consistent rounding;
* :mod:`.masks`     table plane by RANSAC and object masks from the geometry (points above the
  plane inside the workspace), never from simulator labels;
* :mod:`.sampling`  matches and non-matches (object, background) at a minimum pixel distance;
* :mod:`.pairs`     frame-pair selection by viewpoint diversity and pair rejection (too few
  matches, moving things);
* :mod:`.scenes`    recordings -> per-recording frame arrays (decode-once cache), masks and pairs;
* :mod:`.dataset`   the training/evaluation pair dataset with augmentation.
"""
