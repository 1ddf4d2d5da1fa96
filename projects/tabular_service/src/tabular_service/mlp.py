"""A small tabular MLP trained with PyTorch Lightning, served as plain numpy.

Architecture: one embedding per categorical field (dimension min(8, (k + 1) // 2) for k
categories: enough for 50 states, tiny for the 2 terms), concatenated with the standardised
numerics, then two hidden ReLU layers with dropout and one logit.

Loss: plain binary cross-entropy, deliberately *without* `pos_weight`. Up-weighting the 5 %
defaults would shift every logit by log(pos_weight) and make the outputs stop being
probabilities; the ranking would hardly change, but the calibration curve, log-loss, Brier
score and the cost-based threshold all assume calibrated probabilities. The class imbalance is
handled where it belongs: by the threshold chosen from the stated costs.

Training is deterministic (seed + `deterministic=True`, CPU, single-process loading) and
quiet. Afterwards the weights are copied into `NumpyMLPScorer`, whose eval-mode forward pass
(dropout is the identity then) is a handful of numpy operations: the service never imports
torch, and a single row scores in microseconds. torch and lightning are imported only inside
`train_mlp`, so importing this module is free.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tabular_service.features import EncodedBatch, FeatureEncoder
from tabular_service.schema import CATEGORICAL, NUMERIC
from tabular_service.scorers import sigmoid


@dataclass(frozen=True)
class MLPConfig:
    """Hyper-parameters of the MLP (small on purpose: 5,900 training rows, ~300 defaults)."""

    hidden: tuple[int, int] = (64, 32)
    dropout: float = 0.2
    lr: float = 2e-3
    weight_decay: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 60
    patience: int = 6


def embedding_dim(n_categories: int) -> int:
    """The embedding width for a field with `n_categories` values."""
    return min(8, (n_categories + 1) // 2)


@dataclass
class NumpyMLPScorer:
    """The trained MLP's eval-mode forward pass in numpy (float64)."""

    embeddings: list[np.ndarray]  # one (k_j, d_j) table per categorical field
    layers: list[tuple[np.ndarray, np.ndarray]]  # (W (out, in), b (out,)) per Linear
    info: dict[str, Any] = field(default_factory=dict)

    def logit(self, batch: EncodedBatch) -> np.ndarray:
        parts = [batch.numeric]
        parts += [table[batch.codes[:, j]] for j, table in enumerate(self.embeddings)]
        h = np.concatenate(parts, axis=1)
        for W, b in self.layers[:-1]:
            h = np.maximum(h @ W.T + b, 0.0)
        W, b = self.layers[-1]
        return (h @ W.T + b)[:, 0]

    def score(self, batch: EncodedBatch) -> np.ndarray:
        return sigmoid(self.logit(batch))


