"""Errors raised by ``calibration``."""


class CalibrationError(Exception):
    """Base class: a calibration is missing, malformed or does not fit the images."""
