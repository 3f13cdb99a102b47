"""Screening on a real dask.distributed LocalCluster: same answer as the local call, lost workers."""

import numpy as np
import pandas as pd
import pytest

distributed = pytest.importorskip("distributed")
dd = pytest.importorskip("dask.dataframe")

from mfgp.candidates import enumerate_compositions  # noqa: E402
from mfgp.screen import screen  # noqa: E402
from tests.ladders import small_ladder  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=40)  # fmt: skip
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


@pytest.fixture(scope="module")
def fitted():
    from mfgp.estimators import MultiFidelityRegressor

    return MultiFidelityRegressor("ar1", max_iter=15, progress=False).fit(small_ladder(40, seed=1))


@pytest.fixture(scope="module")
def formulas():
    chunks = enumerate_compositions(["Li", "Na", "Mg", "O", "S", "Cl"], n_elements=(2, 3),
                                    max_atoms_per_formula=6, charge_balanced=True)  # fmt: skip
    return [f for c in chunks for f in c]


def _same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert a.formula.tolist() == b.formula.tolist()
    np.testing.assert_allclose(a.score, b.score, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(a["mean"], b["mean"], rtol=1e-9, atol=1e-12)


def test_cluster_gives_the_local_answer(fitted, formulas, client, tmp_path):
    local = screen(fitted, formulas, score="window", window=(1.1, 1.7), top_k=12,
                   batch_size=16, progress=False)  # fmt: skip
    remote = screen(fitted, formulas, score="window", window=(1.1, 1.7), top_k=12,
                    batch_size=16, progress=False, client=client)  # fmt: skip
    _same(local, remote)
    # a Dask DataFrame of formulas, scored where its partitions live
    frame = dd.from_pandas(pd.DataFrame({"formula": formulas}), npartitions=3)
    parts = screen(fitted, frame, score="window", window=(1.1, 1.7), top_k=12, batch_size=16,
                   progress=False, client=client)  # fmt: skip
    _same(local, parts)
    # every row back to the client for the Parquet file
    out = tmp_path / "all.parquet"
    every = screen(fitted, formulas, score="mean", top_k=5, batch_size=32, progress=False,
                   client=client, output=out)  # fmt: skip
    rows = pd.read_parquet(out).sort_values("order")
    assert rows.formula.tolist() == formulas
    _same(every, screen(fitted, formulas, score="mean", top_k=5, progress=False))


def test_a_killed_worker_loses_nothing(fitted, formulas, client, tmp_path):
    marker = tmp_path / "killed"

    def window_or_die(pred):
        import os

        if not marker.exists():  # the first worker to score a batch dies, once
            marker.write_text(str(os.getpid()))
            os._exit(1)
        return pred.probability_between(1.1, 1.7)

    local = screen(fitted, formulas, score="window", window=(1.1, 1.7), top_k=10,
                   batch_size=20, progress=False)  # fmt: skip
    remote = screen(fitted, formulas, score=window_or_die, top_k=10, batch_size=20,
                    progress=False, client=client)  # fmt: skip
    assert marker.exists()  # a worker did die
    _same(local, remote)
