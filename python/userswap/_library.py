"""The C library through ctypes: its functions with their signatures, and its errors."""

import ctypes
import ctypes.util
import os

c_size = ctypes.c_size_t
c_u64 = ctypes.c_uint64
c_u32 = ctypes.c_uint32
c_void_p = ctypes.c_void_p


class Config(ctypes.Structure):
    """`userswap_config`."""
    _fields_ = [("size", c_size), ("memory", c_size), ("flags", c_u32), ("reserved", c_u32),
                ("swap_dir", ctypes.c_char_p), ("swap_size", c_size)]


STATS_FIELDS = ["memory", "resident", "swap_total", "swap_used", "swap_ins", "swap_outs", "major_faults",
                "minor_faults", "write_faults", "fault_errors", "readahead_pages", "readahead_hits",
                "reclaim_scanned", "reclaim_freed", "io_errors", "fault_waits", "fault_wait_ns", "fault_wait_p99_ns",
                "late_faults"]


class Stats(ctypes.Structure):
    """`userswap_stats`."""
    _fields_ = [("size", c_size), ("version", c_u32), ("reserved", c_u32)] + [(name, c_u64) for name in STATS_FIELDS]


GROUP_STATS_FIELDS = ["memory", "memory_peak", "memory_limit", "swap", "swap_peak", "swap_limit", "swap_ins",
                      "swap_outs"]


class GroupStats(ctypes.Structure):
    """`userswap_group_stats`."""
    _fields_ = [("size", c_size)] + [(name, c_u64) for name in GROUP_STATS_FIELDS]


SPACE_NO_ENCRYPTION = 0x1
SPACE_NO_BACKGROUND_RECLAIM = 0x2
MAP_FAULTING_THREAD = 0x1
UNLIMITED = (1 << 64) - 1
ADVICE = {"normal": 0, "sequential": 1, "random": 2, "willneed": 3, "dontneed": 4}

# Error codes of userswap.h, by name.
CODES = {1: "EINVAL", 2: "ENOMEM", 3: "ENOSPC", 4: "EIO", 5: "ENOENT", 6: "EACCES", 7: "EBUSY", 8: "EFORMAT",
         9: "ENOTSUP", 10: "EENV"}


class Error(Exception):
    """A failed call of the library: `code` (an int of userswap.h's `userswap_error`), `name`
    ("EINVAL", ...) and the library's message, which says what to do."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code
        self.name = CODES.get(code, "E%d" % code)
        self.message = message

    def __str__(self):
        return "%s (%s)" % (self.message, self.name)


def library_path():
    """Where the library is loaded from: `USERSWAP_LIBRARY`, else the loader's search path."""
    return os.environ.get("USERSWAP_LIBRARY") or ctypes.util.find_library("userswap") or "libuserswap.so"


def _load():
    try:
        lib = ctypes.CDLL(library_path())
    except OSError as error:
        raise ImportError("userswap: cannot load libuserswap (%s); install it with `make install` in the UserSwap "
                          "repository, or set USERSWAP_LIBRARY to its path" % error) from error
    p = ctypes.POINTER
    signatures = {
        "userswap_version": (c_u32, []),
        "userswap_strerror": (ctypes.c_char_p, [ctypes.c_int]),
        "userswap_last_error": (ctypes.c_char_p, []),
        "userswap_config_init": (ctypes.c_int, [p(Config)]),
        "userswap_space_create": (ctypes.c_int, [p(Config), p(c_void_p)]),
        "userswap_space_from_env": (ctypes.c_int, [p(c_void_p)]),
        "userswap_space_destroy": (ctypes.c_int, [c_void_p]),
        "userswap_add_file_device": (ctypes.c_int, [c_void_p, ctypes.c_char_p, c_size, ctypes.c_int]),
        "userswap_add_temporary_device": (ctypes.c_int, [c_void_p, ctypes.c_char_p, c_size, ctypes.c_int]),
        "userswap_add_redis_device": (ctypes.c_int, [c_void_p, ctypes.c_char_p, c_size, ctypes.c_int]),
        "userswap_stats_get": (ctypes.c_int, [c_void_p, p(Stats)]),
        "userswap_map": (ctypes.c_int, [c_void_p, c_size, ctypes.c_uint, p(c_void_p)]),
        "userswap_map_group": (ctypes.c_int, [c_void_p, c_void_p, c_size, ctypes.c_uint, p(c_void_p)]),
        "userswap_unmap": (ctypes.c_int, [c_void_p, c_void_p]),
        "userswap_pin": (ctypes.c_int, [c_void_p, c_void_p, ctypes.c_int, p(c_void_p), p(c_void_p)]),
        "userswap_unpin": (ctypes.c_int, [c_void_p]),
        "userswap_advise": (ctypes.c_int, [c_void_p, c_void_p, c_size, ctypes.c_int]),
        "userswap_prefetch": (ctypes.c_int, [c_void_p, c_void_p, c_size]),
        "userswap_discard": (ctypes.c_int, [c_void_p, c_void_p, c_size]),
        "userswap_group_create": (ctypes.c_int, [c_void_p, ctypes.c_char_p, c_u64, c_u64, c_void_p, p(c_void_p)]),
        "userswap_group_set_limits": (ctypes.c_int, [c_void_p, c_u64, c_u64]),
        "userswap_group_stats_get": (ctypes.c_int, [c_void_p, p(GroupStats)]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


lib = _load()


def check(code):
    """Raises the library's error for a failed call (the message is this thread's last error:
    ctypes calls the function on the calling thread)."""
    if code != 0:
        raise Error(code, lib.userswap_last_error().decode("utf-8", "replace"))
