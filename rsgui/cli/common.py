"""What every command module of ``rsgui-cli`` shares, kept apart from the package that loads them
(so a command never imports the module that imports it)."""

from __future__ import annotations


class CliError(Exception):
    """An error for the user: printed as one line, exit code 2."""
