"""regzoo command-line tools: the ``regzoo`` command (a ``fire`` entry point) and its subcommands."""
