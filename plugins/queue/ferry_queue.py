from errbot import BotPlugin

from ferrychat import queued, threads
from gitops.errors import FerryError
from gitops.feedback.records import ReplyTarget
from gitops.guard.queue import LOST

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
            result = self.ferry.gitops.apply_queued(change)
        except FerryError as e:
            return queued.refused(change, e.message)
        except Exception:
            self.log.exception("applying queued change %s failed", change.id)
            return queued.refused(change, "an error on Ferry's side (the bot's log has the details).")
        if result.commit is not None:  # Flux's events about it answered in the same thread
            try:
                self.get_plugin("FerryFlux").expect(result, change.requester.name or change.requester.id,
                                                    ReplyTarget(*change.target))
            except Exception:  # waiting for Flux is extra: the change is pushed either way
                self.log.exception("could not wait for Flux on queued change %s", change.id)
        return queued.applied(change, result)

    def _say(self, change, text):
        try:
            threads.say_in_thread(self, ReplyTarget(*change.target), text)
        except Exception:  # nobody to tell (that is what failed): the log keeps it
            self.log.exception("could not say what became of queued change %s: %s", change.id, text)
