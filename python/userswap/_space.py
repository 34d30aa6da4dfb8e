"""Spaces, their buffers and groups."""

import ctypes
import re

from . import _library as L

_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value):
    """Bytes from an int or a text as people write it: "4096", "64K", "256M", "1.5G", "2T"
    (binary multiples). Raises ValueError for anything else, or a size that is not whole bytes."""
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative: %d" % value)
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError("%r is not a size; write it as 256M, 1.5G or a number of bytes" % (value,))
    number, unit = match.groups()
    shift = {"": 0, "k": 10, "m": 20, "g": 30, "t": 40}[unit.lower()]
    whole, _, fraction = number.partition(".")
    numerator = int((whole or "0") + fraction) << shift
    denominator = 10 ** len(fraction)
    if numerator % denominator:
        raise ValueError("%r is not a whole number of bytes" % (value,))
    return numerator // denominator


class _BufferMethods:
    """What a `Buffer` adds to its ctypes array: advice, prefetch, discard, and the unmapping of
    its memory when the last reference to it goes."""

    def advise(self, advice, offset=0, length=None):
        """Readahead advice for the bytes [offset, offset + length) (all by default): "normal",
        "sequential", "random" (the buffer's readahead policy), "willneed" (start reading them in),
        "dontneed" (swap them out now, keeping their data)."""
        if advice not in L.ADVICE:
            raise ValueError("advice %r is not one of %s" % (advice, ", ".join(L.ADVICE)))
        address, length = self._range(offset, length)
        L.check(L.lib.userswap_advise(self._space._live_handle(), address, length, L.ADVICE[advice]))

    def prefetch(self, offset=0, length=None):
        """Starts reading the swapped pages of [offset, offset + length) into RAM, all at once, and
        returns without waiting: an access waits only for its own page's read."""
        address, length = self._range(offset, length)
        L.check(L.lib.userswap_prefetch(self._space._live_handle(), address, length))

    def discard(self, offset=0, length=None):
        """Frees the whole pages of [offset, offset + length): they read as zeroes again."""
        address, length = self._range(offset, length)
        L.check(L.lib.userswap_discard(self._space._live_handle(), address, length))

    @property
    def address(self):
        """The memory's address (for C code given the buffer)."""
        return ctypes.addressof(self)

    def _range(self, offset, length):
        size = ctypes.sizeof(self)
        if length is None:
            length = size - offset
        if offset < 0 or length < 0 or offset + length > size:
            raise ValueError("range [%d, %d) is outside the buffer of %d bytes" % (offset, offset + length, size))
        return ctypes.addressof(self) + offset, length

    def __del__(self):
        space = getattr(self, "_space", None)
        if space is not None and space._handle:
            L.lib.userswap_unmap(space._handle, ctypes.addressof(self))
            space._live_buffers -= 1


_buffer_types = {}


def _buffer_type(nbytes):
    """A ctypes array type of `nbytes` with the buffer methods (one per size)."""
    made = _buffer_types.get(nbytes)
    if made is None:
        made = type("Buffer", (ctypes.c_ubyte * nbytes, _BufferMethods), {})
        _buffer_types[nbytes] = made
    return made


Buffer = _BufferMethods
"""The class of what `Space.buffer` returns (an instance of a ctypes `c_ubyte` array type of its
size, with these methods): writable memory supporting the buffer protocol."""


class Group:
    """A memory group of a space (a memory cgroup): buffers made in it share its limits."""

    def __init__(self, space, handle, name):
        self._space = space
        self._handle = handle
        self.name = name

    def set_limits(self, memory_limit=None, swap_limit=None):
        """New limits in bytes (or sizes as text); None for no limit. A memory limit below the
        usage swaps out the difference before returning; when pins or full swap keep the group
        above it, the limits stay set and this raises (the message says by how much)."""
        L.check(L.lib.userswap_group_set_limits(self._handle, _limit(memory_limit), _limit(swap_limit)))

    def stats(self):
        """Usage, peaks, limits (None: no limit) and swap counters, as a dict of bytes."""
        self._space._live_handle()
        stats = L.GroupStats(size=ctypes.sizeof(L.GroupStats))
        L.check(L.lib.userswap_group_stats_get(self._handle, ctypes.byref(stats)))
        result = {name: getattr(stats, name) for name in L.GROUP_STATS_FIELDS}
        for name in ("memory_limit", "swap_limit"):
            if result[name] == L.UNLIMITED:
                result[name] = None
        return result


def _limit(value):
    return L.UNLIMITED if value is None else parse_size(value)


