"""Errors raised by the library; messages are written for the person at the keyboard."""

from __future__ import annotations


class AssistantError(Exception):
    """Base class: the message says what went wrong and what to do."""


class InputError(AssistantError):
    """A question, quote, setting or file given by the user is not usable."""


class CorpusError(AssistantError):
    """The corpus folder is missing, empty or unreadable as a whole."""


class IndexMissingError(AssistantError):
    """No index has been built yet in the index folder."""


class IndexMismatchError(AssistantError):
    """The index was built with another model, chunker or format than asked for."""


class IndexCorruptError(AssistantError):
    """An index file is damaged or truncated."""


class IndexBusyError(AssistantError):
    """Another process is writing the index."""


class StoreUnavailableError(AssistantError):
    """The index store (a Milvus server) could not be reached or failed to answer."""
