"""State machines that are safe under a threaded web server.

django-fsm-2's ``FSMModelMixin.refresh_from_db`` switches ``protected`` off on the field
object, reloads, and switches it on again. That field object is shared by every thread
of the process, so under gunicorn's threads one request's refresh could switch the
protection back on in the middle of another request's refresh, which then failed with
"Direct state modification is not allowed" (a 500, with the draft saved but not
submitted). Here a refresh removes the protected values from the instance's own
``__dict__`` first (the descriptor only refuses a value already set on that instance),
so nothing shared is ever touched.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django_fsm import ConcurrentTransitionMixin, FSMFieldMixin


class StateMachineMixin(ConcurrentTransitionMixin):
    """``ConcurrentTransitionMixin`` with a thread-safe ``refresh_from_db``."""

    def refresh_from_db(self, using=None, fields=None, from_queryset=None) -> None:
        # Every protected state field is freed on this instance, even for a partial
        # refresh: loading the other fields may load the state along with them.
        names = {
            f.name
            for f in self._meta.concrete_fields
            if isinstance(f, FSMFieldMixin) and f.protected
        }
        popped: dict[str, Any] = {n: self.__dict__.pop(n) for n in names if n in self.__dict__}
        try:
            # Skip FSMModelMixin's toggling; Model.refresh_from_db does the reload.
            models.Model.refresh_from_db(
                self, using=using, fields=fields, from_queryset=from_queryset
            )
        finally:
            # A state the refresh did not load keeps the value the instance had.
            for name, value in popped.items():
                self.__dict__.setdefault(name, value)
        self._update_initial_state()
