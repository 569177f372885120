"""The collector's errors, as its loop sees them (adapters translate library errors into these).

CollectorError
├── SettingsError           a bad setting; the service stops at start and names it
├── KubeError               the API server could not be reached or answered with an error
│   └── ExpiredError        410: the resourceVersion or continue token is too old; relist
├── PublishError            Kafka did not take a record now; the watch re-reads from its checkpoint
│   └── RecordRefusedError  Kafka will never take this record (too large, not UTF-8): set it aside
├── KafkaUnavailableError   Kafka cannot be reached (yet); wait for it with backoff, not a setting
└── LeaseError              a Lease of the home cluster could not be read or written; next beat
    └── LeaseConflictError  409 (or 404): someone else wrote that Lease first; it is not ours
"""

from herald_runtime.settings import SettingsError as RuntimeSettingsError


class CollectorError(Exception):
    pass


class SettingsError(CollectorError, RuntimeSettingsError):
    """Also a `herald_runtime.settings.SettingsError`: one or more bad settings, each named."""


class KubeError(CollectorError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ExpiredError(KubeError):
    pass


class PublishError(CollectorError):
    pass


class RecordRefusedError(PublishError):
    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(message)
        self.reason = reason
        """A short label for metrics: `too_large`, `not_utf8`."""


class KafkaUnavailableError(CollectorError):
    pass


class LeaseError(CollectorError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LeaseConflictError(LeaseError):
    pass
