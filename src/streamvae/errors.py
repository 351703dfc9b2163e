"""Errors that the CLI reports as one clear line (no traceback unless --debug)."""
from __future__ import annotations


class StreamVAEError(Exception):
    """Base class: a user-facing error with a message that says what is wrong and what is valid."""


class ConfigError(StreamVAEError):
    """An unknown config key, a wrong type, or an invalid value."""


class DataError(StreamVAEError):
    """A dataset file is missing, truncated or corrupt, or cannot be downloaded."""


class CheckpointError(StreamVAEError):
    """A checkpoint is unreadable, truncated, or holds something other than tensors, numbers and strings."""


class TrainingError(StreamVAEError):
    """Training went wrong in a way the user must know about (e.g. a non-finite loss)."""


class Interrupted(StreamVAEError):
    """A run stopped by Ctrl-C or SIGTERM once its checkpoint is safely on disk (exit status 130)."""
