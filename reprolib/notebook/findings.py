"""What the records say about a number: convergence, frozen hidden activity, misses against the paper and why.

Every finding is computed from the run records when the page is built; none is typed in.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Callable, Mapping, Sequence

import pandas as pd

from reprolib.notebook.runs import Runs
from reprolib.notebook.tables import NOT_RUN, is_missing


def convergence_epochs(curve: pd.Series, fractions: Sequence[float] = (0.95, 0.98, 1.0)) -> dict:
    """First epoch at which a (mean) learning curve reaches each fraction of its final value.

    ``curve``: accuracy indexed by epoch (epoch 0 = untrained, when recorded). The BRF paper's Table 2 / the
    dots of its convergence figure read the curve this way; 100 % is the first epoch at or above the last value.
    """
    curve = curve.dropna().sort_index()
    if curve.empty:
        return {f: math.nan for f in fractions}
    final = curve.iloc[-1]
    out = {}
    for fraction in fractions:
        reached = curve[curve >= fraction * final - 1e-9]
        out[fraction] = int(reached.index[0]) if not reached.empty else math.nan
    return out


def frozen_since(history: Sequence[Mapping], key: str = "test_activity", rel_tol: float = 1e-3,
                 min_epochs: int = 20) -> int | None:
    """The epoch from which ``key`` (by default the hidden layer's spike activity) stays within ``rel_tol`` of its
    last value to the end of the run, when that lasts ``min_epochs`` epochs or more; else None.

    A recurrent layer whose neurons all sit far above or far below threshold spikes in the same pattern whatever
    its input, and its surrogate gradients vanish: its activity then stops changing while the readout goes on
    learning. This finds such runs in their records."""
    values = [(h["epoch"], h.get(key)) for h in history if h.get("epoch", 0) > 0 and h.get(key) is not None]
    if not values:
        return None
    last = values[-1][1]
    since = None
    for epoch, value in reversed(values):
        if abs(value - last) > rel_tol * max(abs(last), 1e-12):
            break
        since = epoch
    return since if since is not None and values[-1][0] - since + 1 >= min_epochs else None


def _fit_at(history: Sequence[Mapping], epoch: int, threshold: float = 0.995) -> bool:
    """Whether the run's training accuracy had reached ``threshold`` by ``epoch`` (from its history)."""
    return any(h.get("epoch", 0) <= epoch and (h.get("train_accuracy") or 0.0) >= threshold for h in history)


def _frozen_runs(table: pd.DataFrame) -> tuple[list[tuple[Any, int]], list[tuple[Any, int]]]:
    """``(seed, epoch)`` of the runs in a records table whose hidden activity froze (:func:`frozen_since`): those
    that froze before they fit their training set, and those that froze after it. Activity that stops changing
    once the training set is fit says nothing about the neurons: the loss has no gradient left to give."""
    before, after = [], []
    for seed, history in zip(table["seed"], table["history"]):
        epoch = frozen_since(history)
        if epoch is not None:
            (after if _fit_at(history, epoch) else before).append((seed, epoch))
    return before, after


def _mean_spread(values: pd.Series) -> str:
    """``mean ± sample std`` with two decimals (the mean alone for one value)."""
    return f"{values.mean():.2f}" + (f" ± {values.std():.2f}" if len(values) > 1 else "")


def still_improving(history: Sequence[Mapping], key: str = "test_accuracy", window_fraction: float = 0.125,
                    threshold: float = 0.005) -> float | None:
    """How much ``key`` (a fraction) rose over the last ``window_fraction`` of a run's epochs, when more than
    ``threshold``; else None. Such a run converged slowly rather than to a worse solution."""
    values = [(h["epoch"], h.get(key)) for h in history if h.get(key) is not None]
    if len(values) < 8:
        return None
    window = max(1, round(window_fraction * values[-1][0]))
    before = [v for epoch, v in values if epoch <= values[-1][0] - window]
    if not before:
        return None
    gain = values[-1][1] - before[-1]
    return gain if gain > threshold else None


def unstable_drops(history: Sequence[Mapping], test_size: int, key: str = "test_accuracy", z: float = 4.0,
                   min_drop: float = 0.02) -> list[tuple[int, float]]:
    """``(epoch, drop)`` for every epoch at which ``key`` (a fraction, measured on a split of ``test_size``
    samples) fell from the epoch before by more than ``min_drop`` and by more than ``z`` standard errors of the
    difference of two binomial proportions on that split, ``sqrt(2 p (1 - p) / test_size)``.

    The standard error is a yardstick of how finely a split that size resolves accuracy (both evaluations use the
    same samples, so it is not the exact noise of the difference): a trained network's accuracy moves a little from
    epoch to epoch, and a fall far beyond that yardstick is the network's (a loss spike), not the split's. On a
    small split (100 samples: several pp per standard error) only large falls count. Epochs are compared with the
    epoch just before; an epoch without a number breaks the chain (no fall is read across it)."""
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Integral) or test_size <= 0:
        raise ValueError(f"test_size = {test_size!r} is not allowed; expected a positive whole number of samples")
    values = {h["epoch"]: h.get(key) for h in history if h.get("epoch", 0) > 0}
    drops = []
    for epoch in sorted(values):
        before, after = values.get(epoch - 1), values[epoch]
        if before is None or after is None or is_missing(before) or is_missing(after):
            continue
        p = min(max((before + after) / 2, 0.0), 1.0)
        if before - after > max(min_drop, z * math.sqrt(2 * p * (1 - p) / test_size)):
            drops.append((epoch, before - after))
    return drops


