"""depth_training: offline tools behind the ``depth-train`` command.

Reads recorded bags, simulates recordings, trains and evaluates the networks and exports them
for the runtime in :mod:`depth_nodes`. Imports :mod:`depth_nodes` geometry and image decoding;
the runtime never imports this package.
"""
