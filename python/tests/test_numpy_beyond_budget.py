"""A NumPy array 8× the RAM budget: fill, sum, sort and update give the same results as the same
computation on an ordinary array, and the process's memory stays within budget × 1.1 + 64 MiB.

Each computation runs in a process of its own (numpy_workload.py), so that the ordinary array's
memory does not count against the space's. USERSWAP_PYTEST_BUDGET sets the budget (8M by
default: 64 MiB of float64 data, a sort of 8 M elements; docs/C-AND-PYTHON.md has the figures
of larger budgets)."""

import json
import os
import subprocess
import sys

import userswap

HERE = os.path.dirname(os.path.abspath(__file__))
BUDGET = userswap.parse_size(os.environ.get("USERSWAP_PYTEST_BUDGET", "8M"))
ELEMENTS = 8 * BUDGET // 8          # 8 × the budget in float64
SEED = 20261206
MIB = 1 << 20


def run(mode):
    out = subprocess.run([sys.executable, os.path.join(HERE, "numpy_workload.py"), mode, str(BUDGET), str(ELEMENTS),
                          str(SEED)], check=True, capture_output=True, text=True, timeout=900)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_an_array_eight_times_the_budget_computes_as_in_ram_within_the_budget():
    swapped = run("userswap")
    in_ram = run("ram")
    print("userswap: %.1f s, peak Pss %.1f MiB (anonymous %.1f, files %.1f, budget's pages %.1f; at start %.1f MiB, "
          "%d samples), VmHWM %.1f MiB; in RAM %.1f s"
          % (swapped["seconds"], swapped["pss_peak_kib"] / 1024, swapped["pss_peak_anon_kib"] / 1024,
             swapped["pss_peak_file_kib"] / 1024, swapped["pss_peak_shmem_kib"] / 1024,
             swapped["pss_before_kib"] / 1024, swapped["pss_samples"], swapped["vm_hwm_kib"] / 1024,
             in_ram["seconds"]))
    print("stats:", swapped["stats"])
    for key in ("sum", "max_index", "sorted_digest", "median", "updated_sum", "updated_digest"):
        assert swapped[key] == in_ram[key], key
    stats = swapped["stats"]
    assert stats["swap_outs"] > ELEMENTS * 8 // 4096, "the data went through swap"
    assert stats["swap_ins"] > 0 and stats["resident"] <= BUDGET
    # Memory in RAM with each page counted once (Pss): the budget's pages are mapped twice in the
    # process (the library's view and the array's), so RSS and VmHWM count them twice.
    limit_kib = (BUDGET * 1.1 + 64 * MIB) / 1024
    assert swapped["pss_peak_kib"] <= limit_kib, "peak %d KiB over %d KiB" % (swapped["pss_peak_kib"], limit_kib)
