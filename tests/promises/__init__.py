"""A stateful, model-based test of ariabot's promises across features (issue 23, part B).

Hypothesis drives the real stack — ``ariabot run`` as a child process with its own aria2c,
the local swarm, the fake Bot API server, rclone to a local folder, the link server — through
random sequences of what users and the machine do (adds from Telegram and the control
socket, pause, resume, file choices, cancel, purge, send, link, mirror, by buttons, the
control socket or the Mini App's API, restarts and kills, a locked store, Telegram faults),
and checks the promises after every step:

- I1 no byte outside a download's own files changes or disappears;
- I2 each completed (failed) download is announced in its chat once;
- I3 within a bounded time the stored row agrees with aria2 and with the disk;
- I4 no two listed downloads share a path, on disk or at the mirror destination;
- I5 a chat's news arrives within its bound while another chat's sends fail;
- I6 what Telegram confirmed (messages, parts) is never sent again;
- I7 the data dir's node is the database's one node, online, after any restart.

:mod:`tests.promises.world` runs the stack and observes it; :mod:`tests.promises.machine`
holds the rules and invariants. CI runs it from ``tests/integration/test_promises.py``;
``./setup.sh soak [minutes]`` (:mod:`tests.soak`) runs it with random seeds.
"""

from tests.promises.machine import KNOWN_DEFECTS, Knobs, make_machine
from tests.promises.world import Catalog

__all__ = ["KNOWN_DEFECTS", "Catalog", "Knobs", "make_machine"]
