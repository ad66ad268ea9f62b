"""Expected errors: each carries a one-line message naming the problem.

They subclass the built-in exception a caller would expect (PyAV's habit), so
code using carcolor as a library need not import these types.
"""
import json
from pathlib import Path
from typing import Any, Iterator, Tuple


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


def json_lines(text: str, where, error: type) -> Iterator[Tuple[int, Any]]:
    """(line number, decoded value) of each non-blank line of a JSON Lines text; a line that is not
    JSON raises ``error`` naming ``where`` and the line."""
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            yield n, json.loads(line)
        except json.JSONDecodeError as e:
            raise error(f"{where}:{n}: not valid JSON ({e.msg})") from e
