"""meetd — a self-hosted meetings server that speaks the Vonage Meetings API."""

__version__ = "0.1.0"