def _test_samples(info, test_subset) -> int | None:
    """How many test samples a run evaluated: the data set's test split (``info.test_size``), or the run's
    ``test_subset`` where that is smaller; None where the catalog does not fix the split's size."""
    if info is None or not info.test_size:
        return None
    if test_subset is None or is_missing(test_subset):
        return int(info.test_size)
    return min(int(test_subset), int(info.test_size))


def _run_drops(history: Sequence[Mapping], dataset, test_subset=None) -> tuple[int | None, list[tuple[int, float]]]:
    """``(samples, drops)`` of one run: how many samples it tested (:func:`_test_samples`: its data set's test
    split, or its ``test_subset``; None where the catalog does not fix that split's size) and :func:`unstable_drops`
    of its history on them (``[]`` without a size)."""
    from reprolib.data.catalog import CATALOG  # noqa: PLC0415

    samples = _test_samples(CATALOG.get(str(dataset)), test_subset)
    return samples, (unstable_drops(history, samples) if samples else [])


def _unstable_text(group: pd.DataFrame) -> str:
    """The runs of ``group`` whose test accuracy fell sharply between epochs (:func:`unstable_drops`), each with
    how often, where first and most, and how far the epoch it reports (``selected_epoch``; the last where not
    recorded) sits below its best: a run that reports an epoch in a dip reports less than it had reached."""
    if "dataset" not in group or "history" not in group:
        return ""
    selected = group["selected_epoch"] if "selected_epoch" in group else [None] * len(group)
    subsets = group["test_subset"] if "test_subset" in group else [None] * len(group)
    parts, sizes = [], set()
    for seed, dataset, history, reported, subset in zip(group["seed"], group["dataset"], group["history"], selected,
                                                        subsets):
        samples, drops = _run_drops(history, dataset, subset)
        if not drops:
            continue
        sizes.add(samples)
        worst = max(drops, key=lambda d: d[1])
        times = f"{len(drops)} time{'s' if len(drops) != 1 else ''}"
        part = (f"seed {seed}: {times}, first at epoch {drops[0][0]}, the largest {100 * worst[1]:.2f} pp at epoch "
                f"{worst[0]}")
        scored = {h["epoch"]: h["test_accuracy"] for h in history
                  if h.get("epoch", 0) > 0 and h.get("test_accuracy") is not None}
        best_epoch = max(scored, key=scored.get)
        reported = max(scored) if is_missing(reported) else int(reported)
        if reported in scored and scored[best_epoch] > scored[reported]:
            part += (f"; its best epoch ({best_epoch}) scored {100 * scored[best_epoch]:.2f} %, the epoch it reports "
                     f"({reported}) {100 * scored[reported]:.2f} %")
        parts.append(part)
    if not parts:
        return ""
    size_text = " / ".join(f"{size:,}" for size in sorted(sizes))
    return (f" In {len(parts)} of {len(group)} runs the test accuracy fell from one epoch to the next by more than "
            f"2 pp and by more than four binomial standard errors of the {size_text}-sample test set "
            f"({'; '.join(parts)}): falls far beyond what a test set that size resolves, so the network itself lost "
            "ground it had gained.")


