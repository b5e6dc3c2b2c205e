"""Fixtures shared by several test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models on a busy 2-core machine: one torch thread avoids OpenMP oversubscription, which
    made the tiny training runs of tests/test_report.py about 10x slower under load."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
