"""Errbot's Shelf storage, written through to disk at every change (``STORAGE = "FerryShelf"``).

Pending approvals, locks and deploys waiting for Flux must survive a crash. Errbot's Shelf writes
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
