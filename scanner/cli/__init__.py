"""Command-line adapter: ``maruhi`` and its subcommands; reads files, prints, sets exit codes."""
