"""The Alertmanager webhook receiver (being written)."""

from __future__ import annotations
