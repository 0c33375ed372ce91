"""The one exception the local stack raises on purpose."""


class StackError(RuntimeError):
    """A server could not be prepared, started or reached.

    The message names the server, the bad value (port, file, key) and the fix; the CLI
    prints it without a traceback.
    """
