"""Refusals the change services raise; views turn them into clear 4xx answers."""

from __future__ import annotations


class ChangeError(Exception):
    """Base: a refused change operation. ``status`` is the HTTP status to answer."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(ChangeError):
    """The user may see the object but may not do this (403)."""

    status = 403


class SeparationOfDuties(NotAllowed):
    """Refused by a separation-of-duties rule (403, audited)."""


class Conflict(ChangeError):
    """The object changed since the form was loaded, or is in the wrong state (409)."""

    status = 409


class Invalid(ChangeError):
    """Bad input the form could not catch (400)."""

    status = 400
