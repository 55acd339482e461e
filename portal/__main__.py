"""``python -m portal``: the commands that need no Flask application.

``python -m portal generate-key`` prints a new key for ``PORTAL_ENCRYPTION_KEYS`` before any app
exists (the same command as ``flask portal generate-key``, which also works without an app).
"""

from __future__ import annotations

import click

from .crypto import generate_key


@click.group(help="Connect Portal commands that need no Flask application.")
def main() -> None:
    """The ``python -m portal`` command group."""


@main.command("generate-key")
def generate_key_command() -> None:
    """Print a new Fernet key (url-safe base64, 32 bytes) for PORTAL_ENCRYPTION_KEYS."""
    click.echo(generate_key())


if __name__ == "__main__":
    main(prog_name="python -m portal")
