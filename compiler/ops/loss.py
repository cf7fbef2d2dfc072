"""Losses: NegativeLogLikelihoodLoss (opsets 12-22) and SoftmaxCrossEntropyLoss (12-13).

Source: ONNX spec. Per element loss = -input[n, target[n, d..], d..] * weight[target]; ``ignore_index``
targets contribute zero and no weight; ``reduction`` none / sum / mean (mean divides by the summed weights).
"""
from __future__ import annotations

import numpy as np

from .registry import register


def nll(logp: np.ndarray, target: np.ndarray, weight, ignore_index, reduction: str) -> np.ndarray:
    """Negative log-likelihood of ``logp`` (N, C, d...) at integer ``target`` (N, d...)."""
    c = logp.shape[1]
    t = target.astype(np.int64)
    ignored = (t == ignore_index) if ignore_index is not None else np.zeros(t.shape, dtype=bool)
    safe = np.where(ignored, 0, t)
    picked = np.take_along_axis(logp, np.expand_dims(safe, 1), axis=1).squeeze(1)
    w = np.ones(c, dtype=logp.dtype) if weight is None else weight
    wt = np.where(ignored, 0, w[safe]).astype(logp.dtype)
    loss = -picked * wt
    if reduction == "none":
        return loss
    if reduction == "sum":
        return np.array(loss.sum(), dtype=logp.dtype)
    den = wt.sum()
    return np.array(loss.sum() / den if den != 0 else 0.0, dtype=logp.dtype)


@register("NegativeLogLikelihoodLoss", attrs={"ignore_index": None, "reduction": "mean"}, versions="12-22")
def ref_negativeloglikelihoodloss(ctx, x, target, weight=None):
    return nll(x, target, weight, ctx.attrs["ignore_index"], ctx.attrs["reduction"]).astype(x.dtype)


@register("SoftmaxCrossEntropyLoss", attrs={"ignore_index": None, "reduction": "mean"}, versions="12-13")
def ref_softmaxcrossentropyloss(ctx, scores, labels, weights=None):
    s = scores.astype(np.float64)
    m = s.max(axis=1, keepdims=True)
    logp = s - m - np.log(np.exp(s - m).sum(axis=1, keepdims=True))
    loss = nll(logp, labels, None if weights is None else weights.astype(np.float64),
               ctx.attrs["ignore_index"], ctx.attrs["reduction"]).astype(scores.dtype)
    return (loss, logp.astype(scores.dtype)) if ctx.n_outputs > 1 else loss
