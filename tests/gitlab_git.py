"""The local GitLab's real parts (tests/gitlab_server.py): merges made in the bare Git remote as
GitLab makes them, and webhooks POSTed as GitLab sends them.

Merges: GitLab's default merge method makes a merge commit even when a fast-forward would do,
titled ``Merge branch '<source>' into '<target>'`` with the merge request's title and
``See merge request <project>!<iid>``, the person merging as author; made here with
``git merge-tree --write-tree`` and ``git commit-tree`` in the bare repository, and the target
branch moved only from the tip the merge was made on (``update-ref`` with the old value).

``push_branch`` and ``branches``: a branch pushed as Ferry pushes its own, the remote's refs.

Webhooks: the body is GitLab's documented Merge Request Hook example
(``tests/data/gitlab-merge-request-hook.json``, see tests/data/README.md) with this merge
request's attributes; the headers are those GitLab's ``WebHookService`` sends: ``Content-Type``,
``User-Agent: GitLab/<version>``, ``Idempotency-Key`` (kept when a delivery is sent again),
``X-Gitlab-Event``, ``X-Gitlab-Webhook-UUID`` (new for every request), ``X-Gitlab-Instance``,
``X-Gitlab-Event-UUID`` and the hook's secret as ``X-Gitlab-Token``. ``HookReceiver`` is the other
end: a server that keeps each delivery's headers and body for the test to hand to the client.
"""
from __future__ import annotations

import copy
import json
import tempfile
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

from tests.fixtures_git import git, remote_path

HOOK_EXAMPLE = Path(__file__).parent / "data" / "gitlab-merge-request-hook.json"
GITLAB_VERSION = "18.6.0-ee"


def push_branch(url: str, branch: str, files: dict, base: str = "main") -> str:
    """A branch from ``base`` with one commit of ``files``, pushed as Ferry pushes its own."""
    with tempfile.TemporaryDirectory(prefix="branch-") as folder:
        clone = Path(folder) / "clone"
        git("clone", "--quiet", "--branch", base, url, str(clone))
        for path, text in files.items():
            (clone / path).parent.mkdir(parents=True, exist_ok=True)
            (clone / path).write_text(text)
        git("add", "--all", cwd=clone)
        git("commit", "--quiet", "-m", f"Deploy {branch}", cwd=clone)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=clone)
        return git("rev-parse", "HEAD", cwd=clone)


def branches(url: str) -> dict:
    """Every ref of the bare remote and the commit it names."""
    out = git("--git-dir", str(remote_path(url)), "for-each-ref", "--format=%(refname) %(objectname)")
    return dict(line.split() for line in out.splitlines())


class MergeCommits:
    """Branches and merges in the bare remote (``self.remote``)."""

    def _git(self, *args: str, **kwargs) -> str:
        return git("--git-dir", str(remote_path(self.remote)), *args, **kwargs)

    def tip(self, branch: str) -> str:
        out = self._git("for-each-ref", "--format=%(objectname)", f"refs/heads/{branch}")
        return out.strip()

    def delete_branch(self, branch: str) -> None:
        self._git("update-ref", "-d", f"refs/heads/{branch}")

    def merge_commit(self, mr: dict) -> str:
        target, source = self.tip(mr["target_branch"]), self.tip(mr["source_branch"])
        tree = self._git("merge-tree", "--write-tree", target, source).splitlines()[0]
        message = (f"Merge branch '{mr['source_branch']}' into '{mr['target_branch']}'\n\n"
                   f"{mr['title']}\n\nSee merge request {self.project}!{mr['iid']}\n")
        who = (mr.get("merge_user") or {}).get("username", "root")
        sha = self._git("commit-tree", tree, "-p", target, "-p", source, input=message,
                        author=(who.title(), f"{who}@example.test"))
        self._git("update-ref", f"refs/heads/{mr['target_branch']}", sha, target)
        return sha


@dataclass
class Delivery:
    url: str
    headers: dict
    body: bytes
    status: int = 0


class HookSender:
    """Project webhooks: ``add_hook(url, token)``; each merge request event is POSTed to every one."""

    def _hooks_init(self) -> None:
        self.hooks: list = []  # (url, secret token)
        self.deliveries: list = []  # Delivery, as sent

    def add_hook(self, url: str, token: str) -> None:
        self.hooks.append((url, token))

    def hook(self, mr: dict, action: str, username: str) -> None:
        if not self.hooks:
            return
        body = self.hook_body(mr, action, username)
        event_uuid = str(uuid.uuid4())  # the request that caused the event: shared by its hooks
        for url, token in self.hooks:
            headers = {"Content-Type": "application/json", "User-Agent": f"GitLab/{GITLAB_VERSION}",
                       "Idempotency-Key": str(uuid.uuid4()), "X-Gitlab-Event": "Merge Request Hook",
                       "X-Gitlab-Webhook-UUID": str(uuid.uuid4()), "X-Gitlab-Instance": self.web,
                       "X-Gitlab-Event-UUID": event_uuid}
            if token:
                headers["X-Gitlab-Token"] = token
            self.send(Delivery(url, headers, body))

    def send(self, delivery: Delivery) -> Delivery:
        response = requests.post(delivery.url, data=delivery.body, headers=delivery.headers, timeout=10)
        delivery.status = response.status_code
        self.deliveries.append(delivery)
        return delivery

    def resend(self, delivery: Delivery) -> Delivery:
        """GitLab's "Resend request" in the webhook's log: the same body and Idempotency-Key."""
        headers = {**delivery.headers, "X-Gitlab-Webhook-UUID": str(uuid.uuid4())}
        return self.send(Delivery(delivery.url, headers, delivery.body))

    def hook_body(self, mr: dict, action: str, username: str) -> bytes:
        body = copy.deepcopy(json.loads(HOOK_EXAMPLE.read_text()))
        body["user"] = {**body["user"], **self.user(username)}
        body["project"].update(id=self.project_id, path_with_namespace=self.project,
                               web_url=f"{self.web}/{self.project}", name=self.project.rsplit("/", 1)[-1])
        attributes = body["object_attributes"]
        head = mr["sha"] if mr["state"] == "merged" else (self.tip(mr["source_branch"]) or mr["sha"])
        attributes.update(
            id=mr["id"], iid=mr["iid"], title=mr["title"], description=mr["description"],
            source_branch=mr["source_branch"], target_branch=mr["target_branch"],
            source_project_id=mr["source_project_id"], target_project_id=mr["target_project_id"],
            state=mr["state"], action=action, url=mr["web_url"], updated_at=mr["updated_at"],
            merge_commit_sha=mr["merge_commit_sha"], reviewer_ids=[r["id"] for r in mr["reviewers"]])
        attributes["last_commit"] = {**attributes["last_commit"], "id": head}
        body["reviewers"] = mr["reviewers"]
        return json.dumps(body).encode()


class HookReceiver:
    """Where the webhooks go: keeps (headers, body) of each POST, answers 200."""

    def __init__(self):
        self.received: list = []  # (headers, body)
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.received.append((dict(self.headers), body))
                    receiver.arrived.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/forge/gitlab"

    def start(self) -> "HookReceiver":
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
