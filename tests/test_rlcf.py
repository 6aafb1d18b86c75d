"""rlcf.py: the compiler checks, the discriminator (on a tiny random model),
the grounding reward, and how `--reward rlef | rlcf | both` enters the loop."""
import os
import random

import pytest

import data
import rlcf
import rlef
from data import Problem
from rlef import Config
from sandbox import Sandbox, Test
from test_rollout import GOOD, PROSE, WRONG, ScriptedEngine, sum_problem

TYPO = "```python\nprint(a + b)\n```"  # compiles, but a and b are never defined

# ------------------------------------------------------------ compiler checks

@pytest.mark.parametrize("code, entry_point, expected", [
    ("a, b = map(int, input().split())\nprint(a + b)\n", None, []),
    ("a = (1,\nprint(a)\n", None, ["line 1: SyntaxError: '(' was never closed"]),
    ("n = int(input())\nprint(n + m)\n", None, ["line 2: undefined name 'm'"]),
    ("n = int(input())\nprint(solve(n))\n", None, ["line 2: call of undefined function 'solve'"]),
    ("return 1\n", None, ["line 1: SyntaxError: 'return' outside function"]),
    ("def f(a, a):\n    return a\n", None, ["line 1: SyntaxError: duplicate argument 'a' in function definition"]),
    ("def f():\n    print(y)\n    y = 1\nf()\n", None, ["line 2: undefined name 'y'"]),
    # style warnings are not compiler errors: unused import, unused local, redefinition
    ("import os\nimport sys\ndef f():\n    x = 1\n    return 2\ndef f():\n    return 3\nprint(f())\n", None, []),
    ("from math import *\nprint(sqrt(4))\n", None, []),          # a star import may define it
    ("x = 1\nprint(x is 1)\n", None, []),                         # a SyntaxWarning, not an error
    # function-call problems: the tests call the entry point, the program must define it
    ("def add(a, b):\n    return a + b\n", "add", []),
    ("if True:\n    def add(a, b):\n        return a + b\n", "add", []),
    ("add = lambda a, b: a + b\n", "add", []),
    ("def plus(a, b):\n    return a + b\n", "add",
     ["undefined function 'add': the tests call it, the program does not define it"]),
    ("def f(xs: List[int]) -> int:\n    return len(xs)\n", "f", ["line 1: undefined name 'List'"]),
])
def test_static_check(code, entry_point, expected):
    assert rlcf.static_check(code, entry_point) == expected


def test_reference_solutions_pass_the_static_checks():
    problems = data.load_easy("all") + data.load_humaneval()
    failing = {p.name: rlcf.static_check(p.solution, p.entry_point) for p in problems}
    assert {k: v for k, v in failing.items() if v} == {}


# ------------------------------------------------------------ the discriminator

def problem_with_reference(name="sum", solution="a, b = map(int, input().split())\nprint(a + b)\n"):
    return Problem(name, f"[{name}] Read a and b, print a + b.", [Test(input="1 2\n", output="3\n")],
                   [Test(input="2 2\n", output="4\n")], solution=solution)


PROGRAMS = ["a, b = map(int, input().split())\nprint(a + b)\n",
            "print(sum(map(int, input().split())))\n",
            "a, b = map(int, input().split())\nprint(a * b)\n",
            "import sys\nprint(eval(sys.stdin.read().replace(' ', '+')))\n" * 3]


@pytest.fixture(scope="module")
def discriminator(tiny_model):
    return rlcf.Discriminator(tiny_model, dtype="float32", batch_size=4)


def test_discriminator_p_is_the_yes_share_of_yes_and_no(discriminator):
    import torch
    d, problem = discriminator, problem_with_reference("formula")
    [p] = d.judge([(problem, PROGRAMS[2])])
    with torch.no_grad():  # one prompt, no padding: the next-token distribution itself
        probs = d.model(torch.tensor([d.prompt(problem, PROGRAMS[2])])).logits[0, -1].float().softmax(-1)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx((probs[d.yes] / (probs[d.yes] + probs[d.no])).item(), abs=1e-5)
    assert d.tokenizer.decode([d.yes]) == "Yes" and d.tokenizer.decode([d.no]) == "No"
    question = d.tokenizer.decode(d.prompt(problem, PROGRAMS[2]))
    assert "Answer Yes or No." in question and PROGRAMS[2].strip() in question and "print(a + b)" in question


def test_discriminator_caches_per_problem_and_program(discriminator, monkeypatch):
    d, problem = discriminator, problem_with_reference("cache")
    calls = []
    forward = d.model.base_model.forward
    monkeypatch.setattr(d.model.base_model, "forward", lambda *a, **k: calls.append(1) or forward(*a, **k))
    first = d.judge([(problem, PROGRAMS[0]), (problem, PROGRAMS[1]), (problem, PROGRAMS[0])])
    assert len(calls) == 1 and first[0] == first[2]       # one batch; the repeat is judged once
    assert d.judge([(problem, PROGRAMS[1]), (problem, PROGRAMS[0])]) == [first[1], first[0]]
    assert len(calls) == 1                                # all cached: no forward pass
    other = problem_with_reference("cache-2")             # the same program for another problem
    d.judge([(other, PROGRAMS[0])])
    assert len(calls) == 2 and ("cache-2", PROGRAMS[0]) in d.cache


