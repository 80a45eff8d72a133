"""Command-line tools of the runtime (``depth-nodes`` subcommands)."""
