"""Layer 8, commands: the `signrec` command line, one module per subcommand.

Each module has `add_arguments(parser)` and `run(args) -> int` (the exit status); options.py holds what
several commands share. Only the library below is imported here: no library module imports a command.
"""
