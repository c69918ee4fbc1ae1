"""Secrets read from files, systemd credentials first of all.

With ``LoadCredential=twilio_auth_token:/etc/alertd/twilio_auth_token`` in the
unit, systemd (as root) copies the file to a private, read-only directory only
the service can read and names it in ``$CREDENTIALS_DIRECTORY``. The config
then says ``auth_token_file: twilio_auth_token``: a bare name is looked up
there; a value with a slash is a path (relative to the config file's folder).
The secret file can stay root-only, and the token is never in the environment,
where every child process and /proc/PID/environ would see it.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Mapping

# "read": read every file (alertd run); "check": as read, except that a bare
# name outside systemd is left for the service to read (alertd check);
# "skip": read nothing (commands that never reach the provider, e.g. keys, log)
Mode = Literal["read", "check", "skip"]


def is_name(value: str) -> bool:
    return "/" not in value


def resolve(value: str, *, base: Path | None = None, environ: Mapping[str, str] = os.environ) -> Path:
    """The file ``value`` names. Raises ValueError for a bare name without $CREDENTIALS_DIRECTORY."""
    if is_name(value):
        folder = environ.get("CREDENTIALS_DIRECTORY")
        if not folder:
            raise ValueError(f"'{value}' is a credential name, but $CREDENTIALS_DIRECTORY is not set"
                             " (alertd reads it under systemd with LoadCredential=; or give a path)")
        return Path(folder) / value
    path = Path(value)
    return path if path.is_absolute() or base is None else base / path


def read(value: str, *, base: Path | None = None, environ: Mapping[str, str] = os.environ) -> str:
    """The secret in the file ``value`` names, without the trailing newline.

    Raises ValueError naming the file: unreadable, empty, not text, or more than one line.
    """
    path = resolve(value, base=base, environ=environ)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text") from None
    secret = text.strip()
    if not secret:
        raise ValueError(f"{path} is empty")
    if any(c in secret for c in "\r\n"):
        raise ValueError(f"{path} has more than one line; it must hold the secret alone")
    return secret


def wanted(value: str, mode: Mode, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether ``value`` is to be read now in ``mode``."""
    if mode == "skip":
        return False
    return not (mode == "check" and is_name(value) and not environ.get("CREDENTIALS_DIRECTORY"))
