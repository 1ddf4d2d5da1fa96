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

What makes it fast in plain numpy:

- histograms are built with one ``np.bincount`` per feature over the node's rows (one per
  statistic over all features at once for small nodes), never a loop over samples or
  thresholds;
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


@dataclass(eq=False)  # nodes compare by identity
class _Node:
    rows: np.ndarray  # sorted indices into the training matrix
    depth: int
    sum_grad: float
    sum_hess: float
    histogram: np.ndarray | None = None  # (3, n_features, n_bins): grad, hess, count
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
    """Scratch arrays reused by every node of a fit, allocated once.

    The hot loops below would otherwise allocate a fresh array for every numpy operation;
    arrays this size (a few hundred KB) come straight from the operating system, and the
    page faults of touching new memory cost as much as the arithmetic. Reusing buffers
    through ``out=`` keeps the memory warm.
    """

    def __init__(
        self,
        X_binned: np.ndarray,
        n_bins: int,
        pool: Executor | None = None,
        n_threads: int = 1,
    ) -> None:
        n_samples, n_features = X_binned.shape
        # A row-major copy (one byte per value): gathering a node's rows as whole rows is
        # several times faster than gathering each column of the column-major original.
        self.X_rows = np.ascontiguousarray(X_binned)
        self.block = np.empty((n_samples, n_features), dtype=np.uint8)
        self.pool = pool
        n_threads = 1 if pool is None else max(1, min(n_threads, n_features))
        # Features are dealt round-robin to the threads; each thread has its own buffers.
        self.feature_groups = [range(t, n_features, n_threads) for t in range(n_threads)]
        self.codes = [np.empty(n_samples, dtype=np.intp) for _ in range(n_threads)]
        self.grad = np.empty(n_samples)
        self.hess = np.empty(n_samples)
        self.goes_left = np.empty(n_samples, dtype=bool)
        self.split_codes = np.empty(n_samples, dtype=np.uint8)
        self.feature_offsets = np.arange(n_features, dtype=np.intp) * n_bins
        self.split = _SplitBuffers(n_features, n_bins)


class _SplitBuffers:
    """Scratch arrays of :func:`find_best_split`, one per (feature, candidate bin)."""

    def __init__(self, n_features: int, n_bins: int) -> None:
        shape = (n_features, max(n_bins - 1, 0))
        self.cum = np.empty((3, *shape))
        self.right_g = np.empty(shape)
        self.right_h = np.empty(shape)
        self.score = np.empty(shape)
        self.tmp = np.empty(shape)
        self.valid = np.empty(shape, dtype=bool)
        self.tmp_bool = np.empty(shape, dtype=bool)


def build_histogram(
    X_binned: np.ndarray,
    rows: np.ndarray | None,
    grad: np.ndarray,
    hess: np.ndarray | None,
    n_bins: int,
    workspace: Workspace,
    counts: np.ndarray | None = None,
) -> np.ndarray:
    """Gradient, hessian and count sums per (feature, bin) over ``rows`` (all rows if None).

    Returns an array of shape (3, n_features, n_bins): ``[0]`` gradient sums, ``[1]`` hessian
    sums, ``[2]`` sample counts. ``X_binned`` is Fortran-ordered so each feature's codes are
    one contiguous column; they are gathered and converted to ``intp`` once (into reused
    buffers) and shared by every ``bincount``. ``hess=None`` means a constant hessian of 1,
    whose histogram is the count histogram. ``counts`` passes an already known count
    histogram (the root's never changes between iterations), saving one ``bincount`` per
    feature.
    """
    n_features = X_binned.shape[1]
    m = X_binned.shape[0] if rows is None else len(rows)
    g, h = grad, hess
    if rows is not None:
        g = np.take(grad, rows, out=workspace.grad[:m])
        if hess is not None:
            h = np.take(hess, rows, out=workspace.hess[:m])
    hist = np.empty((3, n_features, n_bins))
    if rows is not None and m < SMALL_NODE:
        # Few rows: numpy's per-call overhead dominates the loop over features below, so
        # give every (feature, bin) pair its own code and use one bincount per statistic.
        codes_2d = workspace.X_rows.take(rows, axis=0).astype(np.intp)
        codes_2d += workspace.feature_offsets
        flat = codes_2d.ravel()
        size = n_features * n_bins
        hist[0] = np.bincount(flat, np.repeat(g, n_features), size).reshape(hist[0].shape)
        hist[2] = np.bincount(flat, minlength=size).reshape(hist[2].shape)
        if h is None:
            hist[1] = hist[2]
        else:
            hist[1] = np.bincount(flat, np.repeat(h, n_features), size).reshape(hist[1].shape)
        return hist
    if counts is not None:
        hist[2] = counts
    # The root reads X_binned's contiguous columns; other nodes gather their rows once.
    source = (
        X_binned if rows is None else workspace.X_rows.take(rows, axis=0, out=workspace.block[:m])
    )

    def fill(group: int) -> None:
        codes = workspace.codes[group][:m]
        for j in workspace.feature_groups[group]:
            np.copyto(codes, source[:, j])
            hist[0, j] = np.bincount(codes, weights=g, minlength=n_bins)
            if counts is None:
                hist[2, j] = np.bincount(codes, minlength=n_bins)
            if h is not None:
                hist[1, j] = np.bincount(codes, weights=h, minlength=n_bins)

    n_groups = len(workspace.feature_groups)
    if workspace.pool is None or n_groups == 1 or m < PARALLEL_NODE:
        for group in range(n_groups):
            fill(group)
    else:
        # bincount's main loop, take and the casts release the GIL: on a machine with a
        # free core, two threads build the histogram about 1.4 times faster.
        list(workspace.pool.map(fill, range(n_groups)))
    if h is None:
        hist[1] = hist[2]
    return hist


