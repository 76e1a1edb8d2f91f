"""Test doubles shipped as real code, for inferwatch's tests and for users' own.

- :class:`FakeClock`: time that moves only when told to.
- :class:`FakeNVML` and :class:`FakeGPU`: an NVML stand-in for the GPU collector on
  machines without a GPU (values are live: change a ``FakeGPU`` field and the next
  collection reads it).
"""

from inferwatch.testing.clock import FakeClock
from inferwatch.testing.nvml import FakeGPU, FakeNVML

__all__ = ["FakeClock", "FakeGPU", "FakeNVML"]