class Space:
    """A RAM budget with swap behind it, from which `buffer` makes memory larger than RAM.

    memory: the RAM budget (bytes or "256M"). swap_dir: where unnamed swap files go ($TMPDIR,
    else /tmp, when None); they are removed from the disk at once, so nothing is left behind.
    swap_size: one unnamed swap file of that size made with the space (0: none; add devices);
    by default (None) each buffer adds one of its own size, so that buffers never find swap full
    (the space keeps them until it is closed).
    encryption: pages sealed on the swap device under a random key (the default) or in clear.

    Close it (or use it in a `with` block) when no buffer of it is used any more; otherwise it
    goes when its last buffer does.
    """

    def __init__(self, memory="256M", swap_dir=None, swap_size=None, encryption=True, background_reclaim=True):
        self._handle = None
        self._live_buffers = 0
        config = L.Config()
        L.check(L.lib.userswap_config_init(ctypes.byref(config)))
        config.memory = parse_size(memory)
        self._swap_per_buffer = swap_size is None
        self._swap_dir = None if swap_dir is None else str(swap_dir)
        config.swap_size = 0 if swap_size is None else parse_size(swap_size)
        config.swap_dir = None if swap_dir is None else self._swap_dir.encode()
        config.flags = (0 if encryption else L.SPACE_NO_ENCRYPTION) | (
            0 if background_reclaim else L.SPACE_NO_BACKGROUND_RECLAIM)
        handle = ctypes.c_void_p()
        L.check(L.lib.userswap_space_create(ctypes.byref(config), ctypes.byref(handle)))
        self._handle = handle.value

    @classmethod
    def from_env(cls):
        """A space as the environment says (USERSWAP_MEMORY, USERSWAP_SWAP_DIR, ...: see
        userswap.h's userswap_space_from_env)."""
        space = cls.__new__(cls)
        space._handle = None
        space._live_buffers = 0
        space._swap_per_buffer = False
        handle = ctypes.c_void_p()
        L.check(L.lib.userswap_space_from_env(ctypes.byref(handle)))
        space._handle = handle.value
        return space

    def buffer(self, nbytes, group=None, faulting_thread=False):
        """`nbytes` of zeroed, writable memory supporting the buffer protocol
        (`numpy.frombuffer(space.buffer(n), dtype=...)`), charged to `group`. It lives as long
        as references to it (views and arrays made from it hold one) and the space do.
        faulting_thread: each thread brings in the pages it touches itself (faster; kernel code
        writing into pages not touched before, as `readinto` does, then fails)."""
        nbytes = parse_size(nbytes)
        if nbytes <= 0:
            raise ValueError("a buffer needs at least one byte")
        if self._swap_per_buffer:
            # Whole clusters (2 MiB) plus the header page: the device holds all of the buffer.
            self.add_temporary_device(((nbytes + (2 << 20) - 1) >> 21 << 21) + (2 << 20) + 4096, self._swap_dir)
        address = ctypes.c_void_p()
        flags = L.MAP_FAULTING_THREAD if faulting_thread else 0
        L.check(L.lib.userswap_map_group(self._live_handle(), group._handle if group else None, nbytes, flags,
                                         ctypes.byref(address)))
        made = _buffer_type(nbytes).from_address(address.value)
        made._space = self
        self._live_buffers += 1
        return made

    def group(self, name, memory_limit=None, swap_limit=None, parent=None):
        """A memory group with limits in bytes (or sizes as text; None: no limit)."""
        handle = ctypes.c_void_p()
        L.check(L.lib.userswap_group_create(self._live_handle(), name.encode(), _limit(memory_limit),
                                            _limit(swap_limit), parent._handle if parent else None,
                                            ctypes.byref(handle)))
        return Group(self, handle.value, name)

    def add_file_device(self, path, size=0, priority=0):
        """Adds the swap file at `path`, created with `size` bytes if it does not exist."""
        L.check(L.lib.userswap_add_file_device(self._live_handle(), str(path).encode(), parse_size(size), priority))

    def add_temporary_device(self, size, directory=None, priority=0):
        """Adds an unnamed swap file of `size` bytes in `directory`."""
        L.check(L.lib.userswap_add_temporary_device(self._live_handle(),
                                                    None if directory is None else str(directory).encode(),
                                                    parse_size(size), priority))

    def add_redis_device(self, url, size, priority=0):
        """Adds `size` bytes of swap on the Redis server at `url` (redis://host:port)."""
        L.check(L.lib.userswap_add_redis_device(self._live_handle(), url.encode(), parse_size(size), priority))

    def stats(self):
        """The space's counters as a dict (bytes and counts; see userswap.h's userswap_stats)."""
        stats = L.Stats(size=ctypes.sizeof(L.Stats))
        L.check(L.lib.userswap_stats_get(self._live_handle(), ctypes.byref(stats)))
        return {name: getattr(stats, name) for name in L.STATS_FIELDS}

    def close(self):
        """Releases the space and its swap. Raises BufferError while a buffer of it is alive
        (drop the arrays and views made from it first)."""
        if not self._handle:
            return
        alive = self._live_buffers
        if alive:
            raise BufferError("%d buffers of this space are still in use; delete them (and the arrays made "
                              "from them) before closing the space" % alive)
        handle, self._handle = self._handle, None
        L.lib.userswap_space_destroy(handle)

    def _live_handle(self):
        if not self._handle:
            raise ValueError("the space is closed")
        return self._handle

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, "_handle", None):
            L.lib.userswap_space_destroy(self._handle)
            self._handle = None
