"""Reuse of large freed blocks during a screen (mfgp._alloc; glibc only)."""

import json
import subprocess
import sys

import pytest
import torch

import mfgp._alloc as alloc
from mfgp._alloc import _glibc, reuse_large_blocks

#: a fresh process allocates, touches and frees a 64 MiB block 10 times; minor page faults of each
SCRIPT = """
import json, resource, sys, torch
from mfgp._alloc import reuse_large_blocks

def faults():
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(8 << 20, dtype=torch.float64)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

if sys.argv[1] == "on":
    with reuse_large_blocks():
        with reuse_large_blocks():  # nested: the outer one restores
            out = [faults() for _ in range(10)]
else:
    out = [faults() for _ in range(10)]
print(json.dumps(out))
"""


def _faults(mode: str) -> list[int]:
    proc = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                          check=True)  # fmt: skip
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(_glibc() is None, reason="glibc's allocator only")
def test_large_blocks_are_reused_inside_the_block():
    """Without it glibc maps every 64 MiB block afresh (16,384 page faults each time); inside
    it a loop's later blocks reuse the freed ones (issue 35: page faults were about a quarter
    of a hurdle screen's time)."""
    off, on = _faults("off"), _faults("on")
    assert min(off) > 8000, off
    assert max(on[-3:]) < 1000, on


def test_reuse_large_blocks_nests_and_is_harmless_without_glibc(monkeypatch):
    with reuse_large_blocks():
        with reuse_large_blocks():
            assert alloc._depth >= 2 or alloc._glibc() is None
    assert alloc._depth == 0
    monkeypatch.setattr(alloc, "_libc", None)
    with reuse_large_blocks():
        assert torch.ones(3).sum() == 3
