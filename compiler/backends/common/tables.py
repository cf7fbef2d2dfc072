"""Constant tables that the C and WebGPU kernels of table-driven ops share: TfIdfVectorizer's n-gram pool and
TreeEnsemble's node and leaf arrays. Each backend only formats the numbers (C literals, WGSL words)."""
from __future__ import annotations

from ...pyrt import rt


def tfidf_grams(a: dict) -> dict | str:
    """TfIdfVectorizer's integer pool as one entry per n-gram: pool (ints), off and lens (where each n-gram
    starts in the pool and its length), outs (its output index), weights (floats; 1 when absent). A string
    explaining why not (string tokens, an empty pool, ngram_indexes of another length)."""
    if a["pool_int64s"] is None:
        return "string tokens"
    pool = [int(v) for v in a["pool_int64s"]]
    starts = list(a["ngram_counts"]) + [len(pool)]
    off, lens = [], []
    for n in range(1, len(starts)):
        for j in range(starts[n - 1], starts[n], n):
            off.append(j)
            lens.append(n)
    outs = [int(v) for v in a["ngram_indexes"]]
    if not off or len(outs) != len(off):
        return "an empty pool or ngram_indexes of another length"
    weights = [float(w) for w in a["weights"]] if a["weights"] is not None else [1.0] * len(off)
    return {"pool": pool, "off": off, "lens": lens, "outs": outs, "weights": weights}


def tree_arrays(a: dict, n_features: int) -> dict:
    """The checked tables of a TreeEnsemble node (bornrt.tree_tables) as flat lists: ints for ids, modes,
    flags and targets; floats for split, weight and members (the MEMBER sets back to back, node k's at
    mbeg[k] .. mbeg[k] + mlen[k]); single[r], the leaf of a tree that is one leaf, else -1; agg, NN, NL, NT.
    Raises rt.BornrtError for tables that fail the checks."""
    t = rt.tree_tables(a, n_features)
    nn = len(t["mode"])
    mbeg, mlen, members = [0] * nn, [0] * nn, []
    for k, vals in t["sets"].items():
        mbeg[k], mlen[k] = len(members), len(vals)
        members += [float(v) for v in vals]
    single = [int(t["true_id"][r]) if t["true_leaf"][r] and t["false_leaf"][r] and t["true_id"][r] == t["false_id"][r]
              else -1 for r in t["roots"].tolist()]
    ints = lambda v: [int(x) for x in v]  # noqa: E731
    return {"NN": nn, "NL": len(t["weight"]), "NT": int(a["n_targets"]), "agg": int(a["aggregate_function"]),
            "feature": ints(t["feature"]), "mode": ints(t["mode"]), "miss": ints(t["missing_true"] != 0),
            "true_id": ints(t["true_id"]), "false_id": ints(t["false_id"]), "true_leaf": ints(t["true_leaf"] != 0),
            "false_leaf": ints(t["false_leaf"] != 0), "target": ints(t["target"]), "roots": ints(t["roots"]),
            "single": single, "mbeg": mbeg, "mlen": mlen, "split": [float(v) for v in t["split"]],
            "weight": [float(v) for v in t["weight"]], "members": members}
