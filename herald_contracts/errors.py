"""Errors of the contracts package."""


class ContractError(ValueError):
    """Bytes that do not decode into a record of the contract; the message says why."""
