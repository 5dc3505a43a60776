"""Polls base paths and the model config while serving, as TF Serving does.

    poller = VersionPoller(registry, file_system_poll_wait_seconds=1.0,
                           config_file="serving/models.config",
                           config_poll_wait_seconds=60.0).start()
    ...
    poller.stop()

Every `file_system_poll_wait_seconds` (TF Serving's `--file_system_poll_wait_seconds`,
default 1; 0 disables) each model's base path is read again: new versions are
loaded, warmed up and made available, then versions the policy no longer wants
are unloaded (`ModelRegistry.refresh`). Every `config_poll_wait_seconds`
(`--model_config_file_poll_wait_seconds`, default 0: off) the config file is
read again and its model list applied; a config that does not parse is
reported and the old one kept. A poll that fails is logged (one line per
failed poll) and the next one still comes after the full wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from electra_keras.serving.model_config import load_model_config
from electra_keras.serving.model_registry import ModelRegistry


class VersionPoller:
    """A daemon thread that keeps a `ModelRegistry` in line with the disk.

    Args:
        registry: the models being served.
        file_system_poll_wait_seconds: seconds between base path polls; 0: never.
        config_file: the model config file to re-read, if any.
        config_poll_wait_seconds: seconds between config reads; 0: never.
        base_dir: directory for relative base paths in the config.
        log: called with one line per problem (a config that does not parse,
            a poll that raised).
    """

    def __init__(
        self,
        registry: ModelRegistry,
        file_system_poll_wait_seconds: float = 1.0,
        config_file: str | None = None,
        config_poll_wait_seconds: float = 0.0,
        base_dir: str | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        if file_system_poll_wait_seconds < 0 or config_poll_wait_seconds < 0:
            raise ValueError("Poll intervals must be >= 0 seconds.")
        self.registry = registry
        self.file_system_poll_wait_seconds = file_system_poll_wait_seconds
        self.config_file = config_file
        self.config_poll_wait_seconds = config_poll_wait_seconds if config_file else 0
        self.base_dir = base_dir
        self._log = log or (lambda message: None)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_config_error = ""

    @property
    def enabled(self) -> bool:
        """Whether anything is polled at all."""
        return bool(self.file_system_poll_wait_seconds or self.config_poll_wait_seconds)

    def poll_config(self) -> None:
        """Reads the config file once and applies it (keeps the old one on error)."""
        try:
            configs = load_model_config(self.config_file, base_dir=self.base_dir)
        except (OSError, ValueError) as error:
            message = f"model config {self.config_file} not applied: {error}"
            if message != self._last_config_error:
                self._log(message)
                self._last_config_error = message
            return
        self._last_config_error = ""
        if configs != list(self.registry.configs.values()):
            self.registry.apply_configs(configs)

    def _poll_once(self, what: str, poll: Callable[[], None]) -> None:
        """Runs one poll; an error is logged (once) instead of raised."""
        try:
            poll()
        except Exception as error:  # noqa: BLE001  (keep polling; report it)
            self._log(f"{what} failed: {type(error).__name__}: {error}")

    def _run(self) -> None:
        now = time.monotonic()
        next_files = now + self.file_system_poll_wait_seconds
        next_config = now + self.config_poll_wait_seconds
        while True:
            due = []
            if self.file_system_poll_wait_seconds:
                due.append(next_files)
            if self.config_poll_wait_seconds:
                due.append(next_config)
            if self._stop.wait(max(0.0, min(due) - time.monotonic())):
                return
            now = time.monotonic()
            # The next poll is scheduled whether or not this one works: a
            # failing poll must not be retried in a busy loop.
            if self.config_poll_wait_seconds and now >= next_config:
                self._poll_once("model config poll", self.poll_config)
                next_config = now + self.config_poll_wait_seconds
            if self.file_system_poll_wait_seconds and now >= next_files:
                self._poll_once("file system poll", self.registry.refresh)
                next_files = time.monotonic() + self.file_system_poll_wait_seconds

    def start(self) -> VersionPoller:
        """Starts polling on a daemon thread (if anything is polled); returns self."""
        if self.enabled and self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="version-poller", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stops polling (waits for a load under way to finish)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
