"""FAISS indexes (exact, HNSW, IVF-PQ) behind `VectorIndex`: string ids, deletes, checked files.

FAISS knows only int64 labels and no deletes for HNSW, and its files carry no integrity check.
This wrapper adds what a service needs on top:

- string ids mapped to int64 labels that are never reused, so a stale label can never point at
  a different chunk;
- deletes for every kind: exact and IVF-PQ remove the vectors; HNSW cannot unlink graph nodes,
  so deleted labels become tombstones that an `IDSelector` excludes during the graph search
  (the graph still routes through them, so recall does not collapse) and that results are
  filtered against again; `compact()` rebuilds the graph without them;
- persistence as generation-named files plus a manifest (sizes, SHA-256) that is replaced
  atomically last, so a crash mid-save leaves the previous index loadable, and a damaged file
  raises `IndexCorrupt` instead of loading half an index.

Scores are inner products (cosine for the L2-normalised vectors this package uses); IVF-PQ's
are approximations from the compressed codes.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import faiss
import numpy as np

from rag_service.fileio import fsync_folder, replace_file, sha256_hex, write_new_file
from rag_service.index.base import (
    IndexCorrupt,
    IndexSettings,
    SearchResults,
    as_matrix,
    check_delete_ids,
    check_dim,
    check_int,
    check_k,
    check_new_ids,
    empty_index_error,
    unknown_ids_error,
)

FORMAT = "rag-faiss/1"
MANIFEST = "manifest.json"
KINDS = ("exact", "hnsw", "ivfpq")
_DATA_FILE = re.compile(r"^(index|ids)-[0-9a-f]{32}\.(faiss|json)$")

DEFAULTS: dict[str, dict[str, int]] = {
    "exact": {},
    "hnsw": {"m": 32, "ef_construction": 200, "ef_search": 128},
    "ivfpq": {"nlist": 1024, "m": 48, "nbits": 8, "nprobe": 16},
}


class FaissIndex(IndexSettings):
    """One FAISS index of a given kind; build it with `exact`, `hnsw` or `ivfpq`."""

    ENGINE = "FAISS"
    KINDS = KINDS
    DEFAULTS = DEFAULTS

    def __init__(self, kind: str, dim: int, **params: int) -> None:
        self._init_settings(kind, dim, params)
        _check_ivfpq(kind, self._dim, self._params)
        self._index: Any = self._new_engine()
        self._label_of: dict[str, int] = {}
        self._id_of: dict[int, str] = {}
        self._tombstones: set[int] = set()
        self._next_label = 0
        self._selector: Any = None

    # ---- construction -------------------------------------------------------------------

    @classmethod
    def exact(cls, dim: int) -> Self:
        """Brute-force inner product: the ground truth every approximate index is measured by."""
        return cls("exact", dim)

    @classmethod
    def hnsw(cls, dim: int, m: int = 32, ef_construction: int = 200, ef_search: int = 128) -> Self:
        """A navigable small-world graph: high recall, low latency, ~(4 dim + 8 m) bytes/vector."""
        return cls("hnsw", dim, m=m, ef_construction=ef_construction, ef_search=ef_search)

    @classmethod
    def ivfpq(
        cls, dim: int, nlist: int = 1024, m: int = 48, nbits: int = 8, nprobe: int = 16
    ) -> Self:
        """Inverted lists over product-quantised codes: m * nbits / 8 bytes per vector.

        Trained on the first `add` (or an explicit `train`), which needs at least
        max(nlist, 2**nbits) vectors; FAISS wants ~39 per centroid for good centroids.
        """
        return cls("ivfpq", dim, nlist=nlist, m=m, nbits=nbits, nprobe=nprobe)

    def _new_engine(self) -> Any:
        p = self._params
        if self._kind == "exact":
            return faiss.IndexIDMap2(faiss.IndexFlatIP(self._dim))
        if self._kind == "hnsw":
            index = faiss.IndexHNSWFlat(self._dim, p["m"], faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = p["ef_construction"]
            index.hnsw.efSearch = p["ef_search"]
            return index
        quantizer = faiss.IndexFlatIP(self._dim)
        index = faiss.IndexIVFPQ(
            quantizer, self._dim, p["nlist"], p["m"], p["nbits"], faiss.METRIC_INNER_PRODUCT
        )
        index.nprobe = p["nprobe"]
        return index

    # ---- properties ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._label_of)

    def __repr__(self) -> str:
        return f"FaissIndex({self._kind!r}, dim={self._dim}, n={len(self)}, {self._params})"

    @property
    def tombstones(self) -> int:
        """Deleted HNSW nodes still in the graph (0 for the other kinds)."""
        return len(self._tombstones)

    @property
    def ef_search(self) -> int:
        """HNSW candidate-list size at query time: the recall/latency dial."""
        self._require_kind("hnsw", "ef_search")
        return self._params["ef_search"]

    @ef_search.setter
    def ef_search(self, value: int) -> None:
        self._require_kind("hnsw", "ef_search")
        self._params["ef_search"] = check_int("ef_search", value)
        self._index.hnsw.efSearch = self._params["ef_search"]

    @property
    def nprobe(self) -> int:
        """IVF lists scanned per query: the recall/latency dial."""
        self._require_kind("ivfpq", "nprobe")
        return self._params["nprobe"]

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self._require_kind("ivfpq", "nprobe")
        self._params["nprobe"] = min(check_int("nprobe", value), self._params["nlist"])
        self._index.nprobe = self._params["nprobe"]

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    # ---- writes -------------------------------------------------------------------------

    def train(self, vectors: np.ndarray) -> None:
        """Train IVF-PQ's coarse centroids and codebooks (only on an empty index)."""
        self._require_kind("ivfpq", "train")
        x = as_matrix(vectors, self._dim, "training vectors")
        if self._index.ntotal:
            raise ValueError("train an IVF-PQ index before adding vectors, not after")
        needed = max(self._params["nlist"], 2 ** self._params["nbits"])
        if x.shape[0] < needed:
            raise ValueError(
                f"IVF-PQ with nlist={self._params['nlist']}, nbits={self._params['nbits']} needs "
                f"at least {needed} training vectors, got {x.shape[0]}; train on more vectors or "
                "lower nlist/nbits"
            )
        self._index.train(x)

    def add(self, ids: Sequence[str], vectors: np.ndarray) -> None:
        """Add vectors under new ids (checked first: nothing is added if any check fails)."""
        x = as_matrix(vectors, self._dim, "vectors")
        ids = check_new_ids(ids, x.shape[0], (i for i in ids if i in self._label_of))
        if not ids:
            return
        if not self._index.is_trained:
            self.train(x)
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        if self._kind == "hnsw":
            # HNSW numbers nodes in insertion order; labels must equal those numbers.
            if self._index.ntotal != self._next_label:
                raise RuntimeError(
                    f"HNSW holds {self._index.ntotal} nodes, the id map {self._next_label}"
                )
            self._index.add(x)
        else:
            self._index.add_with_ids(x, labels)
        for item, label in zip(ids, labels.tolist(), strict=True):
            self._label_of[item] = label
            self._id_of[label] = item
        self._next_label += len(ids)

    def delete(self, ids: Sequence[str]) -> None:
        """Delete ids (all known, else KeyError and nothing changes)."""
        ids = check_delete_ids(ids)
        unknown = [item for item in ids if item not in self._label_of]
        if unknown:
            raise unknown_ids_error(unknown)
        if not ids:
            return
        labels = np.array([self._label_of[item] for item in ids], dtype=np.int64)
        if self._kind == "hnsw":
            self._tombstones.update(labels.tolist())
            self._selector = None
        else:
            removed = self._index.remove_ids(labels)
            if removed != len(labels):
                raise RuntimeError(f"FAISS removed {removed} of {len(labels)} vectors")
        for item, label in zip(ids, labels.tolist(), strict=True):
            del self._label_of[item]
            del self._id_of[label]

    def compact(self) -> None:
        """Rebuild an HNSW graph without its tombstones (labels are renumbered, ids kept).

        Worth it once a good share of the graph is deleted: tombstones cost memory and search
        time (the graph still walks through them). A no-op for the other kinds.
        """
        if self._kind != "hnsw" or not self._tombstones:
            return
        live = sorted(self._id_of)
        vectors = self._index.reconstruct_n(0, self._index.ntotal)[np.array(live, dtype=np.int64)]
        ids = [self._id_of[label] for label in live]
        rebuilt = type(self)(self._kind, self._dim, **self._params)
        rebuilt.add(ids, vectors)
        self.__dict__.update(rebuilt.__dict__)  # swap only once the new graph is complete

    # ---- search -------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> SearchResults:
        """Top-k (id, inner product) per query, best first; fewer when fewer vectors are live."""
        k = check_k(k)
        q = as_matrix(queries, self._dim, "queries")
        if not self._label_of:
            raise empty_index_error()
        if q.shape[0] == 0:
            return []
        if self._kind == "hnsw" and self._tombstones:
            params = faiss.SearchParametersHNSW()
            params.efSearch = self._params["ef_search"]
            params.sel = self._live_selector()
            scores, labels = self._index.search(q, k, params=params)
        else:
            scores, labels = self._index.search(q, k)
        results: SearchResults = []
        for row_scores, row_labels in zip(scores.tolist(), labels.tolist(), strict=True):
            row = []
            for score, label in zip(row_scores, row_labels, strict=True):
                item = self._id_of.get(label)  # -1 (no result) and tombstones map to None
                if item is not None:
                    row.append((item, score))
            results.append(row)
        return results

    def _live_selector(self) -> Any:
        """`NOT in(tombstones)`, cached until the next delete (building it costs O(deleted))."""
        if self._selector is None:
            dead = faiss.IDSelectorBatch(np.fromiter(self._tombstones, dtype=np.int64))
            self._selector = faiss.IDSelectorNot(dead)
        return self._selector

    # ---- persistence --------------------------------------------------------------------

    def nbytes(self) -> int:
        """Size of the serialised FAISS index (vectors, graph or codes; not the id map)."""
        return int(faiss.serialize_index(self._index).nbytes)

    def save(self, folder: Path | str) -> None:
        """Write a new generation of files, then switch the manifest to it atomically.

        The previous generation stays untouched until the new manifest is on disk, so a crash
        at any point leaves a loadable index; files of older or unfinished generations are
        removed after the switch.
        """
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        generation = uuid.uuid4().hex
        index_bytes = faiss.serialize_index(self._index)
        ids_bytes = json.dumps(
            {
                "next_label": self._next_label,
                "labels": list(self._id_of),
                "ids": list(self._id_of.values()),
                "tombstones": sorted(self._tombstones),
            },
            separators=(",", ":"),
        ).encode()
        files = {}
        for role, name, data in (
            ("index", f"index-{generation}.faiss", index_bytes),
            ("ids", f"ids-{generation}.json", ids_bytes),
        ):
            write_new_file(folder / name, data)
            files[role] = {"name": name, "bytes": len(data), "sha256": sha256_hex(data)}
        fsync_folder(folder)
        manifest = {
            "format": FORMAT,
            "kind": self._kind,
            "dim": self._dim,
            "params": self._params,
            "count": len(self),
            "files": files,
        }
        replace_file(folder / MANIFEST, json.dumps(manifest, indent=2).encode())
        keep = {entry["name"] for entry in files.values()}
        for path in folder.iterdir():
            if path.name not in keep and (_DATA_FILE.match(path.name) or ".tmp-" in path.name):
                path.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: Path | str) -> Self:
        """Open a saved index after checking every file; IndexCorrupt names the bad one."""
        folder = Path(folder)
        manifest_path = folder / MANIFEST
        if not manifest_path.is_file():
            raise FileNotFoundError(f"no saved FAISS index in {folder}: {MANIFEST} is missing")
        manifest = _read_manifest(manifest_path)
        rebuild = _rebuild_hint(folder, manifest)
        blobs = {role: _read_checked(folder, manifest, role, rebuild) for role in ("index", "ids")}
        try:
            self = cls(manifest["kind"], manifest["dim"], **manifest["params"])
        except ValueError as err:
            raise IndexCorrupt(manifest_path, f"invalid parameters ({err})", rebuild) from err
        index_path = folder / manifest["files"]["index"]["name"]
        ids_path = folder / manifest["files"]["ids"]["name"]
        try:
            engine = faiss.deserialize_index(blobs["index"])
        except RuntimeError as err:
            raise IndexCorrupt(index_path, f"FAISS cannot read it ({err})", rebuild) from err
        try:
            mapping = json.loads(blobs["ids"].tobytes())
            labels = [int(label) for label in mapping["labels"]]
            ids = [str(item) for item in mapping["ids"]]
            tombstones = {int(label) for label in mapping["tombstones"]}
            next_label = int(mapping["next_label"])
        except (ValueError, KeyError, TypeError) as err:
            raise IndexCorrupt(ids_path, f"unreadable id map ({err})", rebuild) from err
        expected_total = len(labels) + len(tombstones)
        if len(labels) != len(ids) or engine.ntotal != expected_total or engine.d != self._dim:
            raise IndexCorrupt(
                index_path,
                f"holds {engine.ntotal} vectors of dim {engine.d}, the id map expects "
                f"{expected_total} of dim {self._dim}",
                rebuild,
            )
        self._index = engine
        if self._kind == "hnsw":
            self._index.hnsw.efSearch = self._params["ef_search"]
        elif self._kind == "ivfpq":
            self._index.nprobe = self._params["nprobe"]
        self._id_of = dict(zip(labels, ids, strict=True))
        self._label_of = {item: label for label, item in self._id_of.items()}
        self._tombstones = tombstones
        self._next_label = next_label
        return self