def test_a_batch_gives_the_same_p_as_one_at_a_time(tiny_model, discriminator):
    problems = [problem_with_reference(f"batch-{i}") for i in range(len(PROGRAMS))]
    items = list(zip(problems, PROGRAMS))    # prompts of different lengths: left padding in the batch
    batched = discriminator.judge(items)
    passes = discriminator.forward_passes
    alone = rlcf.Discriminator(tiny_model, dtype="float32", batch_size=1)
    single = [alone.judge([item])[0] for item in items]
    assert alone.forward_passes == len(items)
    assert batched == pytest.approx(single, abs=1e-5)
    assert discriminator.forward_passes == passes


def test_discriminator_on_smollm2_in_bf16_agrees_with_fp32(smollm2):
    """The default set-up (the run's model, bf16, batches with left padding) on
    easy-set problems, with the reference solution and a broken one each,
    against p computed independently: SmolLM2 in fp32, its whole next-token
    softmax, P(Yes) / (P(Yes) + P(No)). bf16 moved p by at most 0.006 on these six
    (0.025 on twelve; p from 0.25 to 0.37, the broken program lower); we allow 0.015."""
    import torch
    from transformers import AutoModelForCausalLM
    d = rlcf.Discriminator(smollm2)
    fp32 = AutoModelForCausalLM.from_pretrained(smollm2, dtype=torch.float32)
    items = []
    for problem in [p for p in data.load_easy("train") if p.entry_point is None][:3]:
        wrong = problem.solution.replace("+", "-") if "+" in problem.solution else "print(0)\n"
        items += [(problem, problem.solution), (problem, wrong)]
    for (problem, program), p in zip(items, d.judge(items)):
        with torch.no_grad():
            probs = fp32(torch.tensor([d.prompt(problem, program)])).logits[0, -1].softmax(-1)
        assert p == pytest.approx((probs[d.yes] / (probs[d.yes] + probs[d.no])).item(), abs=0.015), problem.name


# ------------------------------------------------------------ the grounding reward

class FixedDiscriminator:
    """Stands in for the LLM: p from a table keyed by program text."""

    def __init__(self, p):
        self.p, self.asked = p, []

    def judge(self, items):
        self.asked += [program for _, program in items]
        return [self.p[program] for _, program in items]


def test_grounding_reward_formula():
    assert rlcf.grounding_reward(["line 1: undefined name 'x'"], None) == -1.0
    assert rlcf.grounding_reward(["line 1: undefined name 'x'"], 0.9) == -1.0   # compile errors come first
    assert rlcf.grounding_reward([], None) == 0.0                              # no reference: neutral
    assert rlcf.grounding_reward([], 0.75) == pytest.approx(0.5)
    assert rlcf.grounding_reward([], 0.0) == -1.0 and rlcf.grounding_reward([], 1.0) == 1.0


def test_ground_asks_the_discriminator_only_about_programs_that_compile():
    ok, typo, fine = "print(1)\n", "print(x)\n", "print(2)\n"
    with_ref, without_ref = problem_with_reference("r"), problem_with_reference("n", solution=None)
    d = FixedDiscriminator({ok: 0.75, fine: 0.2})
    g = rlcf.ground([(with_ref, ok), (with_ref, typo), (with_ref, None), (without_ref, fine), (with_ref, fine)], d)
    assert d.asked == [ok, fine]                          # one call, only compiling programs with a reference
    assert [x.reward for x in g] == pytest.approx([0.5, -1.0, -1.0, 0.0, -0.6])
    assert g[1].errors == ["line 1: undefined name 'x'"] and g[2].errors == [rlcf.NO_PROGRAM]
    assert [x.p_equivalent for x in g] == [0.75, None, None, None, 0.2]


def test_agreement_metrics_against_execution():
    G = rlcf.Grounding
    cases = [(G(0.8, [], 0.9), True),    # tp
             (G(0.4, [], 0.7), False),   # fp
             (G(-0.6, [], 0.2), True),   # fn
             (G(-0.8, [], 0.1), False),  # tn
             (G(0.2, [], 0.6), True),    # tp
             (G(-1.0, ["line 1: SyntaxError: invalid syntax"], None), False),  # not judged
             (G(0.0, [], None), True)]   # no reference: not judged
    totals = {k: 0.0 for k in rlcf.COUNTS}
    for g, passes in cases:
        for k, v in rlcf.counts(g, passes).items():
            totals[k] += v
    m = rlcf.metrics(totals, len(cases))
    assert m["rlcf/precision"] == pytest.approx(2 / 3) and m["rlcf/recall"] == pytest.approx(2 / 3)
    assert m["rlcf/agreement"] == pytest.approx(3 / 5)
    assert m["rlcf/p_equivalent"] == pytest.approx((0.9 + 0.7 + 0.2 + 0.1 + 0.6) / 5)
    assert m["rlcf/grounding"] == pytest.approx(sum(g.reward for g, _ in cases) / 7)
    assert m["rlcf/compile_fail"] == pytest.approx(1 / 7) and m["rlcf/no_reference"] == pytest.approx(1 / 7)
    assert m["rlcf/tp"] == pytest.approx(2 / 7)
    # nothing judged: no agreement figures rather than a division by zero
    assert set(rlcf.metrics({k: 0.0 for k in rlcf.COUNTS}, 0)) == {
        "rlcf/grounding", "rlcf/compile_fail", "rlcf/no_reference", "rlcf/tp", "rlcf/fp", "rlcf/fn", "rlcf/tn"}


