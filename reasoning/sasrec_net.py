"""The SASRec network (Kang & McAuley, 2018): a causal transformer over item sequences.

Item index 0 is padding; real items are 1..n_items. Sequences are left-padded to
``max_len``. Each block is pre-norm self-attention (causal, padding keys masked) and a
position-wise feed-forward net, both with dropout and residual connections; padded
positions are zeroed after every block, and a final layer norm gives the hidden states.
A position's score for item i is ``<h_t, E[i]>`` with the shared item embedding E.

With ``readings`` (fixed per-item vectors, row 0 for padding: the LLM's reading of each
item, `reasoning.item_content`), E[i] = id_emb[i] + P r_i with a learned projection P,
so an item is also placed by what its title, year and genres say.

    net = SASRecNet(n_items=1682, hidden=64, blocks=2, heads=1, dropout=0.2, max_len=200)
    h = net(seqs)                       # (batch, max_len, hidden)
    logits = net.score(h[:, -1], items) # items: (batch, k) -> (batch, k)
    scores = next_item_scores(net, [np.array([3, 7])], np.array([[1, 2, -1]]), popularity)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F


class _Block(nn.Module):
    def __init__(self, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(f"hidden ({hidden}) must be divisible by heads ({heads})")
        self.heads = heads
        self.dropout = dropout
        self.attn_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.ffn_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.ffn = nn.Sequential(
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.Dropout(dropout),
        )
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, allowed: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        batch, length, hidden = x.shape
        q, k, v = self.qkv(self.attn_norm(x)).chunk(3, dim=-1)

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, hidden // self.heads).transpose(1, 2)

        attended = F.scaled_dot_product_attention(
            split(q),
            split(k),
            split(v),
            attn_mask=allowed,
            dropout_p=self.dropout if self.training else 0.0,
        )
        attended = attended.transpose(1, 2).reshape(batch, length, hidden)
        x = x + self.resid_drop(self.out(attended))
        x = x + self.ffn(self.ffn_norm(x))
        return x * keep


class SASRecNet(nn.Module):
    """Embeddings + positional embeddings + causal transformer blocks + final layer norm."""

    readings: torch.Tensor  # (n_items + 1, d) buffer, only with ``readings``

    def __init__(
        self,
        n_items: int,
        hidden: int,
        blocks: int,
        heads: int,
        dropout: float,
        max_len: int,
        readings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, hidden)
        self.emb_drop = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(_Block(hidden, heads, dropout) for _ in range(blocks))
        self.final_norm = nn.LayerNorm(hidden, eps=1e-8)
        self.scale = hidden**0.5
        nn.init.xavier_normal_(self.item_emb.weight[1:])
        nn.init.xavier_normal_(self.pos_emb.weight)
        self.reading_proj: nn.Linear | None = None
        if readings is not None:
            if readings.shape[0] != n_items + 1:
                raise ValueError(f"readings have {readings.shape[0]} rows, need {n_items + 1}")
            self.register_buffer("readings", readings.float())
            self.reading_proj = nn.Linear(readings.shape[1], hidden, bias=False)

    def embed(self, items: torch.Tensor) -> torch.Tensor:
        """E[items]: the id embedding, plus the projected reading when the net has them."""
        out = self.item_emb(items)
        if self.reading_proj is not None:
            out = out + self.reading_proj(self.readings[items])
        return out

    def forward(self, seqs: torch.Tensor) -> torch.Tensor:
        """Hidden states (batch, L, hidden) for left-padded item index sequences (batch, L)."""
        length = seqs.shape[1]
        if length > self.max_len:
            raise ValueError(f"sequence length {length} exceeds max_len {self.max_len}")
        keep = (seqs > 0).unsqueeze(-1).to(self.item_emb.weight.dtype)
        positions = torch.arange(self.max_len - length, self.max_len, device=seqs.device)
        x = self.embed(seqs) * self.scale + self.pos_emb(positions)
        x = self.emb_drop(x) * keep
        causal = torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
        # a query may see earlier real items; a padded query sees itself (its output is
        # zeroed anyway) so no attention row is empty.
        valid_key = (seqs > 0)[:, None, None, :]
        diagonal = torch.eye(length, dtype=torch.bool, device=seqs.device)
        allowed = (causal & valid_key) | diagonal
        for block in self.blocks:
            x = block(x, allowed, keep)
        return self.final_norm(x) * keep

    def score(self, hidden: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """<hidden, E[items]> for hidden (..., H) and items (..., k) -> (..., k)."""
        return (self.embed(items) * hidden.unsqueeze(-2)).sum(-1)


def left_pad(rows: Sequence[np.ndarray], length: int) -> np.ndarray:
    """Model-index rows (0 is padding) cut to their newest ``length`` and right-aligned in
    an (n, length) int64 array.

    >>> left_pad([np.array([4, 5, 6]), np.array([], dtype=np.int64)], 2).tolist()
    [[5, 6], [0, 0]]
    """
    out = np.zeros((len(rows), length), dtype=np.int64)
    for r, row in enumerate(rows):
        tail = row[-length:]
        if len(tail):
            out[r, length - len(tail) :] = tail
    return out


def next_item_scores(
    net: SASRecNet,
    sequences: Sequence[np.ndarray],
    candidates: np.ndarray,
    popularity: np.ndarray,
    batch: int = 256,
) -> np.ndarray:
    """(n, k) float64 scores of the candidate items after each sequence, in eval mode.

    ``sequences``: 0-based item indices, oldest first, the newest ``net.max_len`` read;
    ``candidates``: (n, k) 0-based item indices, -1 for an item the model never saw (it
    scores as padding; callers rank it last with ``reasoning.collaborative.fill_unknown``).
    A row with an empty sequence gets its candidates' ``popularity`` instead.
    """
    net.eval()
    scores = np.zeros(candidates.shape)
    shifted = [np.asarray(s, dtype=np.int64) + 1 for s in sequences]
    with torch.no_grad():
        for begin in range(0, len(shifted), batch):
            chunk = shifted[begin : begin + batch]
            length = max(1, min(net.max_len, max(len(s) for s in chunk)))
            last = net(torch.from_numpy(left_pad(chunk, length)))[:, -1]
            items = torch.from_numpy(candidates[begin : begin + batch] + 1)  # -1 -> padding
            scores[begin : begin + batch] = net.score(last, items).double().numpy()
    for row, seq in enumerate(shifted):
        if len(seq) == 0:
            scores[row] = popularity[np.maximum(candidates[row], 0)]
    return scores
