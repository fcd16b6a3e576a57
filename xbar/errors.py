"""Errors the CLI turns into a one-line message and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user (file, config, argument): reported without a traceback."""
