"""Shared fixtures for the unit tests."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread for a test module, then restore the previous thread count.

    The models in these tests are tiny, so intra-op threads add synchronization and no speed.
    On a loaded two-core machine, 500 training steps of a width-6 model took about 7 s of CPU
    time with two threads and 0.3 s with one.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