def _build_network(encoder: FeatureEncoder, config: MLPConfig):
    """The torch module (built lazily so the import stays inside training)."""
    import torch
    from torch import nn

    class TabularMLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            sizes = [len(encoder.vocabularies[name]) for name in CATEGORICAL]
            self.embeddings = nn.ModuleList(nn.Embedding(k, embedding_dim(k)) for k in sizes)
            width = len(NUMERIC) + sum(embedding_dim(k) for k in sizes)
            h1, h2 = config.hidden
            self.body = nn.Sequential(
                nn.Linear(width, h1),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(h1, h2),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(h2, 1),
            )

        def forward(self, numeric: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
            parts = [numeric] + [emb(codes[:, j]) for j, emb in enumerate(self.embeddings)]
            return self.body(torch.cat(parts, dim=1)).squeeze(1)

    return TabularMLP()


def _lightning_module(network, config: MLPConfig):
    import lightning as L
    import torch

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.net = network
            self.loss = torch.nn.BCEWithLogitsLoss()
            self.best_loss = float("inf")
            self.best_state: dict | None = None
            self.best_epoch = -1

        def training_step(self, batch, batch_idx):
            numeric, codes, y = batch
            loss = self.loss(self.net(numeric, codes), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def validation_step(self, batch, batch_idx):
            numeric, codes, y = batch
            self.log("val_loss", self.loss(self.net(numeric, codes), y), on_epoch=True)

        def on_validation_epoch_end(self) -> None:
            # Keep the best weights in memory: early stopping alone would return the last ones.
            loss = float(self.trainer.callback_metrics["val_loss"])
            if not self.trainer.sanity_checking and loss < self.best_loss:
                self.best_loss, self.best_epoch = loss, self.current_epoch
                self.best_state = copy.deepcopy(self.net.state_dict())

        def configure_optimizers(self):
            return torch.optim.AdamW(
                self.parameters(), lr=config.lr, weight_decay=config.weight_decay
            )

    return Module()


def train_mlp(
    encoder: FeatureEncoder,
    train: tuple[EncodedBatch, np.ndarray],
    valid: tuple[EncodedBatch, np.ndarray],
    *,
    config: MLPConfig = MLPConfig(),
    seed: int = 0,
    return_network: bool = False,
):
    """Train on `train`, early-stop on the validation loss, return a NumpyMLPScorer.

    With `return_network=True` returns (scorer, torch network in eval mode), for tests that
    compare the numpy forward pass with torch's.
    """
    import lightning as L
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 64-unit MLP gains nothing from threads; others share the cores
    try:
        L.seed_everything(seed, workers=True, verbose=False)

        def loader(data: tuple[EncodedBatch, np.ndarray], shuffle: bool) -> DataLoader:
            batch, y = data
            tensors = TensorDataset(
                torch.as_tensor(batch.numeric, dtype=torch.float32),
                torch.as_tensor(batch.codes, dtype=torch.long),
                torch.as_tensor(y, dtype=torch.float32),
            )
            size = config.batch_size if shuffle else len(y)
            return DataLoader(tensors, batch_size=size, shuffle=shuffle)

        network = _build_network(encoder, config)
        module = _lightning_module(network, config)
        trainer = L.Trainer(
            accelerator="cpu",
            devices=1,
            max_epochs=config.max_epochs,
            deterministic=True,
            callbacks=[L.pytorch.callbacks.EarlyStopping("val_loss", patience=config.patience)],
            logger=False,
            enable_checkpointing=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
        )
        start = time.perf_counter()
        with warnings.catch_warnings():
            # Lightning 2.6 on torch 2.13 warns about its own use of a deprecated pytree API.
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            trainer.fit(module, loader(train, shuffle=True), loader(valid, shuffle=False))
        if module.best_state is not None:
            network.load_state_dict(module.best_state)
        network.eval()
        info = {
            "epochs": trainer.current_epoch,
            "best_epoch": module.best_epoch,
            "best_val_loss": module.best_loss,
            "fit_seconds": time.perf_counter() - start,
        }
        scorer = export_numpy(network, info)
    finally:
        torch.set_num_threads(threads)
    return (scorer, network) if return_network else scorer


def export_numpy(network, info: dict[str, Any] | None = None) -> NumpyMLPScorer:
    """Copy a trained TabularMLP's weights into a NumpyMLPScorer (float64)."""
    from torch import nn

    def array(t) -> np.ndarray:
        return t.detach().cpu().numpy().astype(np.float64)

    embeddings = [array(e.weight) for e in network.embeddings]
    layers = [(array(m.weight), array(m.bias)) for m in network.body if isinstance(m, nn.Linear)]
    return NumpyMLPScorer(embeddings, layers, dict(info or {}))


def torch_probabilities(network, batch: EncodedBatch) -> np.ndarray:
    """The torch network's eval-mode probabilities (reference for the numpy export)."""
    import torch

    network.eval()
    with torch.no_grad():
        logits = network(
            torch.as_tensor(batch.numeric, dtype=torch.float32),
            torch.as_tensor(batch.codes, dtype=torch.long),
        )
    return torch.sigmoid(logits).double().numpy()
