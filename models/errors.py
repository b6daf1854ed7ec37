"""Errors raised by ``models``: one base type, messages that say what to do."""


class ModelError(Exception):
    """Base class for every error raised by the ``models`` package."""


class AssetError(ModelError):
    """A hand-model or weights file is missing, corrupt or of the wrong kind."""
