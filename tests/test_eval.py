"""eval.py's estimators against brute force, and its command line on a tiny run."""
import itertools
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from eval import bootstrap, pass_at_k


def brute_pass_at_k(n, c, k):
    """Fraction of all k-subsets of n samples (c correct) holding a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


@pytest.mark.parametrize("n, c, k", [(n, c, k) for n in range(1, 8) for c in range(n + 1) for k in range(1, n + 1)])
def test_pass_at_k_equals_brute_force(n, c, k):
    assert pass_at_k(n, c, k) == pytest.approx(brute_pass_at_k(n, c, k), abs=1e-12)


def test_pass_at_k_edges_and_large_n():
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(200, 30, 1) == pytest.approx(0.15)
    assert pass_at_k(5000, 7, 100) == pytest.approx(1 - math.comb(4993, 100) / math.comb(5000, 100), rel=1e-9)
    with pytest.raises(ValueError, match="at least k=11 samples"):
        pass_at_k(10, 3, 11)
    with pytest.raises(ValueError, match="0 <= c <= n"):
        pass_at_k(10, 11, 1)


def test_bootstrap_interval_contains_the_mean_and_is_seeded():
    x = [0.0] * 30 + [1.0] * 10
    mean, lo, hi = bootstrap(x)
    assert mean == 0.25 and lo < mean < hi and hi - lo < 0.35
    assert bootstrap(x) == (mean, lo, hi)
    assert bootstrap([1.0] * 5) == (1.0, 1.0, 1.0)


@pytest.mark.slow
def test_eval_cli_on_a_tiny_run(tmp_path):
    out = tmp_path / "results.json"
    run = subprocess.run([sys.executable, "eval.py", "--data", "easy:test", "--limit", "3", "--rollouts", "1",
                          "--turns", "2", "--max-new-tokens", "64", "--out", str(out)],
                         cwd=Path(__file__).parents[1], capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "| multi-turn |" in run.stdout and "| single-turn |" in run.stdout
    results = json.loads(out.read_text())
    assert results["problems"] == 3
    for mode in ("multi-turn", "single-turn"):
        mean, lo, hi = results[mode]["1@2"]
        assert 0 <= lo <= mean <= hi <= 1 and results[mode]["episodes"] == 3
