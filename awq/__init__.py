"""alien-workqueue: an HTCondor-compatible front end for CCTools Work Queue."""

__version__ = "2.0.0"
