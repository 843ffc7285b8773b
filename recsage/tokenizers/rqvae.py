"""RQ-VAE (TIGER): an MLP autoencoder whose latent is residual-quantized, trained on CPU.

Encoder d → 512 → 256 → 128 → latent (32), residual quantizer L × K with k-means
initialisation, commitment β = 0.25, straight-through gradients, and dead-code reset (a code
unused for an epoch is moved onto a random latent from the batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsage.core.seeding import set_seed
from recsage.tokenizers.base import Quantizer, check_vectors
from recsage.tokenizers.rqkmeans import kmeans, nearest


@dataclass(frozen=True)
class RQVAEConfig:
    n_levels: int = 3
    n_codes: int = 256
    latent_dim: int = 32
    hidden_dims: tuple[int, ...] = (512, 256, 128)
    beta: float = 0.25
    epochs: int = 300
    batch_size: int = 1024
    lr: float = 1e-3
    seed: int = 0
    progress: bool = False


def _mlp(dims: list[int]):
    import torch.nn as nn

    layers = []
    for i in range(len(dims) - 1):
        layers.append(nn.Linear(dims[i], dims[i + 1]))
        if i < len(dims) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class RQVAETokenizer(Quantizer):
    config_class = RQVAEConfig
    registry_name = "rqvae"

    def _build(self, in_dim: int):
        c = self.config
        self.encoder_ = _mlp([in_dim, *c.hidden_dims, c.latent_dim])
        self.decoder_ = _mlp([c.latent_dim, *reversed(c.hidden_dims), in_dim])

    def _quantize(self, z, books):
        """Returns codes (n, L), quantized latent, and the commitment/codebook loss."""
        import torch

        residual = z
        zq = torch.zeros_like(z)
        codes, loss = [], z.new_zeros(())
        for book in books:
            d2 = (residual.pow(2).sum(1, keepdim=True) - 2 * residual @ book.T + book.pow(2).sum(1)[None, :])
            idx = d2.argmin(1)
            q = book[idx]
            loss = loss + (q - residual.detach()).pow(2).mean() + self.config.beta * (q.detach() - residual).pow(2).mean()
            zq = zq + q
            residual = residual - q.detach()
            codes.append(idx)
        return torch.stack(codes, 1), zq, loss

    def fit(self, x: np.ndarray) -> RQVAETokenizer:
        import torch
        from tqdm.auto import tqdm

        c = self.config
        x = self._check_fit_input(x)
        set_seed(c.seed)
        torch.manual_seed(c.seed)
        self._build(x.shape[1])
        data = torch.from_numpy(x)
        # k-means initialisation of every level on the untrained encoder's latents
        with torch.no_grad():
            residual = self.encoder_(data).numpy().astype(np.float32)
        books = []
        for level in range(c.n_levels):
            cent = kmeans(residual, c.n_codes, 20, c.seed + level)
            residual = residual - cent[nearest(residual, cent)[0]]
            books.append(torch.nn.Parameter(torch.from_numpy(cent)))
        self.books_ = torch.nn.ParameterList(books)
        params = list(self.encoder_.parameters()) + list(self.decoder_.parameters()) + list(self.books_.parameters())
        opt = torch.optim.Adam(params, lr=c.lr)
        gen = torch.Generator().manual_seed(c.seed)
        self.history_ = []
        for _ in tqdm(range(c.epochs), desc="rqvae", disable=not c.progress):
            perm = torch.randperm(len(data), generator=gen)
            used = [torch.zeros(c.n_codes, dtype=torch.bool) for _ in range(c.n_levels)]
            total = 0.0
            for lo in range(0, len(data), c.batch_size):
                batch = data[perm[lo : lo + c.batch_size]]
                z = self.encoder_(batch)
                codes, zq, q_loss = self._quantize(z, self.books_)
                z_st = z + (zq - z).detach()  # straight-through
                recon = self.decoder_(z_st)
                loss = (recon - batch).pow(2).sum(1).mean() + q_loss
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(batch)
                for lv in range(c.n_levels):
                    used[lv][codes[:, lv]] = True
            self.history_.append(total / len(data))
            self._reset_dead_codes(data, used, gen)
        self.fitted_ = True
        return self

    def _reset_dead_codes(self, data, used, gen) -> None:
        import torch

        with torch.no_grad():
            z = self.encoder_(data)
            residual = z
            for lv, book in enumerate(self.books_):
                dead = (~used[lv]).nonzero().flatten()
                if len(dead):
                    pick = torch.randint(len(residual), (len(dead),), generator=gen)
                    book.data[dead] = residual[pick]
                idx = ((residual.pow(2).sum(1, keepdim=True) - 2 * residual @ book.T + book.pow(2).sum(1)[None, :])).argmin(1)
                residual = residual - book[idx]

    def _latent(self, x: np.ndarray):
        import torch

        with torch.no_grad():
            return self.encoder_(torch.from_numpy(check_vectors(x)))

    def transform(self, x: np.ndarray) -> np.ndarray:
        import torch

        self._check_fitted()
        with torch.no_grad():
            codes, _, _ = self._quantize(self._latent(x), self.books_)
        return codes.numpy().astype(np.int64)

    def reconstruct(self, codes: np.ndarray) -> np.ndarray:
        import torch

        self._check_fitted()
        with torch.no_grad():
            zq = sum(self.books_[lv][torch.from_numpy(codes[:, lv])] for lv in range(self.n_levels))
            return self.decoder_(zq).numpy()

    def candidate_last_codes(self, x: np.ndarray, codes: np.ndarray, k: int) -> np.ndarray:
        import torch

        with torch.no_grad():
            r = self._latent(x)
            for lv in range(self.n_levels - 1):
                r = r - self.books_[lv][torch.from_numpy(codes[:, lv])]
            _, d2 = nearest(r.numpy(), self.books_[-1].detach().numpy())
        return np.argsort(d2, axis=1, kind="stable")[:, :k]

    def _state(self) -> dict[str, np.ndarray]:
        state = {f"encoder.{k}": v.detach().numpy() for k, v in self.encoder_.state_dict().items()}
        state |= {f"decoder.{k}": v.detach().numpy() for k, v in self.decoder_.state_dict().items()}
        state |= {f"book.{i}": b.detach().numpy() for i, b in enumerate(self.books_)}
        return state

    def _load_state(self, tensors: dict[str, np.ndarray]) -> None:
        import torch

        in_dim = tensors["encoder.0.weight"].shape[1]
        self._build(in_dim)
        self.encoder_.load_state_dict({k[8:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("encoder.")})
        self.decoder_.load_state_dict({k[8:]: torch.from_numpy(v) for k, v in tensors.items() if k.startswith("decoder.")})
        self.books_ = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(tensors[f"book.{i}"])) for i in range(self.n_levels)])
