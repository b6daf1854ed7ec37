"""Errors raised by ``realtime``: one base type; messages say what was wrong and what to do."""


class RealtimeError(Exception):
    """Base class for every error raised by the ``realtime`` package."""


class SourceError(RealtimeError):
    """A camera, video file or image folder cannot be opened or read."""


class DetectorError(RealtimeError):
    """The hand detector could not be created or failed on a frame."""


class ModelFileError(DetectorError):
    """A hand model file (.tflite) is missing, unreadable or not the model expected."""
