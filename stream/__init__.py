"""carcolor: recognise the colour of cars in video."""

__version__ = "0.1.0"
