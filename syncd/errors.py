"""The base of every error syncd reports to a user."""


class SyncdError(Exception):
    """An error with a message meant for the user: what happened, where, what to do."""
