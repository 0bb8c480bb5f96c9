"""Exception classes raised by fxplain.

Every error fxplain raises derives from :class:`FxplainError`, and also from
the built-in class users already catch (``ValueError`` for bad arguments or
files, ``RuntimeError`` for failures inside the compute core), so
``except ValueError`` keeps working in existing pipelines.

The C extension imports this module at start-up and raises these classes
directly; keep it free of imports from the rest of the package.
"""

from __future__ import annotations


class FxplainError(Exception):
    """Base class of every exception fxplain raises."""


class InvalidInputError(FxplainError, ValueError):
    """An argument (image, array, parameter) has the wrong type, shape, dtype or value."""


class ModelFormatError(FxplainError, ValueError):
    """A model file is truncated, corrupted, of a foreign format, or unsupported."""


class ModelNotFoundError(FxplainError, FileNotFoundError):
    """A model file could not be located."""


class DataUnavailableError(FxplainError, RuntimeError):
    """A dataset (for example the ``johns`` chips) is not installed and could not be fetched."""


class CoreError(FxplainError, RuntimeError):
    """The C core (oneDNN) failed while building or running a network."""


class FxplainWarning(UserWarning):
    """Base class of every warning fxplain issues."""


class UnverifiedWeightsWarning(FxplainWarning):
    """A model file loaded, but nothing confirms its weights are the ones its maker published.

    dlib's ``.dat`` format carries no checksum: a weight changed within its
    plausible range (a flipped low bit, a truncated-and-padded copy) parses
    and runs, and only the file's digest can tell. fxplain knows the digest of
    dlib's published model; a file with the same architecture and other
    weights (your own training, or a damaged copy) loads with this warning.
    Silence it with ``warnings.simplefilter("ignore", UnverifiedWeightsWarning)``
    once you know where the file comes from.
    """


class LicenceWarning(FxplainWarning):
    """A model fxplain is about to use comes with terms a user may need to know (issued once per process).

    dlib's 68-point landmark model, used to align 112x112 (ArcFace-template)
    chips, was trained on iBUG 300-W, whose terms exclude commercial use.
    Silence it with ``warnings.simplefilter("ignore", LicenceWarning)``.
    """


class StoreError(FxplainError, ValueError):
    """A result store is damaged, not fxplain's, or belongs to another run than the one asked for."""
