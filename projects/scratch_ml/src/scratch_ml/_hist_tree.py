"""The histogram tree grower behind :mod:`scratch_ml.boosting` (private).

A boosting tree is fitted to gradients and hessians, not to targets. Each node keeps, per
feature and bin, the sums of the gradients, of the hessians and the sample count of its
samples: its *histogram*. Every candidate split "bin <= b goes left" is scored at once from
cumulative sums of that histogram with the second-order gain

    G_L^2 / (H_L + l2) + G_R^2 / (H_R + l2) - G^2 / (H + l2),

the decrease of the loss's second-order Taylor expansion when each side takes its own
Newton step. Nodes are split best-first (the largest gain among all current leaves next),
as in LightGBM and scikit-learn's HistGradientBoosting, until ``max_leaf_nodes`` leaves,
``max_depth`` or no split with positive gain is left.

What makes it fast in plain numpy (ADR 0003):

- histograms are *bucketed*: each feature owns its bin count rounded up to a power of two,
  not 256 entries, so one-hot columns cost two entries and the split search scans a fraction
  of ``n_features x 256``;
- they are built with one ``np.bincount`` per feature over the node's rows, or, for small
  nodes, one per statistic over all features at once; never a loop over samples or
  thresholds. When most values sit in their feature's most common bin (one-hot data), only
  the other values are summed and the common bin is the node's total minus the rest;
- after a split only the *smaller* child's histogram is built; the larger child's is the
  parent's minus the smaller one's (the subtraction trick), which at least halves the work;
- the root's count histogram is computed once per fit, and scratch buffers are reused across
  nodes (:class:`Workspace`) instead of allocating fresh arrays in the hot loops;
- on large nodes, threads build the histograms of different features at the same time
  (``bincount`` releases the GIL for its main loop), like scikit-learn's OpenMP threads.

Leaf *values* are not computed here: the grower returns, for every leaf, its gradient and
hessian sums and the rows that reached it, and :mod:`scratch_ml.boosting` turns them into
the shrunken Newton step.
"""

from __future__ import annotations

import heapq
import os
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

#: scikit-learn's ``min_hessian_to_split``: a side whose hessian sum is below this cannot
#: take a meaningful Newton step (for log-loss: all its probabilities are near 0 or 1).
MIN_HESSIAN_TO_SPLIT = 1e-3

#: Below this many rows a node's histogram is built with one bincount over all features.
SMALL_NODE = 3072

#: From this many rows on, a node's histogram is split over the workspace's threads.
PARALLEL_NODE = 16384

#: Most (row, feature) pairs a small node's histogram codes at once (scratch memory bound).
FLAT_CHUNK = 1 << 15

#: Padding bins worth adding to a histogram to save one group of same-width features.
MERGE_PADDING = 256

#: Histograms skip each feature's most common bin when at least this share of all values
#: sits in it (one-hot and other sparse columns), see :class:`_SparseRows`.
SPARSE_MIN_SHARE = 0.6


@dataclass(eq=False)  # nodes compare by identity
class _Node:
    rows: np.ndarray  # sorted indices into the training matrix
    depth: int
    sum_grad: float
    sum_hess: float
    histogram: np.ndarray | None = None  # (3, n_total_bins): grad, hess, count
    # best split found for this node (feature, bin, gain, left sums), if any
    feature: int = -1
    bin: int = -1
    gain: float = 0.0
    left_grad: float = 0.0
    left_hess: float = 0.0
    node_id: int = -1


