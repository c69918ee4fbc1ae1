"""Everything between "a notification was decided" and "the provider was asked", and the way back.

    notification  the Notification type and its one factory
    intake        submit: the write-time policies, the durable write, the first attempt
    attempt       one provider request; backoff; the provider's health
    worker        the loop: due outbox items, then the timers
    silences      hold-back by rule, source or number (a policy of intake)
    storm         per-number limits and their summaries (a policy of intake; the worker sends summaries)
    followups     retries of unanswered calls and escalation steps (a timer)
    rules         what a rule's decision does: its state, its rows, its submit
    groups        rule groups waiting for group_wait (a timer)
    callbacks     the return path: status callbacks and the press of 1
    deadman       the dead man's switch (a timer)

Import from the modules; this package re-exports nothing.
"""
