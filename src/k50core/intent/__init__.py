"""Call intents: the page reports a tap on or a copy of the shown number (``capture``), and
attribution weighs it, with the caller's history and a landline's region, to tell apart the
visitors of a shared number (``signals``)."""
from .capture import KINDS, IntentRow, capture, intents_near, record, save, stored_intents
from .signals import DelayModel, Signals, fit

__all__ = ["KINDS", "DelayModel", "IntentRow", "Signals", "capture", "fit", "intents_near", "record", "save",
           "stored_intents"]