@dataclass
class HistTree:
    """A grown tree as flat arrays, one entry per node (node 0 is the root).

    Leaves point to themselves (``left[i] == right[i] == i``) with an infinite threshold, so
    prediction is a fixed number of vectorised steps with no special case for leaves.
    """

    feature: np.ndarray  # intp, split feature (0 for leaves)
    threshold_bin: np.ndarray  # intp, go left when bin code <= this
    threshold: np.ndarray  # float64, go left when raw value <= this
    left: np.ndarray  # intp
    right: np.ndarray  # intp
    gain: np.ndarray  # float64, split gain (0 for leaves)
    is_leaf: np.ndarray  # bool
    depth: int  # depth of the deepest leaf
    value: np.ndarray = field(default_factory=lambda: np.zeros(0))  # per node, set by boosting

    @property
    def n_leaves(self) -> int:
        return int(self.is_leaf.sum())

    def apply(self, X: np.ndarray, *, binned: bool) -> np.ndarray:
        """Index of the leaf each row of X lands in (X raw floats, or bin codes if binned)."""
        node = np.zeros(X.shape[0], dtype=np.intp)
        if X.shape[0] == 0:
            return node
        thresholds = self.threshold_bin if binned else self.threshold
        rows = np.arange(X.shape[0])
        for _ in range(self.depth):
            goes_left = X[rows, self.feature[node]] <= thresholds[node]
            node = np.where(goes_left, self.left[node], self.right[node])
        return node

    def predict(self, X: np.ndarray, *, binned: bool = False) -> np.ndarray:
        return self.value[self.apply(X, binned=binned)]


