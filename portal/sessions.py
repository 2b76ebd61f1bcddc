"""The database session store, telling a lost database from a deleted session.

Django's store turns any DatabaseError while updating a session into UpdateError, which
SessionMiddleware reports as a 400 "the request's session was deleted before the
request completed". During a database restart that is false and sends the user
looking for the wrong cause; the database's own error goes on to the 503 handler
(``portal.middleware.DatabaseUnavailableMiddleware``) instead.
"""

from __future__ import annotations

from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore

from portal.middleware import database_lost


class SessionStore(DatabaseSessionStore):
    def save(self, must_create: bool = False) -> None:
        try:
            super().save(must_create=must_create)
        except UpdateError as exc:
            if database_lost(exc.__context__):
                raise exc.__context__ from None
            raise