def count_histogram(X_binned: np.ndarray, n_bins: int) -> np.ndarray:
    """Sample counts per (feature, bin) over all rows, shape (n_features, n_bins)."""
    return np.stack(
        [np.bincount(X_binned[:, j], minlength=n_bins) for j in range(X_binned.shape[1])]
    ).astype(np.float64)


def find_best_split(
    node: _Node, min_samples_leaf: int, l2_regularization: float, buffers: _SplitBuffers
) -> None:
    """Score every (feature, bin) split of ``node`` at once and store the best in ``node``.

    Splitting after bin ``b`` sends bins ``0..b`` left. Cumulative sums along the bins give
    the left sums of every candidate, the right sums are the node's minus those. Candidates
    that leave fewer than ``min_samples_leaf`` samples or too little hessian on a side get
    gain -inf; that also rules out bins past a feature's last used one (nothing is left on
    the right). Ties go to the lowest feature, then the lowest bin (``argmax`` returns the
    first maximum), as in scikit-learn.

    Written with ``out=`` into reused ``buffers``; the plain-numpy equivalent is::

        left_g, left_h, left_c = np.cumsum(histogram[:, :, :-1], axis=2)
        right_g, right_h, right_c = G - left_g, H - left_h, n - left_c
        valid = (left_c >= msl) & (right_c >= msl) & (left_h >= min_h) & (right_h >= min_h)
        score = left_g**2 / (left_h + l2) + right_g**2 / (right_h + l2)
    """
    hist = node.histogram
    assert hist is not None
    ws = buffers
    node.gain = 0.0
    if hist.shape[2] < 2:  # every feature is constant: nothing to split on
        return
    np.cumsum(hist[:, :, :-1], axis=2, out=ws.cum)
    left_g, left_h, left_c = ws.cum
    np.subtract(node.sum_grad, left_g, out=ws.right_g)
    np.subtract(node.sum_hess, left_h, out=ws.right_h)
    valid, tmp_bool = ws.valid, ws.tmp_bool
    np.greater_equal(left_c, min_samples_leaf, out=valid)
    valid &= np.less_equal(left_c, len(node.rows) - min_samples_leaf, out=tmp_bool)
    valid &= np.greater_equal(left_h, MIN_HESSIAN_TO_SPLIT, out=tmp_bool)
    valid &= np.greater_equal(ws.right_h, MIN_HESSIAN_TO_SPLIT, out=tmp_bool)
    score, tmp = ws.score, ws.tmp
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(
            np.square(left_g, out=score), np.add(left_h, l2_regularization, out=tmp), out=score
        )
        np.square(ws.right_g, out=ws.right_g)  # right_g is not needed after this
        score += np.divide(ws.right_g, np.add(ws.right_h, l2_regularization, out=tmp), out=tmp)
    np.copyto(score, -np.inf, where=np.logical_not(valid, out=tmp_bool))
    best = int(np.argmax(score))
    feature, bin_ = divmod(best, score.shape[1])
    # The parent's term is the same for every candidate: subtract it once, after argmax.
    best_gain = float(score[feature, bin_]) - node.sum_grad**2 / (node.sum_hess + l2_regularization)
    if not best_gain > 0.0:  # also catches -inf (no valid split) and nan
        return
    node.feature, node.bin, node.gain = feature, bin_, best_gain
    node.left_grad = float(left_g[feature, bin_])
    node.left_hess = float(left_h[feature, bin_])


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
    return Workspace(X_binned, int(n_bins_per_feature.max()), pool, n_threads)


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
    n_bins = int(n_bins_per_feature.max())
    ws = make_workspace(X_binned, n_bins_per_feature) if workspace is None else workspace
    all_rows = np.arange(X_binned.shape[0]) if rows is None else rows
    root_hist = build_histogram(X_binned, rows, grad, hess, n_bins, ws, root_counts)
    sum_g = float(root_hist[0, 0].sum())
    sum_h = float(root_hist[1, 0].sum())
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
        small.histogram = build_histogram(X_binned, small.rows, grad, hess, n_bins, ws)
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
