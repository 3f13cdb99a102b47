import os
import sys

if os.environ.get("PYTEST_XDIST_WORKER"):
    # parallel workers (make test runs two): one thread each, so that the workers' BLAS and
    # OpenMP threads do not contend for the same cores. Set before torch and numpy load their
    # thread pools; the processes a test starts inherit it, so a model saved here and loaded
    # there computes with the same threads (bit-identical).
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[_name] = "1"

import pytest  # noqa: E402
import torch  # noqa: E402

os.environ.setdefault("MPLBACKEND", "Agg")

if os.environ.get("PYTEST_XDIST_WORKER"):
    import threadpoolctl

    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(1)  # pools a plugin loaded before this file, if any

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(autouse=True)
def _close_figures():
    """Close every matplotlib figure a test leaves open: a worker runs many tests in one
    process, and a test that counts or checks the open figures must see only its own."""
    yield
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is not None:
        plt.close("all")


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """The same test on CPU and, where a GPU is present, on CUDA."""
    if request.param == "cuda" and not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    return torch.device(request.param)
