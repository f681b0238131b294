"""The local Slack's file upload methods (``tests.slack_server.FakeSlack`` mixes them in), as
Slack documents its upload flow: ``files.getUploadURLExternal`` → POST the bytes to the
``upload_url`` → ``files.completeUploadExternal`` shares them in a channel or thread."""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional


@dataclass
class Upload:
    """A file shared by ``files.completeUploadExternal``."""
    file_id: str
    filename: str
    title: str
    channel: str
    thread_ts: str
    content: bytes
    snippet_type: str = ""
    initial_comment: str = ""


class FileUploads:
    """Needs from the class it is mixed into: ``scopes``, ``port``, ``uploads`` (a list),
    ``_lock`` (a Condition), ``_files`` (a dict) and ``_file_ids`` (a counter)."""

    def shared(self, channel: Optional[str] = None, thread_ts: Optional[str] = None) -> list:
        """The files shared, in order, optionally in one channel and thread."""
        with self._lock:
            return [u for u in self.uploads if (channel is None or u.channel == channel)
                    and (thread_ts is None or u.thread_ts == thread_ts)]

    def _file_method(self, method: str, args: dict) -> dict:
        if "files:write" not in self.scopes.split(","):
            return {"ok": False, "error": "missing_scope", "needed": "files:write", "provided": self.scopes}
        if method == "files.getUploadURLExternal":
            filename, length = str(args.get("filename") or ""), str(args.get("length") or "")
            if length and not length.isdigit():
                return {"ok": False, "error": "invalid_arguments"}
            if not filename or not length or int(length) == 0:  # Slack: "typically … length 0"
                return {"ok": False, "error": "missing_argument"}
            file_id = f"F{next(self._file_ids):08d}"
            with self._lock:
                self._files[file_id] = {"filename": filename, "length": int(length), "data": None,
                                        "snippet_type": str(args.get("snippet_type") or "")}
            return {"ok": True, "upload_url": f"http://127.0.0.1:{self.port}/upload/v1/{file_id}",
                    "file_id": file_id}
        files = args.get("files")
        try:
            files = json.loads(files) if isinstance(files, str) else files
        except ValueError:
            return {"ok": False, "error": "invalid_arguments"}
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel, thread = str(args.get("channel_id") or ""), str(args.get("thread_ts") or "")
        if thread and not channel:
            return {"ok": False, "error": "invalid_arguments"}
        shared = []
        with self._lock:
            for item in files:
                pending = self._files.get(str(item.get("id")))
                if pending is None or pending["data"] is None:
                    return {"ok": False, "error": "file_not_found"}
            for item in files:
                pending = self._files.pop(str(item["id"]))
                title = str(item.get("title") or pending["filename"])
                self.uploads.append(Upload(item["id"], pending["filename"], title, channel, thread,
                                           pending["data"], pending["snippet_type"],
                                           str(args.get("initial_comment") or "")))
                shared.append({"id": item["id"], "name": pending["filename"], "title": title,
                               "size": len(pending["data"])})
            self._lock.notify_all()
        return {"ok": True, "files": shared}

    def upload(self, file_id: str, body: bytes, content_type: str) -> tuple[int, str]:
        """The POST of a file's bytes to its ``upload_url``: raw, or the first part of a
        multipart form. Slack answers 200 ``OK - <length>``."""
        if content_type.startswith("multipart/form-data"):
            boundary = content_type.split("boundary=", 1)[-1].strip('"').encode()
            part = body.split(b"--" + boundary)[1]
            body = part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]
        with self._lock:
            pending = self._files.get(file_id)
            if pending is None:
                return 404, "Not Found"
            if len(body) != pending["length"]:
                return 400, f"length {len(body)} is not the {pending['length']} announced"
            pending["data"] = body
        return 200, f"OK - {len(body)}"
