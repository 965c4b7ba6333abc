"""Types declared under ``from __future__ import annotations`` (string annotations), where
Python 3.11's TypedDict cannot see ``NotRequired``/``Required`` in ``__required_keys__``."""

from __future__ import annotations

import dataclasses
from typing import Annotated, NotRequired, Required, TypedDict

from palyra_sdk import Field


class Options(TypedDict):
    depth: int
    label: NotRequired[str]
    tags: NotRequired[Annotated[list[str], Field(max_items=3)]]


class Sparse(TypedDict, total=False):
    key: Required[str]
    note: str


@dataclasses.dataclass
class Job:
    name: str
    options: Options
    retries: int = 0


def run(job: Job, sparse: Sparse | None = None) -> list[Options]:
    """Run a job."""
    return [job.options]
