"""Contrastive losses of self-supervised pre-training, as pure functions of embeddings."""

from __future__ import annotations

import torch
from torch import nn


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.5) -> torch.Tensor:
    r"""NT-Xent, the normalised temperature-scaled cross-entropy of SimCLR (Chen et al.,
    ICML 2020), for two views ``z1``, ``z2`` of shape ``(N, d)`` (row ``i`` of each is an
    augmented view of example ``i``).

    Stack the views into :math:`2N` rows, :math:`u_k = z_k / \lVert z_k \rVert`, with
    :math:`s_{kl} = u_k^\top u_l / \tau`; the positive of row :math:`k` is the other view
    of the same example, :math:`p(k) = k \pm N`. Then

    .. math::
        \ell_k = -\log \frac{\exp s_{k,p(k)}}{\sum_{l \ne k} \exp s_{kl}}, \qquad
        L = \frac{1}{2N} \sum_{k=1}^{2N} \ell_k,

    so every row has one positive and :math:`2N - 2` negatives (both views of every
    other example). A scalar tensor.
    """
    if z1.shape != z2.shape or z1.dim() != 2:
        raise ValueError(f"nt_xent: views of shape (N, d) each, got {z1.shape} and {z2.shape}")
    n = z1.shape[0]
    u = nn.functional.normalize(torch.cat([z1, z2]), dim=1)
    sim = u @ u.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=sim.device), float("-inf"))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(sim.device)
    return nn.functional.cross_entropy(sim, positive)


def info_nce(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    r"""The in-batch InfoNCE of unsupervised SimCSE (Gao et al., EMNLP 2021) for anchors
    ``a`` and their positives ``b``, both ``(N, d)``: with the cosine similarity
    :math:`s_{ij} = \cos(a_i, b_j) / \tau`,

    .. math::
        L = -\frac1N \sum_{i=1}^N \log \frac{\exp s_{ii}}{\sum_{j=1}^N \exp s_{ij}},

    the other examples' positives being the negatives (sentence-transformers'
    ``MultipleNegativesRankingLoss`` with scale :math:`1/\tau`). A scalar tensor.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(f"info_nce: (N, d) each, got {a.shape} and {b.shape}")
    sim = nn.functional.normalize(a, dim=1) @ nn.functional.normalize(b, dim=1).T
    return nn.functional.cross_entropy(sim / temperature, torch.arange(len(a), device=a.device))


__all__ = ["info_nce", "nt_xent"]
