"""Subcommands of ``feedgate`` beyond serve and check-config: one module each, listed in ``cli.COMMAND_MODULES``."""
