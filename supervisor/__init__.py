"""ariabot's supervisor: owns aria2c, and composes the manager and the bot around it.

The ``ariabot`` command is :mod:`supervisor.__main__`; ``ariabot run`` is :func:`serve`,
which takes the settings (:func:`load_settings`), supervises aria2c (:class:`Aria2Process`
through the states of :class:`ProcessState`) and builds the manager and the bot around it.
The other modules are the parts it is made of (config and parsers, process and runner,
control socket, doctor, logs, ...); see docs/architecture.md for the table.
"""

__version__ = "0.1.0"

from supervisor.config import ConfigError, Settings, load_settings
from supervisor.process import Aria2Process
from supervisor.root import serve
from supervisor.states import ProcessState

__all__ = [
    "Aria2Process",
    "ConfigError",
    "ProcessState",
    "Settings",
    "__version__",
    "load_settings",
    "serve",
]
