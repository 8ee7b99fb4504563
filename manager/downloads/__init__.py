"""A download as the manager holds it: in memory, and on disk.

``live`` is the one shared working memory (the lock, the unfinished downloads by id and
GID); ``contents`` what a download owns on disk (its files, saved metadata, pad and control
files); ``padfiles`` BEP 47 pads; ``space`` free space minus what is still to be written;
``leftovers`` aria2's control files a killed aria2c left; ``listing`` the list a page
at a time, from the store. Imports ``manager.aria2``,
``manager.sources`` and the shared top-level modules.
"""

from manager.downloads.contents import (
    Contents,
    Deletion,
    all_file_entries,
    claims_its_files,
    file_entries,
    remove_control_file,
)
from manager.downloads.leftovers import remove_finished_control_files
from manager.downloads.listing import LIST_PAGE_MAX, Listing, StatusPage
from manager.downloads.live import LIVE_STATES, LiveDownload, LiveDownloads, snapshot
from manager.downloads.padfiles import is_pad
from manager.downloads.space import SpaceCheck

__all__ = [
    "LIST_PAGE_MAX",
    "LIVE_STATES",
    "Contents",
    "Deletion",
    "Listing",
    "LiveDownload",
    "LiveDownloads",
    "SpaceCheck",
    "StatusPage",
    "all_file_entries",
    "claims_its_files",
    "file_entries",
    "is_pad",
    "remove_control_file",
    "remove_finished_control_files",
    "snapshot",
]