def _miss(name: str, group: pd.DataFrame, reported: float, reported_std: float | None) -> tuple[bool, str]:
    """``(within, text)`` for one cell: ``within`` when the mean test accuracy of ``group`` (percent) is within
    the paper's std (1 pp where it gives none), with ``text`` the short note for the "within" list; else the
    start of a finding: ours, the paper's, by how much."""
    accuracy = group["test_accuracy"].astype(float)
    mean, n = accuracy.mean(), len(accuracy)
    diff = mean - reported
    tolerance = 1.0 if is_missing(reported_std) else float(reported_std)
    runs = f"{n} run{'s' if n != 1 else ''}"
    if abs(diff) <= tolerance:
        return True, f"{name} ({diff:+.2f} pp, {runs})"
    paper_text = f"{reported:.2f}".rstrip("0").rstrip(".") + ("" if is_missing(reported_std) else f" ± {float(reported_std):.1f}")
    return False, (f"**{name}**: ours {_mean_spread(accuracy)} % ({runs}) against the paper's {paper_text} %, "
                   f"{abs(diff):.2f} pp {'below' if diff < 0 else 'above'}"
                   + ("" if is_missing(reported_std) else ", outside its std")
                   + (", within 1 pp." if abs(diff) <= 1 else ", more than 1 pp."))


def _run_signs(group: pd.DataFrame) -> str:
    """What the runs' histories say about a miss: training stopped at a non-finite loss (config
    ``nonfinite_loss = "stop"``), hidden activity frozen (:func:`frozen_since`), sharp falls of the test accuracy
    between epochs (:func:`unstable_drops`), or still improving at the last epoch (:func:`still_improving`)."""
    text, n = "", len(group)
    if "stopped_early" in group:
        stopped = [(seed, dict(info), selected) for seed, info, selected
                   in zip(group["seed"], group["stopped_early"], group.get("selected_epoch", [None] * n))
                   if isinstance(info, tuple)]
        if stopped:
            which = ", ".join(f"seed {seed} in epoch {info['epoch']} (reports epoch {selected})"
                              for seed, info, selected in stopped)
            text += (f" In {len(stopped)} of {n} runs the training loss turned non-finite ({which}); as in the "
                     "source, training stopped there and the run reports its selected epoch before it.")
    frozen, settled = _frozen_runs(group)
    if frozen:
        which = ", ".join(f"seed {seed} from epoch {epoch}" for seed, epoch in frozen)
        text += (f" In {len(frozen)} of {n} runs the hidden layer's mean spike activity on the test set stops "
                 f"changing (from that epoch on it stays within 0.1 % of its final value: {which}): a sign that its "
                 "neurons sit far from threshold, where the surrogate gradient vanishes, so the hidden layer stops "
                 "adapting while the readout learns on.")
    if settled:
        which = ", ".join(f"seed {seed} from epoch {epoch}" for seed, epoch in settled)
        text += (f" In {len(settled)} of {n} runs the hidden activity stops changing only after the run fits its "
                 f"training set ({which}): the loss has no gradient left to give, which says nothing about the "
                 "neurons.")
    text += _unstable_text(group)
    stuck = {seed for seed, _ in frozen + settled}
    slow = [(seed, gain) for seed, gain in zip(group["seed"], map(still_improving, group["history"]))
            if gain is not None and seed not in stuck]
    if slow:
        which = ", ".join(f"seed {seed} (+{100 * gain:.2f} pp)" for seed, gain in slow)
        text += (f" Still rising over the last eighth of training: {which}; such a run converged slowly "
                 "rather than to a worse solution.")
    return text


def _bullets(findings: list[str], within: list[str], label: str = "Within the paper's std") -> str:
    lines = [f"* {text}" for text in findings]
    if within:
        lines.append(f"* {label}: " + ", ".join(within) + ".")
    return "\n".join(lines) if lines else f"*{NOT_RUN}*"


