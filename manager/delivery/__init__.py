"""What leaves the manager: finished files mirrored and linked, notices handed to the bot.

``mirrors`` runs mirror jobs (upload, retry, verify, maybe delete) through the
``uploader`` protocol, on the files ``mirrorfiles`` names; ``links`` makes and checks signed
links and what one serves; ``outbox`` lists the stored notices for the bot and stores
aria2c's alerts among them. Imports ``manager.downloads``, ``manager.sources`` and the
shared top-level modules; not ``tracking`` nor ``actions``.
"""

from manager.delivery.links import DownloadLink, Links, SharedDownload, SharedFile
from manager.delivery.mirrorfiles import own_files
from manager.delivery.mirrors import Mirrors
from manager.delivery.outbox import Outbox
from manager.delivery.uploader import Uploader, UploadError, UploadJob, UploadStats

__all__ = [
    "DownloadLink",
    "Links",
    "Mirrors",
    "Outbox",
    "SharedDownload",
    "SharedFile",
    "UploadError",
    "UploadJob",
    "UploadStats",
    "Uploader",
    "own_files",
]
