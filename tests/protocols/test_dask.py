"""explain_pairs on a real Dask cluster of worker processes (LocalCluster): same bytes as in-process,
and a run whose driver or worker is killed mid-way resumes to every pair exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import fxplain
from fxplain import datasets

distributed = pytest.importorskip("distributed", reason="the test extra installs dask[distributed]")

PARAMS = {"method": "corrrise", "n_masks": 16, "seed": 5}
CHUNK = 2


@pytest.fixture(scope="module")
def pairs():
    made = fxplain.make_pairs(datasets.johns_dir(), impostors=40, seed=1)
    return tuple([p for p in made if p.same][:10] + [p for p in made if p.same is False][:10])


@pytest.fixture(scope="module")
def serial(model, pairs, tmp_path_factory):
    store = tmp_path_factory.mktemp("serial") / "run.zarr"
    return fxplain.explain_pairs(model, pairs, store=store, chunk_size=CHUNK, show_progress=False, **PARAMS)


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, distributed.Client(cluster) as c:
        yield c


def _committed(store) -> int:
    """Chunks whose rows are committed."""
    return len(list((store / "rows").glob("chunk-*.parquet"))) if (store / "rows").exists() else 0


def _same_as_serial(results, serial) -> None:
    assert len(results) == len(serial) == results.run.n_pairs
    table = results.table
    assert list(table["pair_id"]) == list(range(len(serial)))   # every pair exactly once
    assert _committed(Path(results.run.root)) == results.run.n_chunks
    pd.testing.assert_frame_equal(table.drop(columns="seconds"), serial.table.drop(columns="seconds"))
    for k in range(len(serial)):
        mine, theirs = results[k], serial[k]
        assert mine.similarity.tobytes() == theirs.similarity.tobytes()
        assert mine.dissimilarity.tobytes() == theirs.dissimilarity.tobytes()


def test_two_workers_give_the_serial_bytes(model, pairs, serial, client, tmp_path):
    store = tmp_path / "run.zarr"
    results = fxplain.explain_pairs(model, pairs, store=store, chunk_size=CHUNK, client=client, show_progress=False,
                                    **PARAMS)
    _same_as_serial(results, serial)
    # each worker process loaded the model once, from the store, and ran with one core thread
    loaded = client.run(lambda: len(__import__("fxplain.protocols.runner", fromlist=["x"])._worker_objects))
    assert sum(loaded.values()) >= 1 and all(v <= 1 for v in loaded.values())
    assert (store / "model.fxn").is_file()
    # a rerun from the complete store computes nothing
    started = time.monotonic()
    again = fxplain.explain_pairs(model, pairs, store=store, chunk_size=CHUNK, client=client, show_progress=False,
                                  **PARAMS)
    assert len(again) == len(pairs) and time.monotonic() - started < 60


def test_a_killed_worker_has_its_chunk_redone(model, pairs, serial, client, tmp_path):
    store = tmp_path / "run.zarr"
    outcome = {}

    def run():
        try:
            outcome["results"] = fxplain.explain_pairs(model, pairs, store=store, chunk_size=CHUNK, client=client,
                                                       show_progress=False, **PARAMS)
        except Exception as exc:  # noqa: BLE001 - reported below
            outcome["error"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 300
    while _committed(store) == 0:
        assert time.monotonic() < deadline, "no chunk committed in 5 minutes"
        time.sleep(0.2)
    pids = client.run(os.getpid)
    victim = min(pids.values())
    os.kill(victim, signal.SIGKILL)        # mid-run: the nanny starts a new worker, Dask reschedules its chunk
    thread.join(600)
    assert not thread.is_alive()
    assert "error" not in outcome, outcome.get("error")
    assert victim not in client.run(os.getpid).values()
    _same_as_serial(outcome["results"], serial)


def test_a_killed_driver_resumes(model, pairs, serial, tmp_path):
    listing = tmp_path / "pairs.csv"
    listing.write_text("a,b,same\n" + "".join(f"{p.a},{p.b},{int(p.same)}\n" for p in pairs))
    store = tmp_path / "run.zarr"
    command = [sys.executable, "-m", "fxplain", "explain-pairs", str(listing), "-o", str(store), "--workers", "2",
               "--method", "corrrise", "--n-masks", "16", "--seed", "5", "--chunk-size", str(CHUNK), "--quiet"]
    log = tmp_path / "driver.log"
    with open(log, "wb") as output:
        driver = subprocess.Popen(command, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    try:
        while _committed(store) < 2:
            assert driver.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "no chunk committed in 5 minutes"
            time.sleep(0.2)
    finally:
        os.killpg(driver.pid, signal.SIGKILL)   # the driver and its cluster's processes, mid-run
        driver.wait()
    done = _committed(store)
    assert 2 <= done < len(pairs) // CHUNK, "the driver was killed after the run had finished"
    assert len(fxplain.open_results(store)) == 2 * done
    # resumed in-process (the store does not care who finishes it)
    results = fxplain.explain_pairs(model, fxplain.read_pairs(listing), store=store, chunk_size=CHUNK,
                                    show_progress=False, **PARAMS)
    _same_as_serial(results, serial)
    shown = subprocess.run([sys.executable, "-m", "fxplain", "show", str(store)], capture_output=True, text=True,
                           check=True)
    assert "20 of 20 pairs done" in shown.stdout


def test_thread_setting_is_per_calling_thread():
    before = fxplain._core.get_num_threads()
    seen = {}

    def other():
        fxplain._core.set_num_threads(1)
        seen["inside"] = fxplain._core.get_num_threads()

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert seen["inside"] == 1 and fxplain._core.get_num_threads() == before
    with pytest.raises(fxplain.InvalidInputError):
        fxplain._core.set_num_threads(0)
    np.testing.assert_equal(before >= 1, True)


def test_reconstruction_on_workers_uses_the_drivers_decoder(model, pairs, client, default_decoder, tmp_path):
    """The decoder travels in the store like the model: workers never train their own default decoder.

    oneDNN chooses some kernels of the decoder's large batches by the thread count at the time a plan is built
    (the last bits of the maps can differ between 1 and 2 threads), so the reference here is an in-process run
    with one thread, like the workers', on freshly loaded model and decoder (fresh plans)."""
    on_dask = fxplain.explain_pairs(model, pairs[:3], method="reconstruction", store=tmp_path / "dask.zarr",
                                    client=client, chunk_size=1, show_progress=False)
    assert (tmp_path / "dask.zarr" / "decoder.fxd").is_file()
    reference = {}

    def one_thread():
        fxplain._core.set_num_threads(1)
        reference["rs"] = fxplain.explain_pairs(fxplain.load_model("dlib"), pairs[:3], method="reconstruction",
                                                decoder=str(tmp_path / "dask.zarr" / "decoder.fxd"),
                                                store=tmp_path / "serial.zarr", show_progress=False)

    thread = threading.Thread(target=one_thread)
    thread.start()
    thread.join()
    for k in range(3):
        assert on_dask[k].evidence.tobytes() == reference["rs"][k].evidence.tobytes()
        np.testing.assert_allclose(on_dask[k].evidence, fxplain.open_results(tmp_path / "serial.zarr")[k].evidence)
