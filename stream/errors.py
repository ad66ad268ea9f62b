"""Expected errors: each carries a one-line message naming the problem.

They subclass the built-in exception a caller would expect (PyAV's habit), so
code using carcolor as a library need not import these types.
"""


class CarcolorError(Exception):
    """Base of every expected error; the CLI prints its message on one line."""


class ConfigError(CarcolorError, ValueError):
    """A bad configuration key or value."""


class SourceError(CarcolorError, OSError):
    """A video source that cannot be opened or read."""


class ModelError(CarcolorError, ValueError):
    """A model or labels file that cannot be loaded or does not fit together."""


class ImageError(CarcolorError, ValueError):
    """An image file or upload that cannot be decoded."""


class BoxesError(CarcolorError, ValueError):
    """A detections file that cannot be parsed."""
