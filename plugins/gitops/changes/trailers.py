"""The trailer names of Ferry's commits: written by ``writing.commit_message``, read back by
``GitOps.audit`` (`!audit`) and ``GitOps.history``. Git is the record: a name changed in one place
and not the other would make Ferry's own commits unreadable to it."""

REQUESTED_BY = "Requested-by"
APPROVED_BY = "Approved-by"
FORCED_BY = "Forced-by"
BOT = "Bot"
ENVIRONMENT = "Environment"
APP = "App"
MOVES = "Moves"  # one per other part a whole-app promotion moves: "image:app 1.0.0 → 1.1.0"
PART = "Part"  # "image" or "image:<container>" when the change is an image tag, not the chart
FROM_VERSION = "From-Version"
TO_VERSION = "To-Version"
CHAT_THREAD = "Chat-Thread"
ROLLBACK_OF = "Rollback-Of"  # an automatic rollback: the commit of the change whose verification failed
VERIFICATION = "Verification"  # why: "failed: <reason>"
