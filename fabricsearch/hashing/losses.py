"""DVSH loss terms (§4.2–4.4): KL divergence, bi-half quantisation and the list-wise loss; and
the NT-Xent instance-discrimination term of self-supervised training (`hashing.objectives`).

Decisions where the paper is ambiguous (reasons in docs/dvsh.md):

* Eq. 12 prints −KLD; we *minimise* +KLD = ½ Σ_j (μ² + σ² − 1 − log σ²), summed over latent
  dimensions and averaged over the batch.
* Eq. 15's balance term |Σ u| is applied per bit over the batch (Li & van Gemert's bi-half:
  each bit is +1 for half of the images) by default; ``balance="code"`` gives the literal
  per-code form over K.
* Eq. 16–17: the upper limit 5 is a typo for n; φ(d) = exp(−d/τ) falls with the relaxed
  Hamming distance d so the most similar image is ranked first; ties in S use the Breslow
  treatment (an item's denominator sums over every item not ranked strictly above it,
  tie-mates included), which makes the loss independent of the order inside a tie.
"""

from __future__ import annotations

import torch


def kld_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """+KL(N(μ, σ²) ‖ N(0, I)) summed over dimensions, mean over the batch (minimised)."""
    mu = mu.float()
    logvar = logvar.float()
    per_item = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)
    return per_item.mean()


def quantization_loss(u: torch.Tensor, balance: str = "batch") -> torch.Tensor:
    """Eq. 15 on relaxed codes u ∈ (−1, 1): Σ_k (|u_k| − 1)² + balance term, mean over the batch.

    balance="batch": Σ_k |mean_i u_ik| (each bit half +1 over the batch, as in bi-half);
    balance="code":  |Σ_k u_ik| per code (literal Eq. 15), averaged over the batch;
    balance="none":  no balance term.
    """
    u = u.float()
    push = (u.abs() - 1.0).pow(2).sum(dim=1).mean()
    if balance == "batch":
        bal = u.mean(dim=0).abs().sum()
    elif balance == "code":
        bal = u.sum(dim=1).abs().mean()
    elif balance == "none":
        bal = u.new_zeros(())
    else:
        raise ValueError(f"unknown balance mode {balance!r}")
    return push + bal


def relaxed_hamming(u: torch.Tensor) -> torch.Tensor:
    """(N, K) relaxed codes → (N, N) relaxed Hamming distances (K − ⟨u_i, u_j⟩) / 2.

    Equal to the Hamming distance when u is ±1."""
    u = u.float()
    k = u.shape[1]
    return 0.5 * (k - u @ u.T)


def listwise_loss(
    u: torch.Tensor,
    S: torch.Tensor,
    tau: float | None = None,
    tie_eps: float = 1e-6,
    reduction: str = "mean",
) -> torch.Tensor:
    """Plackett–Luce negative log-likelihood of the order given by S (Eq. 16–17), Breslow ties.

    Every image of the batch is the anchor in turn; the n − 1 other images are ranked by
    decreasing S[anchor]. With logits s_j = −d_j / τ (d = relaxed Hamming distance) the loss
    of one anchor is −Σ_j [s_j − log Σ_{k: S_k ≤ S_j} exp(s_k)]; the result is the mean over
    anchors (``reduction="none"``: the (n,) per-anchor losses). τ defaults to K / 8 so logits
    span about 8 nats whatever the code length. S values within `tie_eps` are tied.
    """
    n, k = u.shape
    if n < 2:
        return u.sum() * 0.0
    if tau is None:
        tau = k / 8.0
    d = relaxed_hamming(u)
    logits = -d / tau  # (n, n): anchor a, item j
    S = S.float()
    eye = torch.eye(n, dtype=torch.bool, device=u.device)
    # risk[a, j, m] = item m is in item j's denominator for anchor a: S[a, m] ≤ S[a, j] (ties
    # included) and m is not the anchor itself.
    risk = S[:, None, :] <= S[:, :, None] + tie_eps
    # risk[a, j, j] is always set so no row is empty (keeps gradients finite for j = a, which
    # is masked out below anyway).
    risk = (risk & ~eye[:, None, :]) | eye[None, :, :]
    masked = logits[:, None, :].expand(n, n, n).masked_fill(~risk, float("-inf"))
    log_denominator = torch.logsumexp(masked, dim=2)  # (n, n)
    terms = (logits - log_denominator).masked_fill(eye, 0.0)
    per_anchor = -terms.sum(dim=1)
    return per_anchor if reduction == "none" else per_anchor.mean()


def classification_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the images whose class is known (−1 = unknown, and a class the
    head does not have, e.g. added to the taxonomy later, counts as unknown); 0 if none is."""
    target = target.to(logits.device).long()
    known = (target >= 0) & (target < logits.shape[1])
    if not bool(known.any()):
        return logits.sum() * 0.0
    return torch.nn.functional.cross_entropy(logits[known].float(), target[known])


def nt_xent_loss(u: torch.Tensor, groups: torch.Tensor, temperature: float = 0.2) -> torch.Tensor:
    """Multi-positive NT-Xent (SimCLR; SupCon form when a group has more than two members).

    `u` (N, D) are embeddings (here relaxed codes), `groups` (N,) which items show the same
    instance. Cosine similarities / temperature; each anchor's loss is the mean over its
    positives of −log softmax over all other items. Anchors without a positive are ignored."""
    z = torch.nn.functional.normalize(u.float(), dim=1)
    logits = z @ z.T / temperature
    n = z.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(eye, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (groups[:, None] == groups[None, :]) & ~eye
    n_pos = pos.sum(dim=1)
    has = n_pos > 0
    if not bool(has.any()):
        return u.sum() * 0.0
    per_anchor = -(log_prob.masked_fill(~pos, 0.0).sum(dim=1)[has] / n_pos[has])
    return per_anchor.mean()
