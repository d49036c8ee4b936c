import os

import pytest
import torch

# The test files that take longest, longest first. `make test` hands whole files to its workers
# (--dist loadfile) in collection order; these start first, so that no long file is left running
# alone at the end. pytest-xdist would otherwise hand out the files with the most tests first,
# which put the few but long DDP tests last. Refresh from `pytest --durations=0` when a file
# outgrows the last one here.
LONGEST_FIRST = [
    "test_resume.py",
    "test_registered.py",
    "test_inspect_cli.py",
    "test_distributed.py",
    "test_distributed_stops.py",
    "test_train_cli.py",
    "test_data_cli.py",
    "test_train_any_cli.py",
    "test_segmentation.py",
    "test_speed_options.py",
    "test_trainer_options.py",
    "test_build_cli.py",
    "test_export_cli.py",
]


def pytest_configure(config: pytest.Config) -> None:
    """Under pytest-xdist (one worker process per core), each worker computes on one thread: two
    workers of two OpenMP threads each on two cores wait on each other's spinning threads, and
    a small convolution takes 20 times as long. The command-line tests' subprocesses inherit
    the setting. The files are handed out in the order of ``LONGEST_FIRST``."""
    if hasattr(config.option, "loadscopereorder"):  # pytest-xdist's own order: most tests first
        config.option.loadscopereorder = False
    if os.environ.get("PYTEST_XDIST_WORKER"):
        os.environ["OMP_NUM_THREADS"] = "1"
        torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
