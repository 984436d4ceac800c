"""Training-round tasks: thin wrappers that take ids and call ``annotations.services.rounds``."""

from celery import shared_task

# A round may train for hours; the hard limit stays below the broker's visibility timeout
# (6 h 10 min) so a message is never redelivered while its first run is still alive.
ROUND_SOFT_TIME_LIMIT = 6 * 3600
ROUND_TIME_LIMIT = 6 * 3600 + 300


# No autoretry: the round is claimed once; a redelivered message finds it claimed and does nothing.
@shared_task(
    bind=True,
    name="annotations.training_round_run",
    acks_late=True,
    soft_time_limit=ROUND_SOFT_TIME_LIMIT,
    time_limit=ROUND_TIME_LIMIT,
)
def training_round_run(self, round_id: int) -> str:
    """Run a queued training round (no-op if it was already claimed, finished or cancelled)."""
    from annotations.services.rounds import training_round_execute

    return training_round_execute(round_id=round_id, worker=self.request.hostname or "")