def accuracy_findings(runs: Mapping[str, Runs], paper: pd.DataFrame, released: pd.DataFrame | None = None,
                      by: str = "neuron") -> str:
    """Markdown bullets, computed from the records, for every task and model whose mean test accuracy misses the
    paper's by more than the paper's std (1 pp where it gives none): by how much, how the authors' released logs
    of the same network compare, and which runs are responsible (hidden activity frozen, see :func:`frozen_since`;
    still improving at the last epoch, see :func:`still_improving`). Cells within the std are listed together.

    ``paper``: rows ``task, model, test_accuracy, test_accuracy_std, architecture, note`` (the reference table);
    ``released``: :func:`reprolib.reference.brf_log_selection`-like rows; ``runs``: task -> :class:`Runs` whose
    table has percent accuracies and a ``by`` column whose upper-case labels are the paper's model names."""
    bullets, within = [], []
    for task, task_runs in runs.items():
        table = task_runs.table
        if table.empty:
            continue
        for label, group in table.groupby(by, sort=False):
            model = str(label).upper()
            row = paper[(paper["task"] == task) & (paper["model"] == model)]
            if row.empty or is_missing(row["test_accuracy"].iloc[0]):
                continue
            ok, text = _miss(f"{task} {model}", group, float(row["test_accuracy"].iloc[0]),
                             row["test_accuracy_std"].iloc[0])
            if ok:
                within.append(text)
                continue
            note = row["note"].iloc[0] if "note" in row else None
            if isinstance(note, str) and note:
                text += f" The paper's number does not come from the paper's code: {note} ({row['architecture'].iloc[0]})."
            if released is not None:
                logged = released[(released["task"] == task) & (released["model"] == model)]
                if not logged.empty:
                    m, sd, k = (float(logged[c].iloc[0]) for c in ("test_accuracy_mean", "test_accuracy_std", "runs"))
                    gap = group["test_accuracy"].astype(float).mean() - m
                    text += (f" The authors' released logs of this network, under the same selection rule, give "
                             f"{m:.2f} ± {sd:.2f} % ({k:.0f} runs): ours is {abs(gap):.2f} pp "
                             f"{'below' if gap < 0 else 'above'}, {'within' if abs(gap) <= sd else 'outside'} their std.")
            bullets.append(text + _run_signs(group))
    return _bullets(bullets, within)


def table_findings(table: pd.DataFrame, by: Sequence[str], reported: Callable[[dict], float | None],
                   name: Callable[[dict], str], explain: Callable[[dict, pd.DataFrame], str] | None = None) -> str:
    """Markdown bullets, computed from the records, for every cell of a paper's table that gives no std (1 pp is
    the tolerance): the cells whose mean test accuracy misses the paper's, each with what the records say about
    why, and the cells within 1 pp listed together.

    ``table``: records with percent accuracies and the ``by`` columns; ``reported(cell)`` and ``name(cell)``: the
    paper's number (``None`` where it gives none) and a label, for ``cell`` = a dict of the ``by`` values.
    Beyond the signs of :func:`accuracy_findings` a finding says what bounds the comparison: a data set that is
    a subset of the paper's (:data:`reprolib.data.catalog.CATALOG`), runs that fit their training set exactly
    (the shortfall is then generalisation, not optimisation), and a test set small enough that one sample
    moves the accuracy by a visible step. ``explain(cell, group)``: more text for a missing cell from elsewhere
    than its records (a probe of the runs' weights), appended as it is ("" for none)."""
    from reprolib.data.catalog import CATALOG  # noqa: PLC0415

    bullets, within = [], []
    if table.empty:
        return _bullets(bullets, within)
    for values, group in table.groupby(list(by), sort=False):
        cell = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        paper = reported(cell)
        if paper is None or is_missing(paper):
            continue
        ok, text = _miss(name(cell), group, float(paper), None)
        if ok:
            within.append(text)
            continue
        info = CATALOG.get(str(group["dataset"].iloc[0])) if "dataset" in group else None
        if info is not None and info.subset_note:
            text += (f" These runs train and test on a subset of the data, {info.subset_note}, not on the paper's "
                     "full set: the difference measures the smaller data, not the reproduction.")
        if info is not None and info.caveat:
            text += f" {info.caveat}"
        if "train_accuracy" in group and group["train_accuracy"].notna().all():
            train = group["train_accuracy"].astype(float)
            if train.min() >= 99.5:
                text += (f" Every run fits its training set (train accuracy {_mean_spread(train)} %), so the shortfall "
                         "is in generalisation, not in optimisation.")
        subset = group["test_subset"].iloc[0] if "test_subset" in group else None
        samples = _test_samples(info, subset)
        if samples:
            p = group["test_accuracy"].astype(float).mean() / 100
            se = 100 * math.sqrt(p * (1 - p) / samples)
            if se >= 0.5:
                text += (f" The test set holds {samples:,} samples: one sample is {100 / samples:.2g} pp, "
                         f"and one run's accuracy has a binomial standard error of {se:.1f} pp.")
        bullets.append(text + _run_signs(group) + (explain(cell, group) if explain is not None else ""))
    return _bullets(bullets, within, label="Within 1 pp of the paper")


