"""The NumPy workload of test_numpy_beyond_budget.py, run in a process of its own so that its
memory is its own: `python numpy_workload.py ram|userswap BUDGET_BYTES ELEMENTS SEED`. Prints
one JSON line: the results, and for userswap the memory peaks."""

import hashlib
import json
import sys
import threading
import time

import numpy


def fill(a, seed):
    """Deterministic values, generated a chunk at a time (no temporary the size of the array)."""
    rng = numpy.random.default_rng(seed)
    chunk = 1 << 20
    for start in range(0, len(a), chunk):
        rng.random(out=a[start:start + chunk])


def digest(a):
    """SHA-256 of the array's bytes, 512 KiB at a time."""
    h = hashlib.sha256()
    chunk = 1 << 16
    for start in range(0, len(a), chunk):
        h.update(a[start:start + chunk].tobytes())
    return h.hexdigest()


def workload(a, seed):
    results = {}
    started = time.monotonic()
    fill(a, seed)
    results["sum"] = float(a.sum())
    results["max_index"] = int(a.argmax())
    a.sort()
    results["sorted_digest"] = digest(a)
    results["median"] = float(a[len(a) // 2])
    a *= 2.0
    a -= 1.0
    results["updated_sum"] = float(a.sum())
    results["updated_digest"] = digest(a)
    results["seconds"] = time.monotonic() - started
    return results


def proportional_kib():
    """The process's memory in RAM, each page counted once (Pss: a page of the budget is mapped
    twice, in the library's view and in the program's, and RSS counts it twice), in KiB: the
    total, then anonymous, file and shared-memory parts."""
    values = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name in ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem"):
                values[name] = int(rest.split()[0])
    return [values.get(name, 0) for name in ("Pss", "Pss_Anon", "Pss_File", "Pss_Shmem")]


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


class PeakSampler(threading.Thread):
    """The peak of Pss, sampled every 2 ms (the kernel keeps a peak of RSS only)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak = [0, 0, 0, 0]
        self.samples = 0
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.sample()
            time.sleep(0.002)

    def sample(self):
        now = proportional_kib()
        if now[0] > self.peak[0]:
            self.peak = now
        self.samples += 1

    def stop(self):
        self.done.set()
        self.join()
        self.sample()


def main():
    mode, budget, elements, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if mode == "ram":
        print(json.dumps(workload(numpy.empty(elements, dtype=numpy.float64), seed)))
        return
    import userswap

    before = proportional_kib()
    sampler = PeakSampler()
    sampler.start()
    space = userswap.Space(memory=budget)
    a = numpy.frombuffer(space.buffer(elements * 8), dtype=numpy.float64)
    results = workload(a, seed)
    results["stats"] = space.stats()
    sampler.stop()
    results["pss_before_kib"] = before[0]
    results["pss_peak_kib"], results["pss_peak_anon_kib"], results["pss_peak_file_kib"], results["pss_peak_shmem_kib"] = sampler.peak
    results["pss_samples"] = sampler.samples
    results["vm_hwm_kib"] = status_kib("VmHWM")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
