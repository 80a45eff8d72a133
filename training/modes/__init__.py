"""The training modes behind ``depth-train mono | stereo | supervised``.

Modules:
    cli          the three subcommands (thin: arguments, checks, dispatch)
    runner       one run end to end: recordings -> caches -> loop -> ``<out>/model.pt``
    setup        ``ModeSetup``, the bundle of functions a mode gives the runner; ``DepthOnly``
    mono         Monodepth2 on image sequences (pose network, or poses from TF / URDF + joint states)
    stereo       Monodepth2-style stereo with the known baseline + Monodepth left-right consistency
    supervised   registered depth: MiDaS SSI (relative disparity) or Eigen SILog (metric depth)
    recordings   per-bag topic checks before anything is decoded; pose sources
    bag_frames   synchronised bag samples -> fixed-size cache rows (resize, K scaling, size checks)
    datasets     caches, training mix with weights, held-out validation sets
    holdout      the held-out tail of each recording (``FrameRange``)
    validation   validation loss and depth metrics on held-out frames
    tensors      small batch-tensor helpers shared by the modes
"""
