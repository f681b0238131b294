import uuid

from errbot import BotPlugin, webhook
from ferrychat import threads
from ferrychat.feedback import say, say_verdict
from ferrychat.replies import requester
from ferrychat.threads import target_of
from gitops.errors import EventRefused, UnknownEnvironment, shown
from gitops.feedback.events import MAX_BODY
from gitops.feedback.waits import Feedback
from gitops.feedback.verifier import Verifier


class FerryFlux(BotPlugin):
    """Flux reports back: HelmRelease events from notification-controller (generic-hmac) on
    `/flux/<env>`, answered in the thread of the command that pushed the change."""

    def activate(self):
        super().activate()
        self.ferry = self.get_plugin("Ferry")
        self.feedback = Feedback(self.ferry.gitops)
        self.ferry.watchers.append(self.watch)
        self.start_poller(min(30.0, max(0.2, self.feedback.timeout / 5)), self.check_timeouts)
        self.verifier = Verifier(self.ferry.gitops)
        # What a restart interrupted, once, off the start's path (it may read Git).
        self.start_poller(0.1, self.resume_verifications, times=1)
        if any(e.verify is not None for e in self.feedback.settings.environments):
            self.start_poller(min(30.0, max(0.2, self.verifier.interval / 2)), self.check_verifications)
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
            self._verify(outcome)
        event = received.event
        if received.ignored:
            return f"accepted, nothing to do: {received.ignored}.", 200
        return f"accepted: {event.reason} for {received.app} in {received.environment}.", 200

    # ---- changes pushed from chat ----------------------------------------------------------

    def watch(self, change, msg):
        """The Ferry plugin tells of every pushed change: wait for Flux to report on it."""
        self.expect(change, requester(msg), target_of(msg))

    def expect(self, change, who, target):
        """Wait for Flux to report on ``change`` (pushed, applied from the queue, or a pull request
        merged), to answer at ``target`` (a ``ReplyTarget``), on behalf of the change's requester
        when the core wrote it (an approved change's, not its approver's: an automatic rollback
        of it is theirs too, as its author and Requested-by), else of ``who`` (a ``Requester``, or
        the name a caller knows)."""
        superseded = self.feedback.expect(change, change.requester or who, target)
        if superseded is not None:
            self._say(superseded)
        for verdict in self.verifier.superseded(change):
            self._say_verdict(verdict)

    def check_timeouts(self):
        try:
            for outcome in self.feedback.expired():
                self._say(outcome)
                self._verify(outcome)  # silence fails a verification (on_failure applies)
        except Exception:  # logged; the poller must live on to check again next round
            self.log.exception("checking Flux timeouts failed")

    # ---- verification ----------------------------------------------------------------------

    def _verify(self, outcome):
        try:
            verdicts = self.verifier.settled(outcome)
        except Exception:  # logged; Flux's own answer was said already
            self.log.exception("starting the verification of %s in %s failed", outcome.app, outcome.environment)
            return
        for verdict in verdicts:
            self._say_verdict(verdict)

    def resume_verifications(self):
        try:
            for verdict in self.verifier.resume():
                self._say_verdict(verdict)
        except Exception:  # logged; what was verifying stays so, for the next start
            self.log.exception("resuming verifications failed")

    def check_verifications(self):
        try:
            for verdict in self.verifier.tick():
                self._say_verdict(verdict)
        except Exception:  # logged; the poller must live on to check again next round
            self.log.exception("checking verifications failed")

    def _say_verdict(self, verdict):
        record = verdict.record
        text = say_verdict(verdict)
        self._tell(text, record.target, record.environment, f"{verdict.kind} about {record.app}")
        if verdict.kind == "rolled-back" and verdict.change is not None:
            self._tell(text, None, record.environment, f"{verdict.kind} about {record.app}")
            # Flux's answer to the rollback (or its pull request's merge) comes to the same thread;
            # it is verified, never rolled back.
            self.feedback.expect(verdict.change, record.requester, record.target)
            if verdict.change.pull_request is not None:
                self.ferry.gitops.landing.answer_in(verdict.change, record.target)

    # ---- saying it -------------------------------------------------------------------------

    def _say(self, outcome):
        text = say(outcome, self.feedback.settings.flux.timeout_minutes)
        target = outcome.pending.target if outcome.pending is not None else None
        self._tell(text, target, outcome.environment, f"{outcome.kind} about {outcome.app}")

    def _tell(self, text, target, environment, what):
        """In ``target``'s thread, or (None) in the environment's notify channel if it has one."""
        try:
            self.tell(target, text, environment)
        except Exception:  # nobody to tell in chat (that is what failed): logged with what it was
            self.log.exception("could not say %s in %s", what, environment)

    def tell(self, target, text, environment):
        """Say ``text`` at ``target`` (a ``ReplyTarget``: in its thread), or with none in the
        environment's channel (``notify``) if it has one."""
        if target is not None:
            threads.say_in_thread(self, target, text)
        else:
            channel = self.feedback.settings.environment(environment).notify
            if channel:
                self.send(threads.identifier(self, channel, True), text)