class Workspace:
    """Layout and scratch arrays shared by every node of a fit, allocated once.

    Histograms are *bucketed*: feature ``j`` owns ``widths[j]`` consecutive entries from
    ``bin_offsets[j]``, its bin count rounded up to a power of two, and features of the same
    width sit side by side. A histogram then has about ``sum(n_bins)`` entries per statistic
    (rounding at most doubles it, merging adds some padding, see ``MERGE_PADDING``) instead of
    ``n_features x max_bins``: ten times fewer on one-hot data. The cumulative sums of the split
    search take one numpy call per width, each feature's bins summed on their own as before.

    The hot loops would otherwise allocate a fresh array for every numpy operation; arrays this
    size come straight from the operating system, and the page faults of touching new memory
    cost as much as the arithmetic. Reusing buffers through ``out=`` keeps the memory warm.
    """

    def __init__(
        self,
        X_binned: np.ndarray,
        n_bins_per_feature: np.ndarray,
        pool: Executor | None = None,
        n_threads: int = 1,
    ) -> None:
        n_samples, n_features = X_binned.shape
        n_bins = np.asarray(n_bins_per_feature, dtype=np.intp)
        widths = np.maximum(2, 1 << np.ceil(np.log2(np.maximum(n_bins, 1))).astype(np.intp))
        # Few features of one width cost a numpy call per node more than their padding would
        # cost at the next width: move them up.
        for w in np.unique(widths)[:-1]:
            wider = widths[widths > w].min()
            if np.sum(widths == w) * (wider - w) <= MERGE_PADDING:
                widths[widths == w] = wider
        by_width = np.argsort(widths, kind="stable")  # features grouped by width, in order
        offsets = np.empty(n_features, dtype=np.intp)
        offsets[by_width] = np.concatenate(([0], np.cumsum(widths[by_width])[:-1]))
        self.n_samples = n_samples
        self.n_bins = n_bins
        self.widths = widths
        self.bin_offsets = offsets  # where feature j's bins start in a histogram
        self.n_total_bins = int(widths.sum())
        # (start, stop, width) of each group of same-width features
        self.buckets = []
        for w in np.unique(widths):
            start = int(offsets[widths == w].min())
            self.buckets.append((start, start + int(w) * int(np.sum(widths == w)), int(w)))
        # A row-major copy (one byte per value): gathering a node's rows as whole rows is
        # several times faster than gathering each column of the column-major original.
        self.X_binned = X_binned
        self.X_rows = np.ascontiguousarray(X_binned)
        self.pool = pool
        n_threads = 1 if pool is None else max(1, min(n_threads, n_features))
        # Large nodes: one bincount per feature. Features are dealt round-robin to the
        # threads; each thread has its own buffers.
        self.feature_groups = [range(t, n_features, n_threads) for t in range(n_threads)]
        n_large = n_samples if n_samples >= SMALL_NODE else 0
        self.block = np.empty((n_large, n_features), dtype=np.uint8)
        self.codes = [np.empty(n_samples, dtype=np.intp) for _ in range(n_threads)]
        # Small nodes: rows in chunks of at most FLAT_CHUNK (row, feature) pairs, each pair
        # coded ``bin_offsets[j] + bin`` so that one bincount per statistic fills the histogram.
        chunk = max(1, min(SMALL_NODE, n_samples, FLAT_CHUNK // max(n_features, 1)))
        self.chunk_rows = chunk
        self.flat_block = np.empty((chunk, n_features), dtype=np.uint8)
        self.flat_codes = np.empty((chunk, n_features), dtype=np.intp)
        self.flat_grad = np.empty((chunk, n_features))
        self.flat_hess = np.empty((chunk, n_features))
        self.grad = np.empty(n_samples)
        self.hess = np.empty(n_samples)
        self.goes_left = np.empty(n_samples, dtype=bool)
        self.split_codes = np.empty(n_samples, dtype=np.uint8)
        self.split = _SplitBuffers(self)
        self.root_counts = count_histogram(X_binned, self)
        self.sparse = _SparseRows.build(self)


class _SparseRows:
    """The values of ``X_binned`` outside each feature's most common bin, row by row.

    After one-hot encoding most columns are 0 in almost every row. A histogram then needs
    sums over the other values only: the most common ("default") bin of a feature gets the
    node's total minus the feature's other bins, as LightGBM does for sparse features. The
    values are stored like a CSR matrix, already coded as histogram positions.
    """

    def __init__(
        self, indptr: np.ndarray, codes: np.ndarray, default_pos: np.ndarray, starts: np.ndarray
    ) -> None:
        self.indptr = indptr  # row i's entries: codes[indptr[i]:indptr[i + 1]]
        self.lengths = np.diff(indptr)
        self.codes = codes
        self.default_pos = default_pos  # histogram position of each feature's default bin
        self.starts = starts  # where each feature's bins start, same (layout) order

    @classmethod
    def build(cls, ws: Workspace) -> _SparseRows | None:
        """The sparse form of ``ws.X_rows``, or None when too few values are default."""
        counts = ws.root_counts
        n_samples, n_features = ws.X_rows.shape
        layout = np.argsort(ws.bin_offsets)  # features in histogram order
        starts = ws.bin_offsets[layout]
        default_bin = np.array(
            [np.argmax(counts[o : o + w]) for o, w in zip(ws.bin_offsets, ws.widths, strict=True)]
        )
        n_default = sum(counts[o + b] for o, b in zip(ws.bin_offsets, default_bin, strict=True))
        if n_samples == 0 or n_default < SPARSE_MIN_SHARE * n_samples * n_features:
            return None
        row, col = np.nonzero(ws.X_rows != default_bin.astype(np.uint8))  # row-major order
        codes = ws.X_rows[row, col].astype(np.intp)
        codes += ws.bin_offsets[col]
        indptr = np.zeros(n_samples + 1, dtype=np.intp)
        np.cumsum(np.bincount(row, minlength=n_samples), out=indptr[1:])
        default_pos = (ws.bin_offsets + default_bin)[layout]
        return cls(indptr, codes, default_pos, starts)


class _SplitBuffers:
    """Scratch arrays of :func:`find_best_split`, one entry per histogram bin."""

    def __init__(self, ws: Workspace) -> None:
        n_total = ws.n_total_bins
        self.buckets = ws.buckets
        self.left = np.empty((3, n_total))
        # Feature and bin of every histogram entry (padding gets bins past the feature's
        # last; its counts are zero, so it is never a valid split).
        self.feature_of = np.zeros(n_total, dtype=np.int32)  # small: memory is a target
        self.bin_of = np.zeros(n_total, dtype=np.int16)
        for j, (start, width) in enumerate(zip(ws.bin_offsets, ws.widths, strict=True)):
            self.feature_of[start : start + width] = j
            self.bin_of[start : start + width] = np.arange(width)
        self.right_g = np.empty(n_total)
        self.right_h = np.empty(n_total)
        self.score = np.empty(n_total)
        self.tmp = np.empty(n_total)
        self.valid = np.empty(n_total, dtype=bool)
        self.tmp_bool = np.empty(n_total, dtype=bool)


def build_histogram(
    rows: np.ndarray | None,
    grad: np.ndarray,
    hess: np.ndarray | None,
    workspace: Workspace,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient, hessian and count sums per histogram bin over ``rows`` (all rows if None).

    Returns an array of shape (3, n_total_bins): ``[0]`` gradient sums, ``[1]`` hessian sums,
    ``[2]`` sample counts, feature ``j``'s bins from ``workspace.bin_offsets[j]`` on.
    ``hess=None`` means a constant hessian of 1, whose histogram is the count histogram.
    ``counts`` passes an already known count histogram (the root's never changes between
    iterations), saving one ``bincount`` per feature.
    """
    ws = workspace
    m = ws.n_samples if rows is None else len(rows)
    hist = np.empty((3, ws.n_total_bins))
    if ws.sparse is not None:
        _sparse_histogram(hist, rows, grad, hess, ws, counts)
        return hist
    if rows is not None and m < SMALL_NODE:
        _flat_histogram(hist, rows, grad, hess, ws)
        return hist
    g, h = grad, hess
    if rows is not None:
        g = np.take(grad, rows, out=ws.grad[:m])
        if hess is not None:
            h = np.take(hess, rows, out=ws.hess[:m])
    if counts is not None:
        hist[2] = counts
    # The root reads X_binned's contiguous columns; other nodes gather their rows once.
    source = ws.X_binned if rows is None else ws.X_rows.take(rows, axis=0, out=ws.block[:m])
    offsets, widths = ws.bin_offsets, ws.widths

    def fill(group: int) -> None:
        codes = ws.codes[group][:m]
        for j in ws.feature_groups[group]:
            np.copyto(codes, source[:, j])
            bins, width = slice(offsets[j], offsets[j] + widths[j]), widths[j]
            hist[0, bins] = np.bincount(codes, weights=g, minlength=width)
            if counts is None:
                hist[2, bins] = np.bincount(codes, minlength=width)
            if h is not None:
                hist[1, bins] = np.bincount(codes, weights=h, minlength=width)

    n_groups = len(ws.feature_groups)
    if ws.pool is None or n_groups == 1 or m < PARALLEL_NODE:
        for group in range(n_groups):
            fill(group)
    else:
        # bincount's main loop, take and the casts release the GIL: on a machine with a
        # free core, two threads build the histogram about 1.4 times faster.
        list(ws.pool.map(fill, range(n_groups)))
    if h is None:
        hist[1] = hist[2]
    return hist


def _flat_histogram(
    hist: np.ndarray,
    rows: np.ndarray,
    grad: np.ndarray,
    hess: np.ndarray | None,
    ws: Workspace,
) -> None:
    """The histogram of a small node with one ``bincount`` per statistic and chunk of rows.

    With few rows numpy's per-call overhead dominates a loop over features, so every (row,
    feature) pair gets its histogram position ``bin_offsets[j] + bin`` as its code, and the row's
    gradient and hessian are repeated once per feature; chunks bound that scratch memory.
    """
    n_total, offsets = ws.n_total_bins, ws.bin_offsets
    for start in range(0, len(rows), ws.chunk_rows):
        chunk = rows[start : start + ws.chunk_rows]
        k = len(chunk)
        block = ws.X_rows.take(chunk, axis=0, out=ws.flat_block[:k])
        codes = np.add(block, offsets, out=ws.flat_codes[:k]).ravel()
        g = ws.flat_grad[:k]
        np.copyto(g, np.take(grad, chunk, out=ws.grad[:k])[:, None])
        sums = [np.bincount(codes, g.ravel(), n_total), None, np.bincount(codes, None, n_total)]
        if hess is not None:
            h = ws.flat_hess[:k]
            np.copyto(h, np.take(hess, chunk, out=ws.hess[:k])[:, None])
            sums[1] = np.bincount(codes, h.ravel(), n_total)
        for i, total in enumerate(sums):
            if total is None:
                continue
            if start == 0:
                hist[i] = total
            else:
                hist[i] += total
    if hess is None:
        hist[1] = hist[2]


def _sparse_histogram(
    hist: np.ndarray,
    rows: np.ndarray | None,
    grad: np.ndarray,
    hess: np.ndarray | None,
    ws: Workspace,
    counts: np.ndarray | None,
) -> None:
    """The histogram from the non-default values only (see :class:`_SparseRows`)."""
    sp = ws.sparse
    assert sp is not None
    n_total = ws.n_total_bins
    if rows is None:
        codes, lengths, g, h = sp.codes, sp.lengths, grad, hess
    else:
        lengths = sp.lengths.take(rows)
        ends = np.cumsum(lengths)
        # Positions of the node's entries: row r's run starts at indptr[r].
        shift = np.repeat(sp.indptr.take(rows) - (ends - lengths), lengths)
        shift += np.arange(ends[-1] if ends.size else 0)
        codes = sp.codes.take(shift)
        g = np.take(grad, rows, out=ws.grad[: len(rows)])
        h = None if hess is None else np.take(hess, rows, out=ws.hess[: len(rows)])
    computed = [0, 2] if counts is None else [0]
    hist[0] = np.bincount(codes, np.repeat(g, lengths), n_total)
    if h is not None:
        hist[1] = np.bincount(codes, np.repeat(h, lengths), n_total)
        computed.append(1)
    if counts is None:
        hist[2] = np.bincount(codes, None, n_total)
    else:
        hist[2] = counts
    # Each feature's default bin: the node's total minus the feature's other bins.
    totals = np.array([g.sum(), 0.0 if h is None else h.sum(), len(lengths)])[computed]
    others = np.add.reduceat(hist[computed], sp.starts, axis=1)
    hist[np.ix_(computed, sp.default_pos)] = totals[:, None] - others
    if h is None:
        hist[1] = hist[2]


def count_histogram(X_binned: np.ndarray, workspace: Workspace) -> np.ndarray:
    """Sample counts per histogram bin over all rows, shape (n_total_bins,)."""
    counts = np.zeros(workspace.n_total_bins)
    for j, (start, width) in enumerate(zip(workspace.bin_offsets, workspace.widths, strict=True)):
        counts[start : start + width] = np.bincount(X_binned[:, j], minlength=width)
    return counts


def cumulate(hist: np.ndarray, buckets: list[tuple[int, int, int]], out: np.ndarray) -> np.ndarray:
    """Cumulative sums of a histogram along each feature's bins, into ``out``.

    Entry ``b`` of feature ``j`` then holds the sums over bins ``0..b``: the left side of the
    split after bin ``b``. One ``np.cumsum`` per group of same-width features, each feature
    summed on its own, in bin order (as scikit-learn does, so equal splits tie exactly).
    """
    for start, stop, width in buckets:
        shape = (3, (stop - start) // width, width)
        block = out[:, start:stop].reshape(shape)  # views: the last axis is contiguous
        np.cumsum(hist[:, start:stop].reshape(shape), axis=2, out=block)
    return out


def find_best_split(
    node: _Node, min_samples_leaf: int, l2_regularization: float, ws: _SplitBuffers
) -> None:
    """Score every (feature, bin) split of ``node`` at once and store the best in ``node``.

    Splitting after bin ``b`` sends bins ``0..b`` left; the node's cumulative histogram (see
    :func:`cumulate`) holds the left sums of every candidate, the right sums are the node's
    minus those. A candidate is valid when both sides keep at least ``min_samples_leaf``
    samples and ``MIN_HESSIAN_TO_SPLIT`` hessian; that also rules out a feature's last bin and
    the padding after it (nothing is left on the right). Ties go to the lowest feature, then
    the lowest bin, as in scikit-learn.

    Written with ``out=`` into reused buffers; the plain-numpy equivalent is::

        left_g, left_h, left_c = node's cumulative histogram
        right_g, right_h, right_c = G - left_g, H - left_h, n - left_c
        valid = (left_c >= msl) & (right_c >= msl) & (left_h >= min_h) & (right_h >= min_h)
        score = left_g**2 / (left_h + l2) + right_g**2 / (right_h + l2)
    """
    assert node.histogram is not None
    left_g, left_h, left_c = cumulate(node.histogram, ws.buckets, ws.left)
    node.gain = 0.0
    right_g = np.subtract(node.sum_grad, left_g, out=ws.right_g)
    right_h = np.subtract(node.sum_hess, left_h, out=ws.right_h)
    valid, tmp_bool, score, tmp = ws.valid, ws.tmp_bool, ws.score, ws.tmp
    np.greater_equal(left_c, min_samples_leaf, out=valid)
    valid &= np.less_equal(left_c, len(node.rows) - min_samples_leaf, out=tmp_bool)
    minimum = np.minimum(left_h, right_h, out=tmp)
    valid &= np.greater_equal(minimum, MIN_HESSIAN_TO_SPLIT, out=tmp_bool)
    if l2_regularization:
        denominator_left = np.add(left_h, l2_regularization)
        right_h = np.add(right_h, l2_regularization, out=right_h)  # not needed unshifted
    else:  # the default: skip two passes
        denominator_left = left_h
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(np.square(left_g, out=score), denominator_left, out=score)
        np.square(right_g, out=right_g)  # right_g is not needed after this
        score += np.divide(right_g, right_h, out=tmp)
    np.copyto(score, -np.inf, where=np.logical_not(valid, out=tmp_bool))
    best = int(np.argmax(score))  # the first maximum in layout order
    if score[best] == -np.inf:
        return
    last = score.size - 1 - int(np.argmax(score[::-1]))
    if ws.feature_of[last] != ws.feature_of[best]:
        # Equal scores in two features: the layout groups features by width, so the first
        # maximum need not be the lowest feature's.
        ties = np.flatnonzero(score == score[best])
        best = int(ties[np.lexsort((ws.bin_of[ties], ws.feature_of[ties]))[0]])
    # The parent's term is the same for every candidate: subtract it once, after argmax.
    best_gain = float(score[best]) - node.sum_grad**2 / (node.sum_hess + l2_regularization)
    if not best_gain > 0.0:  # also catches nan
        return
    node.feature, node.bin = int(ws.feature_of[best]), int(ws.bin_of[best])
    node.gain = best_gain
    node.left_grad, node.left_hess = float(left_g[best]), float(left_h[best])


def make_workspace(
    X_binned: np.ndarray,
    n_bins_per_feature: np.ndarray,
    pool: Executor | None = None,
    n_threads: int = 1,
) -> Workspace:
    """Scratch buffers for growing trees on ``X_binned`` (reuse them across a fit).

    With a thread ``pool`` of ``n_threads`` workers, the histograms of large nodes are built
    by its threads, each taking a share of the features.
    """
    return Workspace(X_binned, n_bins_per_feature, pool, n_threads)


def n_useful_threads() -> int:
    """Threads worth using for histograms: the CPUs this process may run on, at most 4.

    More threads than that gain little: part of each ``bincount`` holds the GIL.
    """
    try:
        n_cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        n_cpus = os.cpu_count() or 1
    return max(1, min(4, n_cpus))


@dataclass
class GrownTree:
    """What the grower hands back: the structure plus per-leaf sums and rows."""

    tree: HistTree
    leaf_ids: np.ndarray  # node ids of the leaves, in the order of the lists below
    leaf_sum_grad: np.ndarray
    leaf_sum_hess: np.ndarray
    leaf_rows: list[np.ndarray]


def grow_tree(
    X_binned: np.ndarray,
    rows: np.ndarray | None,
    grad: np.ndarray,
    hess: np.ndarray | None,
    *,
    n_bins_per_feature: np.ndarray,
    bin_thresholds: list[np.ndarray],
    max_leaf_nodes: int | None,
    max_depth: int | None,
    min_samples_leaf: int,
    l2_regularization: float,
    root_counts: np.ndarray | None = None,
    workspace: Workspace | None = None,
) -> GrownTree:
    """Grow one tree best-first on ``X_binned[rows]`` against ``grad``/``hess``.

    ``grad`` and ``hess`` are indexed by training row (length ``X_binned.shape[0]``);
    ``hess=None`` means a constant hessian of 1 (squared error without sample weights).
    ``rows=None`` grows on every row (no row subsampling); ``root_counts`` is then the
    count histogram of all rows, which boosting computes once per fit. ``workspace`` is
    scratch memory shared by the trees of a fit (see :func:`make_workspace`).
    """
    ws = make_workspace(X_binned, n_bins_per_feature) if workspace is None else workspace
    all_rows = np.arange(X_binned.shape[0]) if rows is None else rows
    root_hist = build_histogram(rows, grad, hess, ws, root_counts)
    first = slice(ws.bin_offsets[0], ws.bin_offsets[0] + ws.widths[0])  # every row is in one
    sum_g = float(root_hist[0, first].sum())
    sum_h = float(root_hist[1, first].sum())
    root = _Node(all_rows, 0, sum_g, sum_h, root_hist, node_id=0)

    # Flat node arrays, filled as nodes are created.
    feature, threshold_bin, left, right, gain = [0], [0], [0], [0], [0.0]
    leaves: list[_Node] = []
    heap: list[tuple[float, int, _Node]] = []  # (-gain, node id, node): best gain first

    def can_split(node: _Node) -> bool:
        too_deep = max_depth is not None and node.depth >= max_depth
        return not too_deep and len(node.rows) >= 2 * min_samples_leaf

    def consider(nodes: list[_Node]) -> None:
        """Find the nodes' best splits: push those that have one on the heap, else leaves."""
        for nd in nodes:
            if can_split(nd):
                find_best_split(nd, min_samples_leaf, l2_regularization, ws.split)
        for nd in nodes:
            if nd.gain > 0.0:
                heapq.heappush(heap, (-nd.gain, nd.node_id, nd))  # keeps its histogram
            else:
                nd.histogram = None
                leaves.append(nd)

    if sum_h < MIN_HESSIAN_TO_SPLIT:
        root.histogram = None
        leaves.append(root)
    else:
        consider([root])

    while heap:
        _, _, node = heapq.heappop(heap)
        m = len(node.rows)
        codes = np.take(X_binned[:, node.feature], node.rows, out=ws.split_codes[:m])
        goes_left = np.less_equal(codes, node.bin, out=ws.goes_left[:m])
        left_node = _Node(
            np.compress(goes_left, node.rows),  # much faster than rows[mask]
            node.depth + 1,
            node.left_grad,
            node.left_hess,
            node_id=len(feature),
        )
        right_node = _Node(
            np.compress(np.logical_not(goes_left, out=goes_left), node.rows),
            node.depth + 1,
            node.sum_grad - node.left_grad,
            node.sum_hess - node.left_hess,
            node_id=len(feature) + 1,
        )
        i = node.node_id
        feature[i], threshold_bin[i], gain[i] = node.feature, node.bin, node.gain
        left[i], right[i] = left_node.node_id, right_node.node_id
        for child in (left_node, right_node):
            feature.append(0)
            threshold_bin.append(0)
            left.append(child.node_id)
            right.append(child.node_id)
            gain.append(0.0)
        parent_hist, node.histogram = node.histogram, None
        n_leaves = len(leaves) + len(heap) + 2
        if max_leaf_nodes is not None and n_leaves >= max_leaf_nodes:
            leaves.extend((left_node, right_node))
            break  # leaf budget spent: no need for the children's histograms
        if not (can_split(left_node) or can_split(right_node)):
            leaves.extend((left_node, right_node))
            continue
        # Histograms: build the smaller child, subtract it from the parent for the larger.
        small, large = (
            (left_node, right_node)
            if len(left_node.rows) <= len(right_node.rows)
            else (right_node, left_node)
        )
        small.histogram = build_histogram(small.rows, grad, hess, ws)
        large.histogram = np.subtract(parent_hist, small.histogram, out=parent_hist)
        consider([left_node, right_node])

    for _, _, node in heap:  # out of leaf budget: the remaining candidates become leaves
        node.histogram = None
        leaves.append(node)
    leaves.sort(key=lambda nd: nd.node_id)

    feature_arr = np.asarray(feature, dtype=np.intp)
    threshold_bin_arr = np.asarray(threshold_bin, dtype=np.intp)
    left_arr = np.asarray(left, dtype=np.intp)
    right_arr = np.asarray(right, dtype=np.intp)
    is_leaf = left_arr == np.arange(len(left_arr))
    threshold = np.full(len(feature_arr), np.inf)
    threshold_bin_arr[is_leaf] = np.iinfo(np.intp).max
    for i in np.flatnonzero(~is_leaf):
        threshold[i] = bin_thresholds[feature_arr[i]][threshold_bin_arr[i]]
    tree = HistTree(
        feature=feature_arr,
        threshold_bin=threshold_bin_arr,
        threshold=threshold,
        left=left_arr,
        right=right_arr,
        gain=np.asarray(gain),
        is_leaf=is_leaf,
        depth=max(nd.depth for nd in leaves),
    )
    return GrownTree(
        tree=tree,
        leaf_ids=np.array([nd.node_id for nd in leaves], dtype=np.intp),
        leaf_sum_grad=np.array([nd.sum_grad for nd in leaves]),
        leaf_sum_hess=np.array([nd.sum_hess for nd in leaves]),
        leaf_rows=[nd.rows for nd in leaves],
    )
