"""The collector's errors, as its loop sees them (adapters translate library errors into these).

CollectorError
├── SettingsError      a bad setting; the service stops at start and names it
├── KubeError          the API server could not be reached or answered with an error
│   └── ExpiredError   410: the resourceVersion or continue token is too old; relist
└── PublishError       Kafka refused or lost a record
"""


class CollectorError(Exception):
    pass


class SettingsError(CollectorError):
    pass


class KubeError(CollectorError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ExpiredError(KubeError):
    pass


class PublishError(CollectorError):
    pass
