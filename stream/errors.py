"""Expected errors: each carries a one-line message naming the problem.

They subclass the built-in exception a caller would expect (PyAV's habit), so
code using carcolor as a library need not import these types.
"""
from pathlib import Path


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


def read_input(path, what: str, error: type) -> bytes:
    """The bytes of a file the user named; ``error`` says "<what> not found: <path>" or why it can't be read."""
    path = Path(path)
    try:
        return path.read_bytes()
    except FileNotFoundError as e:
        raise error(f"{what} not found: {path}") from e
    except OSError as e:
        raise error(f"cannot read {what} {path}: {e.strerror}") from e
