import uuid

from errbot import BotPlugin, webhook

from ferrychat.threads import target_of
from gitops.changes.landing import MAX_BODY
from gitops.errors import EventRefused, FerryError, shown

POLL_MIN = 0.2  # seconds: the tests' forges answer at once


class FerryForge(BotPlugin):
    """Pull requests of Ferry's followed to the end: merged (then Flux's feedback of the merge
    commit), closed, approved in review, changed by hand; from the forge's webhook on
    `/forge/<kind>`, or by polling where no webhook secret is set."""

    def activate(self):
        super().activate()
        self.ferry = self.get_plugin("Ferry")
        self.landing = self.ferry.gitops.landing
        self.ferry.watchers.append(self.watch)
        polled = [forge.poll_seconds for forge in self.landing.polled()]
        if polled:
            self.start_poller(max(POLL_MIN, min(polled)), self.poll)

    def deactivate(self):
        watchers = getattr(getattr(self, "ferry", None), "watchers", [])
        if self.watch in watchers:
            watchers.remove(self.watch)
        super().deactivate()

    def watch(self, change, msg):
        """The Ferry plugin tells of every change: a pull request's is answered in this thread."""
        if change.pull_request is not None:
            self.landing.answer_in(change, target_of(msg))

    @webhook("/forge/<kind>", methods=("POST",), raw=True)
    def forge_event(self, request, kind):
        """The forge posts one delivery; 2xx only for what was accepted."""
        try:
            body = request.stream.read(MAX_BODY + 1)
            heard = self.landing.receive(kind, dict(request.headers), body)
        except EventRefused as e:
            self.log.warning("forge delivery to /forge/%s from %s refused (%s): %s", shown(kind),
                             request.remote_addr, e.status, e)
            return str(e), e.status
        except FerryError as e:
            self.log.warning("forge delivery to /forge/%s from %s refused: %s", shown(kind), request.remote_addr, e)
            return str(e), 404
        except Exception:  # a bug of ours: a 500 with a reference, the log has the rest
            ref = uuid.uuid4().hex[:8]
            self.log.exception("error %s on a delivery to /forge/%s", ref, shown(kind))
            return f"error {ref}", 500
        for said in heard:
            self._say(said)
        return f"accepted: {len(heard)} thing(s) to say.", 200

    def poll(self):
        try:
            for said in self.landing.poll():
                self._say(said)
        except Exception:  # logged; the poller must live on to look again next round
            self.log.exception("polling the forges' pull requests failed")

    def _say(self, heard):
        flux = self.get_plugin("FerryFlux")
        try:
            flux.tell(heard.target, heard.text, heard.environment)
            if heard.merged is not None and heard.target is not None:
                flux.expect(heard.merged, heard.requester, heard.target)
        except Exception:  # nobody to tell in chat (that is what failed): logged with what it was
            self.log.exception("could not say %r about %s in %s", heard.text[:80], heard.app, heard.environment)
