import uuid

from errbot import BotPlugin, webhook
from errbot.backends.base import Message, Room

from ferrychat.feedback import say
from ferrychat.replies import requester, target_of
from gitops.errors import EventRefused, UnknownEnvironment, shown
from gitops.feedback.events import MAX_BODY
from gitops.feedback.waits import Feedback


class FerryFlux(BotPlugin):
    """Flux reports back: HelmRelease events from notification-controller (generic-hmac) on
    `/flux/<env>`, answered in the thread of the command that pushed the change."""

    def activate(self):
        super().activate()
        self.ferry = self.get_plugin("Ferry")
        self.feedback = Feedback(self.ferry.gitops)
        self.ferry.watchers.append(self.watch)
        self.start_poller(min(30.0, max(0.2, self.feedback.timeout / 5)), self.check_timeouts)
        configured = [e.name for e in self.feedback.settings.environments if self.feedback.configured(e.name)]
        self.log.info("Flux feedback on /flux/<env> for %s", ", ".join(configured) or "no environment (no token)")

    def deactivate(self):
        watchers = getattr(getattr(self, "ferry", None), "watchers", [])
        if self.watch in watchers:
            watchers.remove(self.watch)
        super().deactivate()

    # ---- Flux posts here -------------------------------------------------------------------

    @webhook("/flux/<env>", methods=("POST",), raw=True)
    def flux_event(self, request, env):
        """Flux's notification-controller posts one event; answers 2xx only to what it accepted."""
        try:
            # One byte over the limit is enough for the core's one size check to refuse it.
            body = request.stream.read(MAX_BODY + 1)
            received = self.feedback.receive(env, body, request.headers.get("X-Signature"))
        except UnknownEnvironment:  # the caller is not authenticated yet: no list of names
            self.log.warning("Flux event for unknown environment %s from %s refused", shown(env),
                             request.remote_addr)
            return "No such environment.", 404
        except EventRefused as e:
            self.log.warning("Flux event for %s from %s refused (%s): %s", shown(env), request.remote_addr,
                             e.status, e)
            return str(e), e.status
        except Exception:  # a bug of ours: Flux gets a 500 with a reference, the log has the rest
            ref = uuid.uuid4().hex[:8]
            self.log.exception("error %s on a Flux event for %s", ref, shown(env))
            return f"error {ref}", 500
        for outcome in received.outcomes:
            self._say(outcome)
        event = received.event
        if received.ignored:
            return f"accepted, nothing to do: {received.ignored}.", 200
        return f"accepted: {event.reason} for {received.app} in {received.environment}.", 200

    # ---- changes pushed from chat ----------------------------------------------------------

    def watch(self, change, msg):
        """The Ferry plugin tells of every pushed change: wait for Flux to report on it."""
        who = requester(msg)
        superseded = self.feedback.expect(change, who.name or who.id, target_of(msg))
        if superseded is not None:
            self._say(superseded)

    def follow(self, change, requester_name: str, target):
        """A change landed another way (a pull request merged): wait for Flux to report on its
        commit, as for a push, answering at ``target``."""
        superseded = self.feedback.expect(change, requester_name, target)
        if superseded is not None:
            self._say(superseded)

    def check_timeouts(self):
        try:
            for outcome in self.feedback.expired():
                self._say(outcome)
        except Exception:  # logged; the poller must live on to check again next round
            self.log.exception("checking Flux timeouts failed")

    # ---- saying it -------------------------------------------------------------------------

    def _say(self, outcome):
        text = say(outcome, self.feedback.settings.flux.timeout_minutes)
        try:
            self.tell(outcome.pending.target if outcome.pending is not None else None, text,
                      outcome.environment)
        except Exception:  # nobody to tell in chat (that is what failed): logged with the outcome
            self.log.exception("could not say %s about %s in %s", outcome.kind, outcome.app,
                               outcome.environment)

    def tell(self, target, text, environment):
        """Say ``text`` at ``target`` (a ``ReplyTarget``: in its thread), or with none in the
        environment's channel (``notify``) if it has one."""
        if target is not None:
            to = self._identifier(target.to, target.room)
            self.send(to, text, in_reply_to=self._thread(target, to))
        else:
            channel = self.feedback.settings.environment(environment).notify
            if channel:
                self.send(self._identifier(channel, True), text)

    def _identifier(self, text, room):
        """Rebuild a chat target from the text stored for it (it survives a restart)."""
        try:
            found = self.build_identifier(text)
        except Exception:  # a room name, or a target gone since: query_room or _say logs it
            found = None
        if room and not isinstance(found, Room):
            found = self.query_room(text)
        return found

    def _thread(self, target, to):
        """The message to answer under: what a backend with threads (Slack) needs to find it."""
        if not target.thread:
            return None
        return Message("", frm=to, to=self.bot_identifier, extras={"slack_event": {"ts": target.thread}})
