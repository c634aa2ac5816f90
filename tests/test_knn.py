"""pgan knn and pgan_cli.neighbors: exactness against an independent brute force, streaming,
approximate indexes with recall, output file, and clean errors."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
from conftest import assert_clean_error
from scipy.spatial.distance import cdist

from pgan_cli.errors import InputError, UsageError
from pgan_cli.neighbors import (VectorSource, knn, knn_batches, nearest_distance, recall_at_k,
                                resolve_knn_device)

SCIPY = {"l2": "euclidean", "cosine": "cosine", "linf": "chebyshev"}


def brute(q, r, k, metric, exclude_self=False):
    d = cdist(q.astype(np.float64), r.astype(np.float64), SCIPY[metric])
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, order, 1), order, d


def assert_matches_brute(res, q, r, k, metric, exclude_self=False):
    bd, bi, full = brute(q, r, k, metric, exclude_self)
    assert res.distances.shape == (len(q), k) and res.distances.dtype == np.float32
    assert res.indices.dtype == np.int64
    np.testing.assert_allclose(res.distances, bd, rtol=1e-4, atol=1e-6)
    # the returned rows really are at the returned distances (ties may swap rows, never distances)
    np.testing.assert_allclose(np.take_along_axis(full, res.indices, 1), bd, rtol=1e-4, atol=1e-6)
    if exclude_self:
        assert not (res.indices == np.arange(len(q))[:, None]).any()


@pytest.fixture(scope="module")
def sets():
    rng = np.random.default_rng(123)
    centres = rng.normal(size=(6, 24)) * 4
    ref = (centres[rng.integers(0, 6, 700)] + rng.normal(size=(700, 24))).astype(np.float32)
    ref += 300.0  # a large offset: float32 ||x||²+||y||²-2x·y would lose the small distances
    ref[5] = ref[17]  # exact duplicates
    ref[40] = ref[17]
    query = (ref[rng.integers(0, 700, 250)] + 0.05 * rng.normal(size=(250, 24))).astype(np.float32)
    return query, ref


@pytest.mark.parametrize("metric", ["l2", "cosine", "linf"])
@pytest.mark.parametrize("exclude_self", [False, True])
def test_exact_matches_brute_force(sets, metric, exclude_self):
    query, ref = sets
    q = ref if exclude_self else query
    res = knn(q, ref, 7, metric=metric, exclude_self=exclude_self, batch_size=97)
    assert res.exact and res.metric == metric
    assert_matches_brute(res, q, ref, 7, metric, exclude_self)


def test_exclude_self_keeps_duplicates(sets):
    _, ref = sets
    res = knn(ref, ref, 2, exclude_self=True)
    for row, others in ((17, {5, 40}), (5, {17, 40}), (40, {5, 17})):
        assert set(res.indices[row].tolist()) == others
        assert res.distances[row].tolist() == [0.0, 0.0]
    assert nearest_distance(ref, ref, exclude_self=True)[17] == 0.0
    assert (nearest_distance(ref[:10], ref) == 0).all()


def test_cosine_distances_are_one_minus_similarity(rng):
    a = rng.normal(size=(30, 5)).astype(np.float32)
    b = rng.normal(size=(40, 5)).astype(np.float32)
    res = knn(a, b, 40, metric="cosine")
    sim = (a @ b.T) / np.linalg.norm(a, axis=1)[:, None] / np.linalg.norm(b, axis=1)[None]
    np.testing.assert_allclose(res.distances, np.take_along_axis(1 - sim, res.indices, 1), atol=1e-6)
    assert (np.diff(res.distances, axis=1) >= 0).all()
    assert res.distances.max() > 1.0  # opposite directions: distances up to 2


def test_streaming_equals_one_batch_and_mmap(sets, tmp_path):
    query, ref = sets
    whole = knn(query, ref, 5)
    np.save(tmp_path / "q.npy", query)
    with VectorSource(tmp_path / "q.npy") as src:
        parts = list(knn_batches(src.batches(31), ref, 5))
    assert [s for s, _, _ in parts] == list(range(0, 250, 31))
    np.testing.assert_array_equal(np.concatenate([d for _, d, _ in parts]), whole.distances)
    np.testing.assert_array_equal(np.concatenate([i for _, _, i in parts]), whole.indices)


@pytest.mark.parametrize("index", ["ivf", "hnsw"])
def test_approximate_indexes_report_recall(sets, index):
    query, ref = sets
    res = knn(query, ref, 5, index=index, check_recall=True, nlist=8, nprobe=4)
    assert not res.exact and res.index == index
    assert 0.9 <= res.recall <= 1.0
    exact = knn(query, ref, 5)
    assert recall_at_k(res.distances, exact.distances) == pytest.approx(res.recall)
    assert recall_at_k(exact.distances, exact.distances) == 1.0
    # an IVF probing 1 of 8 cells must miss some neighbours: the check can fail
    if index == "ivf":
        poor = knn(query + 2.0, ref, 5, index="ivf", nlist=8, nprobe=1, check_recall=True)
        assert poor.recall < 1.0


def test_library_errors(sets):
    query, ref = sets
    with pytest.raises(InputError, match="different dimensions"):
        knn(query[:, :5], ref, 3)
    with pytest.raises(InputError, match="between 1 and"):
        knn(query, ref[:3], 4)
    with pytest.raises(InputError, match="NaN"):
        knn(np.full((2, 24), np.nan, np.float32), ref, 1)
    with pytest.raises(UsageError, match="linf"):
        knn(query, ref, 1, metric="linf", index="ivf")
    with pytest.raises(InputError, match="unknown metric"):
        knn(query, ref, 1, metric="manhattan")
    assert resolve_knn_device("auto") in ("cpu", "cuda:0")
    assert resolve_knn_device("cpu") == "cpu"


# ---- the command ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def npys(tmp_path_factory, sets):
    d = tmp_path_factory.mktemp("knn")
    query, ref = sets
    np.save(d / "q.npy", query)
    np.save(d / "r.npy", ref)
    return d


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_cli_writes_exact_neighbours(cli, npys, sets, metric):
    query, ref = sets
    out = npys / f"knn_{metric}.h5"
    r = cli("knn", npys / "q.npy", npys / "r.npy", "-k", "4", "--metric", metric, "-o", out, "--json",
            "--batch-size", "64", "--device", "cpu")
    assert r.exit_code == 0, r
    summary = json.loads(r.stdout)
    with h5py.File(out, "r") as f:
        dist, ind = f["distances"][:], f["indices"][:]
        attrs = dict(f.attrs)
    assert dist.dtype == np.float32 and ind.dtype == np.int64 and dist.shape == (250, 4)
    assert attrs["metric"] == metric and attrs["index"] == "flat" and bool(attrs["exact"]) and attrs["k"] == 4
    prov = json.loads(attrs["provenance"])
    assert [i["path"] for i in prov["inputs"]] == [str(npys / "q.npy"), str(npys / "r.npy")]
    bd, _, _ = brute(query, ref, 4, metric)
    np.testing.assert_allclose(dist, bd, rtol=1e-4, atol=1e-6)
    assert summary["n_query"] == 250 and summary["n_reference"] == 700 and summary["exact"] is True
    assert summary["nearest_distance"]["median"] == pytest.approx(float(np.median(bd[:, 0])), rel=1e-5)
    assert summary["kth_distance"]["max"] == pytest.approx(float(bd[:, 3].max()), rel=1e-5)


def test_cli_exclude_self_on_dataset_file(cli, digits8, tmp_path, shared_pass):
    out = tmp_path / "self.h5"
    r = cli("knn", digits8, digits8, "-k", "3", "--exclude-self", "-o", out, "--device", "cpu")
    assert r.exit_code == 0, r
    assert "exact" in r.stdout
    from pgan_cli.samples import load_vectors

    x = load_vectors(digits8)
    with h5py.File(out, "r") as f:
        dist, ind = f["distances"][:], f["indices"][:]
    bd, _, full = brute(x, x, 3, "l2", exclude_self=True)
    np.testing.assert_allclose(dist, bd, rtol=1e-4, atol=1e-6)
    assert not (ind == np.arange(len(x))[:, None]).any()
    # the symmetric self-search (flat, l2, CPU, from the cost model's dimension) gives what the
    # one-direction search gives
    want = knn(x, x, 3, exclude_self=True)
    np.testing.assert_allclose(dist, want.distances, rtol=1e-6, atol=1e-6)
    assert (ind == want.indices).mean() > 0.99


def test_cli_hnsw_check_recall(cli, npys):
    out = npys / "hnsw.h5"
    r = cli("knn", npys / "q.npy", npys / "r.npy", "-k", "5", "--index", "hnsw", "--check-recall",
            "-o", out, "--json")
    assert r.exit_code == 0, r
    s = json.loads(r.stdout)
    assert s["exact"] is False and s["index"] == "hnsw" and 0.9 <= s["recall"] <= 1.0
    with h5py.File(out, "r") as f:
        assert not bool(f.attrs["exact"]) and f.attrs["recall"] == pytest.approx(s["recall"])


def test_cli_errors_are_one_line(cli, npys, tmp_path, rng):
    out = tmp_path / "o.h5"
    np.save(tmp_path / "d5.npy", rng.normal(size=(10, 5)).astype(np.float32))
    np.save(tmp_path / "empty.npy", np.zeros((0, 24), np.float32))
    bad = rng.normal(size=(300, 24)).astype(np.float32)
    bad[123, 4] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    q, r_ = npys / "q.npy", npys / "r.npy"
    shuffled = np.load(r_)[::-1].copy()  # same shape as REF, other row order
    np.save(tmp_path / "shuffled.npy", shuffled)
    cases = [
        ((tmp_path / "d5.npy", r_), ("different dimensions", "24")),
        ((q, r_, "-k", "701"), ("k = 701",)),
        ((tmp_path / "empty.npy", r_), ("empty",)),
        ((tmp_path / "nan.npy", r_, "--batch-size", "100"), ("NaN", "row 123")),
        ((q, r_, "--metric", "manhattan"), ("manhattan",)),
        ((q, r_, "--metric", "linf", "--index", "hnsw"), ("linf",)),
        ((q, r_, "--index", "lsh"), ("lsh",)),
        ((q, r_, "--exclude-self"), ("exclude",)),
        ((tmp_path / "shuffled.npy", r_, "--exclude-self"), ("exclude", "differ")),
        ((q, r_, "--nprobe", "4"), ("--index ivf",)),
        ((q, r_, "--index", "ivf", "--nlist", "0"), ("--nlist",)),
        ((q, tmp_path / "missing.npy"), ("does not exist",)),
        ((q, r_, "--device", "cuda:all"), ("GPU",)) if resolve_knn_device("auto") == "cpu" else
        ((q, r_, "-k", "0"), ("k = 0",)),
    ]
    for args, needles in cases:
        r = cli("knn", *args, "-o", out)
        assert_clean_error(r, *needles)
        assert not out.exists() and not list(tmp_path.glob(".o.h5*"))


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_k_as_large_as_the_reference(sets, metric):
    """k = all references (the pairwise-ratio attack asks for this): the dense float64 path."""
    query, ref = sets
    res = knn(query[:60], ref[:150], 150, metric=metric)
    assert_matches_brute(res, query[:60], ref[:150], 150, metric)
    res = knn(ref[:150], ref[:150], 149, metric=metric, exclude_self=True)
    bd, _, _ = brute(ref[:150], ref[:150], 149, metric, exclude_self=True)
    np.testing.assert_allclose(res.distances, bd, rtol=1e-4, atol=1e-5)


@pytest.fixture(params=["shared pass, 1 worker", "shared pass, 3 workers", "separate searches"])
def shared_pass(request, monkeypatch):
    """Both sides of the cost model's choice (gemm.prefer_shared_pass): the shared pass at every
    dimension (on one worker, or on three, whose heaps are merged), or the separate per-core
    searches at every dimension."""
    from pgan_cli.neighbors import gemm, shared

    monkeypatch.setattr(gemm, "SHARED_PASS_MIN_DIM", 10 ** 9 if request.param == "separate searches" else 0)
    monkeypatch.setattr(shared, "WORKERS", 3 if "3 workers" in request.param else 1)
    return request.param


@pytest.mark.parametrize("block", [64, 4096])
def test_pair_and_self_searches_equal_two_independent_searches(sets, block, shared_pass):
    """knn_pair gives both directions from one GEMM pass and knn_self computes each distance once
    (or, below the cost model's dimension, both make separate searches); both must equal plain
    knn (and the brute force), duplicates and block edges included."""
    from pgan_cli.neighbors import knn_pair, knn_self

    query, ref = sets
    ab, ba = knn_pair(query, ref, 7, 5, block=block)
    for got, q, r, k in ((ab, query, ref, 7), (ba, ref, query, 5)):
        assert_matches_brute(got, q, r, k, "l2")
        want = knn(q, r, k)
        np.testing.assert_allclose(got.distances, want.distances, rtol=1e-6, atol=1e-6)
        assert (got.indices == want.indices).mean() > 0.99  # only exact ties may swap
    own = knn_self(ref, 4, block=block)
    assert_matches_brute(own, ref, ref, 4, "l2", exclude_self=True)
    for row, others in ((17, {5, 40}), (5, {17, 40}), (40, {5, 17})):  # duplicates stay neighbours
        assert set(own.indices[row, :2].tolist()) == others and own.distances[row, :2].tolist() == [0.0, 0.0]
    tiny = knn_self(ref[:3], 2)  # k = every other row
    assert sorted(tiny.indices[0].tolist()) == [1, 2]


def test_neighbor_cache_shares_pair_and_self_searches(sets, shared_pass):
    from pgan_cli.attacks.cache import NeighborCache

    query, ref = sets
    cache = NeighborCache(default_k=6)
    cache.pair(query, ref)
    a = cache.knn(query, ref, 3)
    b = cache.knn(ref, query, 2)  # from the same pass
    c = cache.knn(ref, ref, 1, exclude_self=True)
    assert cache.searches == 2
    np.testing.assert_allclose(a.distances, knn(query, ref, 3).distances, rtol=1e-6)
    np.testing.assert_allclose(b.distances, knn(ref, query, 2).distances, rtol=1e-6)
    np.testing.assert_allclose(c.distances, knn(ref, ref, 1, exclude_self=True).distances, rtol=1e-6)


@pytest.mark.parametrize("na,nb,d,k,block", [(1, 9, 3, 9, 4), (33, 32, 5, 31, 8), (64, 17, 2, 1, 16),
                                             (50, 50, 7, 49, 7)])
def test_shared_passes_random_shapes(na, nb, d, k, block, shared_pass):
    """Block edges, k up to every row, one-row sets, duplicates: both shared searches = brute force."""
    from pgan_cli.neighbors import knn_pair, knn_self

    rng = np.random.default_rng(na * 100 + nb)
    a = rng.integers(-3, 4, size=(na, d)).astype(np.float32)  # small integers: many exact ties
    b = rng.integers(-3, 4, size=(nb, d)).astype(np.float32)
    k_ab, k_ba = min(k, nb), min(k, na)
    ab, ba = knn_pair(a, b, k_ab, k_ba, block=block)
    assert_matches_brute(ab, a, b, k_ab, "l2")
    assert_matches_brute(ba, b, a, k_ba, "l2")
    if na > 1:
        own = knn_self(a, min(k, na - 1), block=block)
        assert_matches_brute(own, a, a, min(k, na - 1), "l2", exclude_self=True)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_shared_pass_ties_across_workers(workers, monkeypatch):
    """The shared pass's workers each keep their own heaps, merged per row block: 11 copies of
    one row spread over tiles of different workers still come back lower row first, in both
    directions and in the self-search; a caller that stops early stops the workers."""
    from pgan_cli.neighbors import gemm, shared

    monkeypatch.setattr(gemm, "SHARED_PASS_MIN_DIM", 0)
    monkeypatch.setattr(shared, "WORKERS", workers)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 6)).astype(np.float32)
    copies = [5, 37, 70, 71, 120, 160, 161, 200, 240, 280, 299]
    x[copies] = x[5]
    y = np.concatenate([x[:40], rng.standard_normal((60, 6)).astype(np.float32)])  # y[5] = x[5] too
    own = shared.knn_self(x, 6, block=16)
    for row in copies:
        others = [c for c in copies if c != row]
        assert own.indices[row].tolist() == others[:6] and not own.distances[row].any()
    ab, ba = shared.knn_pair(x, y, 3, 8, block=16)
    assert ab.indices[70][:2].tolist() == [5, 37] and not ab.distances[70][:2].any()  # y's two copies
    assert ba.indices[5].tolist() == copies[:8]
    assert_matches_brute(ab, x, y, 3, "l2")
    assert_matches_brute(ba, y, x, 8, "l2")
    batches = shared.knn_self_batches(x, 3, block=16)
    first = next(batches)
    batches.close()  # the workers end; nothing hangs
    assert first[0] == 0 and first[1].shape == (16, 3)


def _brute_force(q, ref, k, metric, exclude_self=False):
    """Every distance in float64, sorted by (distance, reference row): the documented tie rule."""
    q64, r64 = q.astype(np.float64), ref.astype(np.float64)
    if metric == "l2":
        d = np.sqrt(((q64[:, None, :] - r64[None, :, :]) ** 2).sum(-1))
    else:
        qn = q64 / np.linalg.norm(q64, axis=1, keepdims=True)
        rn = r64 / np.linalg.norm(r64, axis=1, keepdims=True)
        d = 1 - qn @ rn.T
    if exclude_self:
        d[np.arange(len(q)), np.arange(len(q))] = np.inf
    cols = np.arange(d.shape[1])
    order = np.array([np.lexsort((cols, row))[:k] for row in d])
    return np.take_along_axis(d, order, 1), order, d


@pytest.mark.parametrize("selection", ["fused", "heap"])
@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_gemm_engine_is_exact_with_ties(metric, selection, monkeypatch):
    """The blocked GEMM engine (pgan_cli.neighbors.gemm) finds the exact neighbours with the
    documented tie rule (lower reference row first) where faiss.knn's heap does not: 11 duplicate
    rows, more than the candidates fetched; reference chunks merged, several workers, exclude_self."""
    import torch

    from pgan_cli.neighbors import gemm, search
    from pgan_cli.neighbors.search import NeighborIndex, knn

    rng = np.random.default_rng(3)
    ref = rng.standard_normal((700, 24)).astype(np.float32)
    ref[100:110] = ref[5]  # exact ties
    q = np.concatenate([rng.standard_normal((300, 24)).astype(np.float32), ref[:40]])
    monkeypatch.setattr(gemm, "REF_CHUNK", 128)  # several reference chunks
    monkeypatch.setattr(gemm, "CENTRE_BYTES", 4 * 24 * 128)  # centred on the fly in chunks too
    monkeypatch.setattr(gemm, "HEAP_MIN_ROWS", 16)
    monkeypatch.setattr(gemm, "HEAP_BLOCK_BYTES", 16 * 4 * 128)  # many query blocks
    monkeypatch.setattr(gemm, "FUSED_QUERY_ROWS", 16)  # per-core workers: many query blocks,
    monkeypatch.setattr(gemm, "FUSED_REF_ROWS", 100)   # reference slices that split the 11 copies
    monkeypatch.setattr(gemm, "FUSED_MIN_ROWS", 8)
    monkeypatch.setattr(gemm, "SELECTION", selection)
    monkeypatch.setattr(search, "CPU_ENGINE", "gemm")
    from pgan_cli import devices

    monkeypatch.setattr(gemm, "cpu_threads", lambda: 2)
    monkeypatch.setattr(devices, "cpu_threads", lambda: 2)
    old = torch.get_num_threads()
    torch.set_num_threads(2)  # two workers
    try:
        for k, ex in ((1, False), (7, False), (5, True)):
            qq = ref if ex else q
            got = knn(qq, ref, k, metric=metric, exclude_self=ex)
            want_d, want_i, full = _brute_force(qq, ref, k, metric, ex)
            np.testing.assert_allclose(got.distances, want_d, rtol=1e-4, atol=1e-5)
            # a different row only where float32 cannot tell two distances apart
            rows, cols = np.nonzero(got.indices != want_i)
            assert np.allclose(full[rows, got.indices[rows, cols]], want_d[rows, cols], rtol=1e-5, atol=1e-6)
            assert len(rows) <= 2
            # the 11 copies of row 5: the lower rows first, however many were fetched
            dup = 5 if ex else 305
            copies = [5, *range(100, 110)]
            if ex:
                copies.remove(5)
            assert list(got.indices[dup][:min(k, len(copies))]) == copies[:k]
        nidx = NeighborIndex(ref, metric)
        assert nidx.engine == "gemm" and nidx._gemm.threads == 2
        nidx.search(q, 5)
        assert nidx._gemm.selection == selection
    finally:
        torch.set_num_threads(old)


def test_shared_pass_only_from_the_measured_dimension(monkeypatch):
    """The cost model: a shared pass from SHARED_PASS_MIN_DIM dimensions on, separate per-core
    searches below (where they were faster); knn_self/knn_pair dispatch on it."""
    from pgan_cli.neighbors import gemm, shared

    assert gemm.prefer_shared_pass(gemm.SHARED_PASS_MIN_DIM) and not gemm.prefer_shared_pass(gemm.SHARED_PASS_MIN_DIM - 1)
    calls = []
    monkeypatch.setattr(shared, "knn", lambda *a, **kw: calls.append(kw) or "separate")
    x = np.random.default_rng(0).standard_normal((40, 8)).astype(np.float32)
    assert shared.knn_self(x, 3) == "separate" and calls == [{"exclude_self": True}]
    assert shared.knn_pair(x, x[:20], 3) == ("separate", "separate")
    monkeypatch.setattr(gemm, "SHARED_PASS_MIN_DIM", 8)
    assert shared.knn_self(x, 3).indices.shape == (40, 3) and len(calls) == 3


def test_engine_choice_and_no_copy_of_the_reference(monkeypatch):
    """The cost model gives every core a block of queries (fused) or, for a batch too small for
    that, runs one multi-threaded product (heap); the L2 reference is centred slice by slice, not
    copied, and the result equals the centred copy's (FAISS's index) to float32 rounding."""
    from pgan_cli.neighbors import gemm
    from pgan_cli.neighbors.search import NeighborIndex, knn

    assert gemm.choose_selection(2 * gemm.FUSED_MIN_ROWS, 2) == "fused"
    assert gemm.choose_selection(2 * gemm.FUSED_MIN_ROWS - 1, 2) == "heap"
    assert gemm.choose_selection(gemm.FUSED_MIN_ROWS, 1) == "fused"
    rng = np.random.default_rng(5)
    ref = (rng.standard_normal((3000, 40)) + 500).astype(np.float32)  # a large offset: centring matters
    q = (rng.standard_normal((400, 40)) + 500).astype(np.float32)
    nidx = NeighborIndex(ref, "l2")
    assert nidx.engine == "gemm" and not nidx.centred and np.shares_memory(nidx.refine_ref, ref)
    for n_q in (400, 3):  # fused, then heap
        got = knn(q[:n_q], ref, 4)
        want = knn(q[:n_q], ref, 4, engine="faiss")  # FAISS on a centred copy
        np.testing.assert_array_equal(got.indices, want.indices)
        np.testing.assert_allclose(got.distances, want.distances, rtol=1e-6)


def test_reference_is_read_straight_into_its_array(tmp_path):
    """load_reference reads native float32 NPY rows into the index's array (no temporary) with the
    same values and checks as the batch reader; other dtypes and byte orders take the copy path."""
    from pgan_cli.errors import FormatError
    from pgan_cli.neighbors import load_reference

    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 7)).astype(np.float32)
    for name, arr in (("f4", x), ("be", x.astype(">f4")), ("f8", x.astype(np.float64))):
        np.save(tmp_path / f"{name}.npy", arr)
        np.testing.assert_array_equal(load_reference(tmp_path / f"{name}.npy"), x.astype(np.float64).astype(np.float32))
    bad = x.copy()
    bad[37, 2] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    with pytest.raises(FormatError, match="NaN or Inf \\(first at row 37\\)"):
        load_reference(tmp_path / "nan.npy")
