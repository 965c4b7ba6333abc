"""acme.notes: a small notebook kept in the skill's own storage.

Storage layout (every key under ``notes/``, the one root skill.toml declares; the host
refuses any other key):

* ``notes/counter``            the number the next note gets (JSON integer)
* ``notes/index/<id>``         the note without its body (small JSON), one key per note
* ``notes/bodies/<id>``        the body as plain UTF-8 text
* ``notes/tags/<tag>/<id>``    an empty marker per tag, so a tag is one ``storage.list``

Listing reads only the small index entries, never the bodies, and filtering by tag is a
directory listing, so ``list_notes`` stays cheap in fuel however long the notes are.
An id is a slug of the title plus the note's number (``buy-milk-3``): readable, unique and
always a valid storage key segment.

The host has no transactions: two calls adding notes at the same instant could both see the
same counter; ``add`` then skips numbers already taken, but this is a demo, not a database.
"""

import json
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Annotated, Any

from palyra_sdk import Field, QuotaExceeded, ToolFailure, log, storage, tool

COUNTER = "notes/counter"
INDEX = "notes/index"
BODIES = "notes/bodies"
TAGS = "notes/tags"
MAX_NOTES = 500
MAX_SLUG = 40
ID_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*-[0-9]+$"
TAG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,31}$"

NoteId = Annotated[
    str,
    Field(
        description="A note id as add returned it, e.g. 'buy-milk-3'",
        pattern=ID_PATTERN,
        max_length=64,
    ),
]
Tag = Annotated[str, Field(description="A lower-case tag, e.g. 'shopping'", pattern=TAG_PATTERN)]


@dataclass
class Note:
    """A stored note."""

    id: Annotated[str, Field(description="A slug of the title and the note's number")]
    number: Annotated[int, Field(description="1 for the first note stored, then 2, 3, ...")]
    title: str
    body: str
    tags: list[str]
    created_at: Annotated[str, Field(description="When it was stored (UTC, ISO 8601)")]


@dataclass
class NoteSummary:
    """A note without its body."""

    id: str
    title: str
    tags: list[str]
    created_at: str


@dataclass
class NoteList:
    """The newest notes first."""

    notes: list[NoteSummary]
    total: Annotated[int, Field(description="How many notes match (some may not be shown)")]


@dataclass
class Deleted:
    id: str
    deleted: bool


def slug(title: str) -> str:
    """The title's lower-case ASCII words joined by '-' (at most 40 characters); 'note' when
    it has no ASCII letters or digits."""
    words = re.findall(r"[a-z0-9]+", title.lower())
    return "-".join(words)[:MAX_SLUG].strip("-") or "note"


def _number(note_id: str) -> int:
    return int(note_id.rsplit("-", 1)[1])


def _ids(prefix: str) -> list[str]:
    """The note ids under a key directory, newest first."""
    ids = [key.rsplit("/", 1)[1] for key in storage.list(prefix)]
    return sorted(ids, key=_number, reverse=True)


def _summary(note: Note) -> NoteSummary:
    return NoteSummary(note.id, note.title, note.tags, note.created_at)


def _json_text(summary: NoteSummary) -> str:
    return json.dumps(asdict(summary), ensure_ascii=False, separators=(",", ":"))


def _entry(note_id: str) -> dict[str, Any]:
    entry = storage.get_json(f"{INDEX}/{note_id}")
    if entry is None:
        raise ToolFailure("not_found", f"there is no note with id '{note_id}'", {"id": note_id})
    return dict(entry)


@tool
def add(
    title: Annotated[
        str, Field(description="A short title", min_length=1, max_length=200, pattern=r"\S")
    ],
    body: Annotated[str, Field(description="The note's text", max_length=4000)],
    tags: Annotated[
        Sequence[Tag], Field(description="Up to 5 distinct tags", max_items=5, unique_items=True)
    ] = (),
) -> Note:
    """Stores a new note and returns it with its generated id."""
    if len(storage.list(INDEX)) >= MAX_NOTES:
        raise ToolFailure(
            "tool_error", f"the notebook is full ({MAX_NOTES} notes); delete some first"
        )
    number = int(storage.get_json(COUNTER, 1))
    base = slug(title)
    while storage.get(f"{INDEX}/{base}-{number}") is not None:  # taken by a concurrent add
        number += 1
    storage.put_json(COUNTER, number + 1)
    note_id = f"{base}-{number}"
    created_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    note = Note(note_id, number, title.strip(), body, list(tags), created_at)
    written: list[str] = []
    try:
        for key, value in [
            (f"{BODIES}/{note_id}", body),
            *((f"{TAGS}/{tag}/{note_id}", "") for tag in note.tags),
            # Last: a note becomes visible once its index entry exists.
            (f"{INDEX}/{note_id}", _json_text(_summary(note))),
        ]:
            storage.put(key, value)
            written.append(key)
    except QuotaExceeded:
        for key in written:  # leave nothing half-stored behind
            storage.delete(key)
        raise ToolFailure(
            "tool_error", "the skill's storage quota is used up; delete some notes first"
        ) from None
    log.info(f"stored note {note_id}")
    return note


@tool
def get(id: NoteId) -> Note:
    """Returns one note by its id."""
    entry = _entry(id)
    body = storage.get_text(f"{BODIES}/{id}", "")
    return Note(id, _number(id), entry["title"], body or "", entry["tags"], entry["created_at"])


@tool
def list_notes(
    tag: Tag | None = None,
    limit: Annotated[int, Field(description="At most this many notes", minimum=1, maximum=10)] = 10,
) -> NoteList:
    """Lists the newest notes (titles and tags, not bodies), optionally only those with a tag."""
    ids = _ids(INDEX if tag is None else f"{TAGS}/{tag}")
    shown: list[NoteSummary] = []
    for note_id in ids[:limit]:
        entry = storage.get_json(f"{INDEX}/{note_id}")
        if entry is not None:  # None: a tag marker whose note is being deleted
            shown.append(NoteSummary(**entry))
    return NoteList(shown, len(ids))


@tool
def delete(id: NoteId) -> Deleted:
    """Deletes a note by its id."""
    entry = _entry(id)
    storage.delete(f"{INDEX}/{id}")  # first, so a half-finished delete is never listed
    storage.delete(f"{BODIES}/{id}")
    for tag in entry["tags"]:
        storage.delete(f"{TAGS}/{tag}/{id}")
    log.info(f"deleted note {id}")
    return Deleted(id, True)
