"""Refusals the dbops services raise; views turn them into clear 4xx answers."""

from __future__ import annotations


class DbopsError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotAllowed(DbopsError):
    status = 403


class Invalid(DbopsError):
    status = 400


class Unavailable(DbopsError):
    """The target could not be reached or refused the login."""

    status = 400
