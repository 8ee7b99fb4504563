"""ariabot's supervisor: owns aria2c, and composes the manager and the bot around it."""

__version__ = "0.1.0"

__all__ = ["__version__"]
