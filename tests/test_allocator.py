"""The trainer keeps freed memory for reuse on glibc: a step's large buffers stop faulting."""

from __future__ import annotations

import platform
import resource
import subprocess
import sys

import pytest

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# a fresh process: the thresholds are process-wide and this one may have set them already
PROBE = """
import resource, sys, torch
from ganzoo.training.allocator import keep_freed_memory
def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(10):
        torch.ones(48 * 2**20 // 4).sum()  # 48 MiB, above glibc's largest default threshold
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
plain = faults()
assert keep_freed_memory() and keep_freed_memory()  # once, then a no-op
faults()
print(plain, faults())
"""


@pytest.mark.skipif(not GLIBC, reason="glibc's mallopt is Linux/glibc only")
def test_large_buffers_are_reused_instead_of_faulted_in_again() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    ).stdout
    plain, kept = (int(v) for v in out.split())
    pages = 10 * 48 * 2**20 // resource.getpagesize()
    assert plain > pages // 2, (plain, pages)  # every buffer faulted its pages in
    # reused: at most the first buffer's pages (seen: ~30 faults here, one buffer's in a fresh
    # CI clone), not every buffer's
    assert kept < plain // 4, (kept, plain)


def test_the_trainer_asks_for_it_on_the_cpu(tiny_data, tmp_path, monkeypatch) -> None:
    from conftest import tiny_recipe

    import ganzoo.training.trainer as trainer_module

    calls = []
    monkeypatch.setattr(trainer_module, "keep_freed_memory", lambda: calls.append(1))
    trainer_module.Trainer(tiny_recipe(tiny_data), tmp_path / "run", progress=False)
    assert calls == [1]