def _check_ivfpq(kind: str, dim: int, params: dict[str, int]) -> None:
    """PQ's own rules on checked parameters: m divides dim, codes of at most 16 bits, and
    nprobe capped at nlist (in place)."""
    if kind != "ivfpq":
        return
    if dim % params["m"]:
        raise ValueError(f"IVF-PQ needs m dividing dim: m={params['m']}, dim={dim}")
    if params["nbits"] > 16:
        raise ValueError(f"IVF-PQ nbits must be <= 16, got {params['nbits']}")
    params["nprobe"] = min(params["nprobe"], params["nlist"])


def _read_manifest(path: Path) -> dict[str, Any]:
    """The manifest, or IndexCorrupt if it is not the JSON this module writes."""
    rebuild = _rebuild_hint(path.parent, None)
    try:
        manifest = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as err:
        raise IndexCorrupt(path, f"not valid JSON ({err})", rebuild) from err
    try:
        if manifest["format"] != FORMAT:
            raise ValueError(f"format {manifest['format']!r}, expected {FORMAT!r}")
        if manifest["kind"] not in KINDS:
            raise ValueError(f"unknown kind {manifest['kind']!r}")
        for role in ("index", "ids"):
            entry = manifest["files"][role]
            if not _DATA_FILE.match(entry["name"]):
                raise ValueError(f"unexpected file name {entry['name']!r}")
            int(entry["bytes"])
            str(entry["sha256"])
        check_dim(manifest["dim"])
        dict(manifest["params"])
    except (KeyError, TypeError, ValueError) as err:
        raise IndexCorrupt(path, f"malformed manifest ({err})", rebuild) from err
    return manifest


