"""The colour names: one list shared by inference (the colour rule, the schema) and training.

``LABELS`` is the order of the shipped model's outputs (its ``labels.txt``);
``canonical_label`` folds other spellings and the original server's 14 names
onto the ten; ``load_labels`` reads a model's labels file.

    >>> canonical_label("Silver"), canonical_label("bordeaux"), canonical_label("tartan")
    ('gray', 'red', None)
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Union

from .errors import ModelError, read_input

LABELS = ("white", "gray", "black", "red", "blue", "green", "yellow", "orange", "brown", "purple")
ACHROMATIC = ("white", "gray", "black")
UNKNOWN = "unknown"  # the decision when the top colour is not sure enough

# The original server's 14 names (and common spellings) folded into the ten.
_FOLD = {
    "grey": "gray", "silver": "gray",
    "beige": "brown", "golden": "brown", "gold": "brown", "tan": "brown", "champagne": "brown",
    "bordeaux": "red", "maroon": "red", "burgundy": "red",
    "violet": "purple", "pink": "purple", "magenta": "purple",
    "navy": "blue", "cyan": "blue", "light blue": "blue", "lightblue": "blue",
}


def canonical_label(name: str) -> Optional[str]:
    """One of :data:`LABELS` for a colour name (case-folded, original names folded), else None."""
    key = name.strip().lower().replace("_", " ").replace("-", " ")
    key = _FOLD.get(key, key)
    return key if key in LABELS else None


def load_labels(path: Union[str, Path]) -> List[str]:
    """Labels, one per line (UTF-8, or cp1251 as the original's files were)."""
    raw = read_input(path, "labels file", ModelError)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("cp1251")
    labels = [line.strip() for line in text.splitlines() if line.strip()]
    if not labels:
        raise ModelError(f"labels file is empty: {path}")
    return labels
