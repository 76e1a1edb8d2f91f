"""Test doubles shipped as real code, for inferwatch's tests and for users' own.

- :class:`FakeClock`: time that moves only when told to.
- :class:`FakeNVML` and :class:`FakeGPU`: an NVML stand-in for the GPU collector on
  machines without a GPU (values are live: change a ``FakeGPU`` field and the next
  collection reads it).
- :class:`CapturingNotifier`: a notifier that keeps what it is sent and fails when told
  to; :class:`WebhookReceiver`: a real loopback HTTP server that receives webhooks
  (Alertmanager's payload), to test routing and delivery end to end.
"""

from inferwatch.testing.clock import FakeClock
from inferwatch.testing.notify import CapturingNotifier, WebhookReceiver
from inferwatch.testing.nvml import FakeGPU, FakeNVML

__all__ = ["CapturingNotifier", "FakeClock", "FakeGPU", "FakeNVML", "WebhookReceiver"]
