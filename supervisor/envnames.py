"""``ARIABOT_*`` variables that are no setting: a misspelt one would be ignored in silence.

``ARIABOT_TELEGRAM_TOKN=...`` leaves the token unset and ariabot starts in local mode without
a word; :func:`unknown_variables` finds such names and the real setting each one most likely
meant, for a warning at start (:func:`warn_unknown_variables`) and a line in ``ariabot
doctor``. Only names are ever shown, never values: a misspelt token is still a secret.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from supervisor.config import FIELDS

__all__ = ["OTHER_VARIABLES", "PREFIX", "UnknownVariable", "unknown_variables",
           "warn_unknown_variables"]

log = logging.getLogger(__name__)

PREFIX = "ARIABOT_"

OTHER_VARIABLES = frozenset({
    "ARIABOT_CONFIG",  # the settings file (load_settings, ariabot --config)
    "ARIABOT_VENV",  # the virtualenv setup.sh installs into
})
"""``ARIABOT_*`` variables that are not settings but are read by ariabot or its scripts."""


@dataclass(frozen=True)
class UnknownVariable:
    """An ``ARIABOT_*`` variable that nothing reads.

    Attributes:
        name: the variable as it is set.
        meant: the real variable it most likely meant, or None when none is close.
    """

    name: str
    meant: str | None

    @property
    def problem(self) -> str:
        """What is wrong, in one sentence."""
        return f"{self.name} is not an ariabot setting and is ignored"

    @property
    def fix(self) -> str:
        """What to do about it."""
        if self.meant:
            return f"did you mean {self.meant}? Rename it (or remove it)"
        return "remove it, or rename it to a setting; every setting is in docs/configuration.md"


def _known() -> dict[str, str]:
    """Every variable ariabot reads, by its part after the prefix."""
    names = [spec.env for spec in FIELDS] + sorted(OTHER_VARIABLES)
    return {name.removeprefix(PREFIX): name for name in names}


def _meant(name: str, known: Mapping[str, str]) -> str | None:
    tail = name.upper().removeprefix(PREFIX)
    if tail in known:  # the same name in another case: ariabot_data_dir
        return known[tail]
    # Compare the parts after the prefix: the shared prefix would make every name look close.
    close = difflib.get_close_matches(tail, list(known), n=1)
    if close:
        return known[close[0]]
    # A part of a real name (ARIABOT_TOKEN, ARIABOT_DHT), when it names only one.
    words = set(tail.split("_"))
    holders = [full for part, full in known.items() if words <= set(part.split("_"))]
    return holders[0] if len(holders) == 1 else None


def unknown_variables(environ: Mapping[str, str]) -> list[UnknownVariable]:
    """The ``ARIABOT_*`` names in ``environ`` (any case) that ariabot does not read, sorted.

    Parameters:
        environ: the environment ariabot runs with.

    Returns:
        One entry per unknown name, with the setting it most likely meant.
    """
    known = _known()
    readable = set(known.values())
    return [UnknownVariable(name, _meant(name, known)) for name in sorted(environ)
            if name.upper().startswith(PREFIX) and name not in readable]


def warn_unknown_variables(environ: Mapping[str, str]) -> list[UnknownVariable]:
    """Log one warning per unknown ``ARIABOT_*`` variable (at start); returns them."""
    unknown = unknown_variables(environ)
    for variable in unknown:
        log.warning("%s; %s", variable.problem, variable.fix)
    return unknown
