"""Swappable memory for Python: buffers larger than RAM, over libuserswap.

    space = userswap.Space(memory="256M")
    a = numpy.frombuffer(space.buffer(2 << 30), dtype=numpy.float64)

A `Space` is a RAM budget with a swap file behind it; `Space.buffer(nbytes)` gives writable
memory that supports the buffer protocol (`memoryview`, `numpy.frombuffer`), of which the
library keeps at most the budget in RAM. Errors are `userswap.Error` exceptions carrying the
library's code and message.
"""

from ._library import Error, library_path
from ._space import Buffer, Group, Space, parse_size

__all__ = ["Buffer", "Error", "Group", "Space", "library_path", "parse_size"]
