"""alertd run | check | keys | log | test-rule | oncall | silence | backup | users | heartbeats | providers
| cluster | db copy (see main.py)."""
from __future__ import annotations

from .main import main, parser
from .rules import check_rules

__all__ = ["main", "parser", "check_rules"]
