"""syncd: keep a JMAP account and a local vdir in two-way sync."""

__version__ = "0.1.0"
