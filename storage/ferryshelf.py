"""Errbot's Shelf storage, written through to disk at every change (``STORAGE = "FerryShelf"``).

It holds Errbot's own records (plugin settings, ACL state). Ferry's locks, approvals and Flux
waits are in its SQLite state file (``gitops/state``), not here: a shelf is not safe across
threads (concurrent writes raised ``FileNotFoundError`` or ``UnpicklingError`` and left records
unreadable); what an older Ferry kept here is imported into that file once. Errbot's Shelf writes
through Python's ``dbm``, whose fallback (``dbm.dumb``, what a slim image has) rewrites its index
only on close: a killed bot lost every record rewritten since it started. Syncing after each
``set`` and ``remove`` costs one small write per change, and the files are Shelf's own, so a bot
can move between the two storages without losing data.
"""
import os

from errbot.storage import shelf


class FerryShelfStorage(shelf.ShelfStorage):
    def set(self, key, value) -> None:
        super().set(key, value)
        self.shelf.sync()

    def remove(self, key) -> None:
        super().remove(key)
        self.shelf.sync()


class FerryShelfStoragePlugin(shelf.ShelfStoragePlugin):
    def open(self, namespace: str) -> FerryShelfStorage:
        return FerryShelfStorage(os.path.join(self._storage_config["basedir"], namespace + ".db"))
