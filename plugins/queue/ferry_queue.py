from errbot import BotPlugin

from ferrychat import queued, threads
from gitops.errors import FerryError
from gitops.feedback.records import ReplyTarget
from gitops.guard.queue import LOST
from gitops.identity import person

POLL_SECONDS = 15.0  # how often due changes are looked for (FERRY_QUEUE_POLL_SECONDS)


class FerryQueue(BotPlugin):
    """Changes queued for a promotion window (`--queue`): at the opening each is planned and
    checked again, applied or refused, and said in the thread it was asked in. At start, one a
    stopped bot was applying is said lost (never applied twice); one whose window passed while
    the bot was stopped is said lost too, with the reason; the others wait on."""

    def activate(self):
        super().activate()
        self.ferry = self.get_plugin("Ferry")
        # Said at the first round, once chat is connected: not while plugins are still starting.
        self.recovered = self.ferry.gitops.recover_queue()
        seconds = float(getattr(self.bot_config, "FERRY_QUEUE_POLL_SECONDS", POLL_SECONDS))
        self.start_poller(seconds, self.apply_due)

    def apply_due(self):
        """Every queued change whose window is open now, applied or refused; each said once."""
        try:
            recovered, self.recovered = self.recovered, []
            for change in recovered:
                self._say(change, queued.lost(change))
            for change in self.ferry.gitops.opened():
                self._say(change, queued.lost(change) if change.state == LOST else self._apply(change))
        except Exception:  # logged; the poller must live on to look again next round
            self.log.exception("applying the queued changes failed")

    def _apply(self, change) -> str:
        try:
            refused = self._acl_refusal(change)
            if refused:
                self.ferry.gitops.refuse_queued(change, refused)
                return queued.refused(change, refused)
            result = self.ferry.gitops.apply_queued(change)
        except FerryError as e:
            return queued.refused(change, e.message)
        except Exception:
            self.log.exception("applying queued change %s failed", change.id)
            why = "an error on Ferry's side (the bot's log has the details)."
            self.ferry.gitops.refuse_queued(change, why)  # claimed, never applied: settled as refused
            return queued.refused(change, why)
        if result.commit is not None:  # Flux's events about it answered in the same thread
            try:
                self.get_plugin("FerryFlux").expect(result, change.requester.name or change.requester.id,
                                                    ReplyTarget(*change.target))
            except Exception:  # waiting for Flux is extra: the change is pushed either way
                self.log.exception("could not wait for Flux on queued change %s", change.id)
        return queued.applied(change, result)

    def _acl_refusal(self, change) -> str:
        """Errbot's ACLs asked again for the requester: a restart with another FERRY_ACCESS_CONTROLS
        may have taken the command from them since. "" when they still may run it there."""
        names = change.asker if change.asker[0] else (change.requester.id, change.target[0] if change.target[1] else "")
        if threads.may_still_run(self, change.command, change.words.split(" ", 1)[1], names):
            return ""
        return (f"Errbot's ACLs no longer let {person(change.requester)} run `!{change.command}` there "
                "(FERRY_ACCESS_CONTROLS): ask someone who may.")

    def _say(self, change, text):
        try:
            threads.say_in_thread(self, ReplyTarget(*change.target), text)
        except Exception:  # nobody to tell (that is what failed): the log keeps it
            self.log.exception("could not say what became of queued change %s: %s", change.id, text)