def paired_gap(table: pd.DataFrame, by: Sequence[str], pair: str, first: str, second: str,
               reported: Callable[[dict], float | None], metric: str = "test_accuracy") -> pd.DataFrame:
    """The paper's comparison of two variants, ours beside it: for each group of ``by`` values, ``first``
    minus ``second`` on the ``pair`` axis (e.g. SRC minus LIF per input and depth), in the paper and in our runs.

    Our gap is the difference of the two means over the seeds that both variants have (the same seed gives
    both the same data split, so the runs pair up; a seed without a number pairs with nothing): ``paired seeds``
    counts them, ``<first> higher`` and ``<second> higher`` (e.g. ``src higher``, ``lif higher``) those where
    that variant scored higher (ties in neither), as numbers for the pages that reason on them.
    ``reported(cell)`` is the paper's number for ``cell`` = the ``by`` values plus ``{pair: variant}``, ``None``
    where it gives none. ``same order`` says whether both gaps have the same sign (``None`` while either is
    missing). Groups where a variant has no record are left out. Raises ``ValueError`` naming a missing column.
    """
    needed = [*by, pair, "seed", metric]
    lacking = [c for c in needed if c not in table.columns]
    columns = [*by, "paper", "ours", "paired seeds", f"{first} higher", f"{second} higher", "same order"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    if lacking:
        raise ValueError(f"paired_gap: the table has no column {lacking}; columns: {list(map(str, table.columns))}")
    rows = []
    for values, group in table.groupby(list(by), sort=False):
        cell = dict(zip(by, values if isinstance(values, tuple) else (values,)))
        # one value per seed (the mean, should another axis outside ``by`` repeat a seed)
        a = group[group[pair] == first].groupby("seed")[metric].mean().astype(float).dropna()
        b = group[group[pair] == second].groupby("seed")[metric].mean().astype(float).dropna()
        seeds = sorted(set(a.index) & set(b.index))
        if not seeds:
            continue
        ours = a[seeds].mean() - b[seeds].mean()
        p_first, p_second = reported({**cell, pair: first}), reported({**cell, pair: second})
        paper = (float("nan") if p_first is None or p_second is None or is_missing(p_first) or is_missing(p_second)
                 else float(p_first) - float(p_second))
        same = None if is_missing(paper) or ours == 0 or paper == 0 else bool((ours > 0) == (paper > 0))
        rows.append({**cell, "paper": paper, "ours": ours, "paired seeds": len(seeds),
                     f"{first} higher": int((a[seeds] > b[seeds]).sum()),
                     f"{second} higher": int((b[seeds] > a[seeds]).sum()), "same order": same})
    return pd.DataFrame(rows, columns=columns)


def compare_variants(variants: Mapping[str, pd.DataFrame], metric: str = "test_accuracy") -> pd.DataFrame:
    """One row per variant (label -> the records table of its runs, accuracies in percent): how many runs, the
    mean ± std of ``metric``, the seeds whose hidden activity froze (:func:`frozen_since`), and the mean ± std
    of the other runs (their count in brackets): what the variant reaches when its hidden layer keeps learning."""
    rows = []
    alive_column = f"{metric} of the runs not frozen"
    for label, table in variants.items():
        if table is None or table.empty:
            rows.append({"variant": label, "runs": 0, metric: NOT_RUN, "hidden activity frozen": "",
                         alive_column: ""})
            continue
        values = pd.to_numeric(table[metric], errors="coerce")
        stuck, _ = _frozen_runs(table)
        alive = values[~table["seed"].isin([seed for seed, _ in stuck])]
        rows.append({"variant": label, "runs": len(values), metric: _mean_spread(values),
                     "hidden activity frozen": ", ".join(f"seed {seed} (epoch {epoch})" for seed, epoch in stuck)
                     or "none",
                     alive_column: f"{_mean_spread(alive)} ({len(alive)})" if len(alive) else "none"})
    return pd.DataFrame(rows).set_index("variant")
