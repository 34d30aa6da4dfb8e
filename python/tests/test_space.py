"""The module's interface: sizes, errors as exceptions with the library's messages, buffers
that NumPy and memoryview see as memory, statistics as dicts, groups, advice, closing."""

import ctypes
import os

import numpy
import pytest

import userswap


@pytest.fixture
def space(tmp_path):
    with userswap.Space(memory="1M", swap_dir=tmp_path) as made:
        yield made


def test_sizes_are_read_as_people_write_them():
    assert userswap.parse_size("4096") == 4096
    assert userswap.parse_size("64K") == 64 << 10
    assert userswap.parse_size("256M") == 256 << 20
    assert userswap.parse_size("1.5G") == 3 << 29
    assert userswap.parse_size("2 TiB") == 2 << 40
    assert userswap.parse_size(12345) == 12345
    for bad in ("", "lots", "1.5", "-1", "12Q", "0.3K"):
        with pytest.raises(ValueError):
            userswap.parse_size(bad)


def test_an_error_carries_the_library_code_and_message(tmp_path):
    with pytest.raises(userswap.Error) as caught:
        userswap.Space(memory=100)
    assert caught.value.code == 1 and caught.value.name == "EINVAL"
    assert "holds no page; give at least 4K" in str(caught.value)
    with userswap.Space(memory="1M", swap_size=0) as space:
        with pytest.raises(userswap.Error) as caught:
            space.add_file_device(tmp_path / "absent.swap")
        assert caught.value.name == "ENOENT" and "does not exist" in caught.value.message


def test_a_buffer_is_memory_that_numpy_and_memoryview_share(space):
    buffer = space.buffer("4M")
    view = memoryview(buffer)
    assert view.nbytes == 4 << 20 and not view.readonly
    array = numpy.frombuffer(buffer, dtype=numpy.uint32)
    assert array.flags.writeable and not array.any()
    array[:] = numpy.arange(len(array), dtype=numpy.uint32)
    assert view[4 * 1000:4 * 1001].tobytes() == (1000).to_bytes(4, "little")
    assert ctypes.c_uint32.from_address(buffer.address + 4 * 77).value == 77
    assert int(array.sum(dtype=numpy.uint64)) == len(array) * (len(array) - 1) // 2
    stats = space.stats()
    assert stats["memory"] == 1 << 20 and stats["resident"] <= 1 << 20
    assert stats["swap_outs"] > 0 and stats["major_faults"] > 0
    # Every fault is timed, once its thread is woken.
    assert 0 < stats["fault_waits"] <= stats["major_faults"] + stats["minor_faults"]
    assert stats["fault_wait_ns"] > 0 and 0 < stats["fault_wait_p99_ns"] <= stats["fault_wait_ns"]
    # No page was discarded under a fault: none was answered late.
    assert stats["late_faults"] == 0
    del view, array, buffer


def test_advice_prefetch_and_discard(space):
    buffer = space.buffer("2M")
    array = numpy.frombuffer(buffer, dtype=numpy.uint8)
    array[:] = 7
    before = space.stats()
    buffer.advise("dontneed")
    assert space.stats()["swap_outs"] > before["swap_outs"]
    buffer.prefetch(0, 64 << 10)
    buffer.advise("sequential")
    assert int(array[: 1 << 20].sum()) == 7 << 20
    buffer.discard(0, 8192)
    assert not array[:8192].any() and array[8192] == 7
    with pytest.raises(ValueError):
        buffer.advise("soon")
    with pytest.raises(ValueError):
        buffer.prefetch(0, 3 << 20)
    # No `as`: the exception's traceback would hold the buffer (`self` of discard) past the test.
    with pytest.raises(userswap.Error, match=r"multiples of the page size .*\(EINVAL\)"):
        buffer.discard(1, 4096)
    del array, buffer


def test_a_group_keeps_its_buffers_under_its_limit(space):
    group = space.group("jobs", memory_limit="256K")
    buffer = space.buffer("1M", group=group)
    numpy.frombuffer(buffer, dtype=numpy.uint8)[:] = 1
    stats = group.stats()
    assert stats["memory_peak"] <= 256 << 10 and stats["memory_limit"] == 256 << 10
    assert stats["swap_limit"] is None and stats["swap_outs"] > 0
    group.set_limits(memory_limit=None, swap_limit="8M")
    assert group.stats()["memory_limit"] is None and group.stats()["swap_limit"] == 8 << 20
    del buffer


def test_a_space_will_not_close_under_a_live_buffer(tmp_path):
    space = userswap.Space(memory="1M", swap_dir=tmp_path)
    array = numpy.frombuffer(space.buffer(8192), dtype=numpy.uint8)
    with pytest.raises(BufferError):
        space.close()
    del array
    space.close()
    space.close()
    with pytest.raises(ValueError):
        space.buffer(4096)


def test_a_space_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("USERSWAP_MEMORY", "lots")
    with pytest.raises(userswap.Error) as caught:
        userswap.Space.from_env()
    assert caught.value.name == "EENV" and "USERSWAP_MEMORY=lots" in caught.value.message
    monkeypatch.setenv("USERSWAP_MEMORY", "2M")
    monkeypatch.setenv("USERSWAP_SWAP_DIR", str(tmp_path))
    with userswap.Space.from_env() as space:
        assert space.stats()["memory"] == 2 << 20 and space.stats()["swap_total"] >= 6 << 20
        array = numpy.frombuffer(space.buffer("6M"), dtype=numpy.float64)
        array[:] = 0.5
        assert array.sum() == 0.5 * len(array)
        del array


def test_the_library_is_the_one_asked_for():
    wanted = os.environ.get("USERSWAP_LIBRARY")
    if wanted:
        assert userswap.library_path() == wanted
    assert userswap.Error(4, "x").name == "EIO"
