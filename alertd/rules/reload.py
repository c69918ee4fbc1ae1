"""The live rule set: lenient at start, all-or-nothing on reload.

At start there is no previous set, so files that fail are skipped and their
errors reported loudly (log, /healthz, GET /api/v1/rules): one broken file
never silences every other rule. On reload (a file changed, or SIGHUP), any
error keeps the previous set live, untouched.
"""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Callable

import structlog
from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from ..directory import Directory
from .loader import LoadResult, load_configured
from .ruleset import RuleSet

log = structlog.get_logger("alertd.rules")
DEBOUNCE = 0.3  # editors write a file in several steps; wait for the last


class RuleManager:
    def __init__(self, config, on_swap: Callable[[RuleSet], None]):
        self.config, self.on_swap = config, on_swap
        self.ruleset = RuleSet(timezone=config.timezone)
        self.errors: list[str] = []
        self.loaded_at: float | None = None
        self.reload_failures = 0
        self._observer: Observer | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _load(self) -> LoadResult:
        cfg = self.config
        folder = Path(cfg.rules)
        if not folder.exists():
            return LoadResult(RuleSet(timezone=cfg.timezone), [], [], [])
        return load_configured(cfg, Directory(cfg), folder)

    def load_initial(self) -> None:
        result = self._load()
        self.errors = list(result.errors)
        for line in result.errors:
            log.error("rule file error", error=line)
        self._swap(result.ruleset)
        log.info("rules loaded", rules=len(result.ruleset), files=len(result.files),
                 failed_files=result.failed_files or None)

    def reload(self) -> bool:
        """Load every file; swap only when all are valid. Returns whether it swapped."""
        try:
            result = self._load()
        except Exception as exc:  # never let a reload take the daemon down
            log.exception("rule reload crashed")
            result = LoadResult(self.ruleset, [f"{self.config.rules}: reload failed: {exc}"], [], [])
        if result.errors:
            self.errors = list(result.errors)
            self.reload_failures += 1
            for line in result.errors:
                log.error("rule reload refused; the previous rules stay live", error=line)
            return False
        self.errors = []
        self._swap(result.ruleset)
        log.info("rules reloaded", rules=len(result.ruleset), files=len(result.files))
        return True

    def _swap(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.loaded_at = time.time()
        self.on_swap(ruleset)

    # --- watching the folder ------------------------------------------------------
    def watch(self, loop: asyncio.AbstractEventLoop) -> None:
        folder = Path(self.config.rules)
        if not folder.is_dir():
            log.warning("rules folder does not exist; not watching", folder=str(folder))
            return
        self._loop = loop
        manager = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: FileSystemEvent) -> None:
                # reading the files (our own reload) raises opened/closed_no_write: ignore those
                if event.event_type not in ("created", "modified", "deleted", "moved", "closed"):
                    return
                paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
                if event.is_directory and event.event_type not in ("deleted", "moved"):
                    return
                if any(p.endswith((".yaml", ".yml")) for p in paths) or event.is_directory:
                    loop.call_soon_threadsafe(manager.schedule_reload)

        self._observer = Observer()
        self._observer.schedule(Handler(), str(folder), recursive=True)
        self._observer.daemon = True
        self._observer.start()

    def schedule_reload(self) -> None:
        """Debounced: a burst of file events makes one reload."""
        if self._pending is not None:
            self._pending.cancel()
        self._pending = self._loop.call_later(DEBOUNCE, self.reload)

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(5)
