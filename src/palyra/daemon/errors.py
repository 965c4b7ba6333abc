"""Typed errors of the service layer; ``kind`` strings are a public contract."""

from __future__ import annotations

from palyra.errors import NotFoundError, PalyraError


class SkillNotInstalled(NotFoundError):
    """No such skill (or version) is installed."""


class AlreadyInstalled(PalyraError):
    """This version is installed with different bytes; versions are immutable."""

    kind = "already_installed"


class DowngradeRefused(PalyraError):
    kind = "downgrade_refused"


class PublisherMismatch(PalyraError):
    """An artifact of another publisher for an installed skill: a skill id belongs to the
    publisher whose versions are installed (remove the skill to change publishers)."""

    kind = "publisher_mismatch"


class Conflict(PalyraError):
    """The change would leave dangling references (a hook naming a removed plugin, say)."""

    kind = "conflict"


class QuarantineRequired(PalyraError):
    """The artifact fails its audit, so it cannot be made runnable."""

    kind = "quarantine_required"


class SkillNotActive(PalyraError):
    """The skill version is quarantined or disabled: no new call may start."""

    kind = "skill_not_active"


class CapabilityApprovalRequired(PalyraError):
    """An update asks for capabilities its predecessor did not have; the operator decides."""

    kind = "capability_approval_required"


class MissingSecrets(PalyraError):
    """The tool asked for a declared secret that is not in the vault."""

    kind = "missing_secrets"


class Overloaded(PalyraError):
    """Every worker is busy and the queue is full; retry later."""

    kind = "overloaded"


class ApprovalDenied(PalyraError):
    kind = "approval_denied"


class ApprovalTimeout(PalyraError):
    kind = "approval_timeout"


class ConfigError(PalyraError):
    kind = "config"


class RegistryError(PalyraError):
    """A registry could not be read, or what it served does not match what it promised."""

    kind = "registry"
