"""The few exception classes the package raises for problems a user can fix.

Each message says what is wrong and what to do; the runner prints it on one line and exits 2.
"""


class UserError(Exception):
    """A problem with the user's input (params, data, paths, hardware choice). Exit status 2."""

    exit_code = 2


class ParamsError(UserError):
    """A params file or ``--set`` value that does not validate."""


class DataError(UserError):
    """A dataset that cannot be used as given (missing column, bad encoding, too few rows...)."""


class HardwareError(UserError):
    """The requested model/backend cannot run on the hardware present."""
