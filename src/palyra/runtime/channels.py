"""Chat channels a skill may send to. The daemon plugs in real sinks; these two ship here."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger("palyra.channels")


@dataclass(frozen=True)
class ChannelMessage:
    skill_id: str
    channel: str
    text: str


class ChannelSink(Protocol):
    def send(self, message: ChannelMessage) -> None:
        """Deliver or raise; the sandbox turns any exception into ``UPSTREAM`` for the guest."""


class LogChannelSink:
    """Writes messages to the ``palyra.channels`` logger (the default: nothing leaves the host)."""

    def send(self, message: ChannelMessage) -> None:
        log.info("channel %s from %s: %s", message.channel, message.skill_id, message.text)


class MemoryChannelSink:
    """Keeps messages in memory, for tests and the development CLI."""

    def __init__(self) -> None:
        self.messages: list[ChannelMessage] = []
        self._lock = threading.Lock()

    def send(self, message: ChannelMessage) -> None:
        with self._lock:
            self.messages.append(message)