def _read_checked(folder: Path, manifest: dict[str, Any], role: str, rebuild: str) -> np.ndarray:
    """A data file's bytes (a writable uint8 array, as FAISS wants) after its size and SHA-256
    match the manifest."""
    entry = manifest["files"][role]
    path = folder / entry["name"]
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except FileNotFoundError as err:
        raise IndexCorrupt(path, "the file is missing", rebuild) from err
    if len(data) != int(entry["bytes"]):
        problem = f"{len(data)} bytes on disk, the manifest says {entry['bytes']} (truncated?)"
        raise IndexCorrupt(path, problem, rebuild)
    if sha256_hex(data) != entry["sha256"]:
        raise IndexCorrupt(path, "its SHA-256 does not match the manifest (altered)", rebuild)
    return data


def _rebuild_hint(folder: Path, manifest: dict[str, Any] | None) -> str:
    """How to get a working index back: from the embeddings, since the files cannot be trusted."""
    if manifest is None:
        builder = "FaissIndex.<kind>(dim, ...)"
    else:
        args = ", ".join(
            [str(manifest["dim"])] + [f"{k}={v}" for k, v in manifest["params"].items()]
        )
        builder = f"FaissIndex.{manifest['kind']}({args})"
    return (
        f"delete {folder}, then build {builder}, add(ids, vectors) from the corpus embeddings "
        "(re-encode or use the embedding cache) and save() it again"
    )