# ------------------------------------------------------------ the training loop

def test_reward_flag_is_checked_at_parse_time():
    assert rlef.parse_config([])[0].reward == "rlef"
    for mode in ("rlef", "rlcf", "both"):
        assert rlef.parse_config(["--reward", mode])[0].reward == mode
    cfg = rlef.parse_config(["--reward", "rlef", "--discriminator", "smollm2-135m"])[0]
    assert cfg.grounded and rlef.parse_config(["--reward", "both"])[0].grounded   # the discriminator loads
    assert not rlef.parse_config([])[0].grounded
    with pytest.raises(SystemExit, match="--reward must be one of rlef, rlcf, both"):
        rlef.parse_config(["--reward", "compiler"])


def test_the_discriminator_counts_in_the_memory_estimate(smollm2, monkeypatch):
    params, _ = rlef.count_parameters(smollm2)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    room = params * 39  # between 38 bytes per parameter (no discriminator) and 40 (with one)
    monkeypatch.setattr(os, "sysconf", lambda name: room // 4096 if name == "SC_PHYS_PAGES" else 4096)
    rlef.check_memory(smollm2, Config(), world=1)
    with pytest.raises(SystemExit, match="with the discriminator"):
        rlef.check_memory(smollm2, Config(reward="rlcf"), world=1, discriminator=smollm2)


@pytest.fixture(scope="module")
def smol_tokenizer(smollm2):
    return data.load_tokenizer(smollm2)


def test_the_reward_mode_changes_only_the_terminal_reward(smol_tokenizer):
    tok = smol_tokenizer
    script = {"first": [GOOD], "never": [PROSE, WRONG, WRONG], "typo": [PROSE, TYPO, TYPO]}
    problems = [sum_problem(n) for n in script]
    problems[0].solution = problems[1].solution = "a, b = map(int, input().split())\nprint(a + b)\n"
    runs = {}
    with Sandbox(workers=2) as sandbox:
        for mode in ("rlef", "rlcf", "both"):
            cfg = Config(max_turns=3, reward=mode)
            episodes = rlef.rollout(ScriptedEngine(tok, script), sandbox, tok, problems, cfg, random.Random(0))
            runs[mode] = cfg, episodes
    # the environment is the same: turns, feedback, tokens, verdicts
    ids = {mode: [(ep.ids, ep.messages, [t.verdict for t in ep.turns], ep.solved) for ep in eps]
           for mode, (_, eps) in runs.items()}
    assert ids["rlef"] == ids["rlcf"] == ids["both"]
    discriminator = FixedDiscriminator({data.extract_code(GOOD): 0.9, data.extract_code(WRONG): 0.6})
    rewards = {}
    for mode, (cfg, episodes) in runs.items():
        if mode != "rlef":
            with pytest.raises(ValueError, match="not grounded"):
                episodes[0].rewards(cfg)
        rlef.ground(episodes, discriminator)
        rewards[mode] = [ep.rewards(cfg) for ep in episodes]
    first, never, typo = runs["rlef"][1]
    assert [ep.grounding.reward for ep in (first, never, typo)] == pytest.approx([0.8, 0.2, -1.0])
    assert typo.grounding.errors == ["line 1: undefined name 'a'", "line 1: undefined name 'b'"]
    execution = {"first": 1.0, "never": -1.0, "typo": -1.0}
    grounding = {"first": 0.8, "never": 0.2, "typo": -1.0}
    for i, (name, ep) in enumerate(zip(script, runs["rlef"][1])):
        end = ep.turn_ends[-1]
        expected = {"rlef": execution[name], "rlcf": grounding[name], "both": (execution[name] + grounding[name]) / 2}
        for mode in runs:
            r = rewards[mode][i]
            assert r[end] - rewards["rlef"][i][end] == pytest.approx(expected[mode] - execution[name])
            assert [x for t, x in enumerate(r) if t != end] == [x for t, x in enumerate(rewards["rlef"][i]) if t != end]
    assert rewards["rlcf"][1][never.turn_ends[0]] == pytest.approx(-0.2)   # the no-code penalty stays
    # the step's metrics: mean grounding reward and the discriminator against execution
    m = rlef.episode_metrics(runs["rlcf"][1], runs["rlcf"][0])
    assert m["rlcf/grounding"] == pytest.approx((0.8 + 0.2 - 1.0) / 3)
    assert m["rlcf/precision"] == pytest.approx(0.5) and m["rlcf/recall"] == 1.0   # "never" fooled it
    assert "rlcf/grounding" not in rlef.episode_metrics(runs["rlef"][1], runs["rlef"][0])
