"""Dense-descriptor keypoints: reference files (written by ``depth-train keypoints``, loaded by the tracker node)."""
