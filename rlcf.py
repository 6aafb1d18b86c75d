"""RLCF's grounding function: a reward from compiler checks and a discriminator LLM.

RLCF (Jain et al. 2023, "Coarse-Tuning Models of Code with Reinforcement
Learning Feedback", arXiv 2305.18341) trains a code LLM with PPO on a reward
that does not run the program: a *grounding function* scores it with
(i) compiler-derived checks on the generated program and (ii) a second LLM, a
discriminator, that compares the program with a reference solution of the
problem. This file is that grounding function for Python, as a second reward
next to RLEF's execution reward (`rlef.py --reward rlef | rlcf | both`):

- `static_check`: what a compiler (and linker) would reject: syntax errors
  (Python's own compiler, which also catches `return` outside a function,
  duplicate arguments, ...), then pyflakes for undefined names, calls of
  undefined functions and locals used before assignment. Style warnings
  (unused imports or variables, redefinitions) are not errors. Messages read
  like a compiler's: `line 3: undefined name 'foo'`.
- `Discriminator`: a frozen causal LM (by default the run's model, i.e. the
  initial policy, which is also PPO's reference) asked whether the program is
  equivalent to the reference solution. One forward pass reads the next-token
  probabilities of "Yes" and "No": p = P(Yes) / (P(Yes) + P(No)). Judgements
  are cached per (problem name, program text).
- `grounding_reward`: -1 if the program fails the static checks (or there is
  no program); else 2p - 1, in [-1, 1]; 0 where the problem has no reference
  solution (the discriminator cannot be asked).

Two departures from the paper, both deliberate: its discriminator is trained
(adversarially, to tell generated programs from reference ones), ours is a
frozen instruct model asked a question; and the paper checks Java with a
compiler, we check Python with `compile` + pyflakes. Nothing here runs the
program: that is the point of the comparison with RLEF.

Only the standard library and pyflakes are imported at the top; torch and
transformers load inside `Discriminator`. docs/rlcf.md explains the reward.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass

from pyflakes import checker, messages

import data
from data import Problem

# --------------------------------------------------------------------------
# (i) Compiler feedback: compile + pyflakes
# --------------------------------------------------------------------------

# pyflakes messages that name an error a compiler would reject. The syntax-like
# ones are also caught by `compile` first (pyflakes sees only code that
# compiles); they are listed so that the set says what counts on any Python.
COMPILER_ERRORS = (
    messages.UndefinedName, messages.UndefinedLocal, messages.UndefinedExport,
    messages.ReturnOutsideFunction, messages.YieldOutsideFunction, messages.BreakOutsideLoop,
    messages.ContinueOutsideLoop, messages.DuplicateArgument, messages.TwoStarredExpressions,
    messages.TooManyExpressionsInStarredAssignment, messages.DefaultExceptNotLast,
    messages.LateFutureImport, messages.FutureFeatureNotDefined, messages.ImportStarNotPermitted,
)
NO_PROGRAM = "no program: the answer holds no valid code block"


def static_check(code: str, entry_point: str | None = None) -> list[str]:
    """The errors a compiler would report for `code`, one line each; [] if none.

    1. `compile` (Python's own compiler, nothing runs): syntax errors and the
       checks of its symbol table. `line 2: SyntaxError: invalid syntax`.
    2. pyflakes on the syntax tree: undefined names (`line 3: undefined name
       'foo'`; when the name is called, `line 3: call of undefined function
       'foo'`), locals used before assignment, undefined names in `__all__`.
       Names that a `from m import *` may define are not errors (pyflakes
       cannot tell).
    3. Function-call problems (`entry_point`, e.g. HumanEval): the tests run
       after the program and call `entry_point`, so the program must define it
       at module level, as a linker needs the symbol. Names the tests define
       are not the program's business.
    """
    try:
        with warnings.catch_warnings():  # SyntaxWarnings (`x is 1`, "\d") are not errors
            warnings.simplefilter("ignore")
            compile(code, "solution.py", "exec", dont_inherit=True)  # not this file's __future__ flags
            tree = ast.parse(code)
    except SyntaxError as e:
        return [f"line {e.lineno or 1}: {type(e).__name__}: {e.msg}"]
    except ValueError as e:  # null bytes
        return [f"line 1: SyntaxError: {e}"]
    calls = {(n.func.lineno, n.func.col_offset) for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    check = checker.Checker(tree, filename="solution.py")
    errors = []
    for m in sorted(check.messages, key=lambda m: (m.lineno, m.col)):
        if not isinstance(m, COMPILER_ERRORS):
            continue
        if isinstance(m, messages.UndefinedName) and (m.lineno, m.col) in calls:
            errors.append(f"line {m.lineno}: call of undefined function {m.message_args[0]!r}")
        else:
            errors.append(f"line {m.lineno}: {m.message % m.message_args}")
    if entry_point:
        module = next(s for s in check.deadScopes if isinstance(s, checker.ModuleScope))
        star = any(isinstance(b, checker.StarImportation) for b in module.values())
        if entry_point not in module and not star:
            errors.append(f"undefined function {entry_point!r}: the tests call it, the program does not define it")
    return errors


# --------------------------------------------------------------------------
# (ii) The discriminator: a frozen LLM compares the program with a reference
# --------------------------------------------------------------------------

QUESTION = ("Here is a programming problem, a reference solution to it, and another program.\n\n"
            "Problem:\n{problem}\n\n"
            "Reference solution:\n```python\n{reference}\n```\n\n"
            "Program:\n```python\n{program}\n```\n\n"
            "Is the program equivalent to the reference solution? Answer Yes or No.")
FIELD_CHARS = 4000  # each of problem, reference and program is cut to this (data.clip, marked)


class Discriminator:
    """A frozen causal LM that judges program equivalence: p(problem, program)
    = P(Yes) / (P(Yes) + P(No)) for the first answer token after the question
    (one forward pass per batch, no sampling; "Yes" and "No" are the first
    tokens of those words). p is RLCF's discriminator score; `grounding_reward`
    turns it into a reward term.

    Weights in `dtype` (bf16 by default), eval mode, no gradients, on `device`:
    one more copy of the model per rank. Judgements are cached per (problem
    name, program text) for the whole run: a policy that repeats a program
    costs no second forward pass. `forward_passes` counts the batches run.
    """

    def __init__(self, model: str, device: str = "cpu", dtype: str = "bfloat16", batch_size: int = 8):
        import torch
        from transformers import AutoModelForCausalLM
        self.tokenizer = data.load_tokenizer(model)
        self.model = AutoModelForCausalLM.from_pretrained(model, dtype=getattr(torch, dtype)).to(device)
        self.model.eval().requires_grad_(False)
        self.device, self.batch_size = device, batch_size
        self.yes, self.no = (self.tokenizer.encode(w, add_special_tokens=False)[0] for w in ("Yes", "No"))
        if self.yes == self.no:
            raise ValueError(f"{model}: 'Yes' and 'No' start with the same token")
        # The output layer's rows of "Yes" and "No", in fp32: bf16 logits between 32
        # and 64 are rounded to steps of 0.25, which moves p in steps of ~0.05. (Models
        # whose head is a plain linear layer: Llama, Qwen, Mistral, SmolLM, ...)
        head = self.model.get_output_embeddings()
        if getattr(head, "bias", None) is not None:
            raise ValueError(f"{model}: an output layer with a bias is not supported")
        self.head = head.weight[[self.yes, self.no]].float()
        self.cache: dict[tuple[str, str], float] = {}
        self.forward_passes = 0

    def prompt(self, problem: Problem, program: str) -> list[int]:
        """Token ids of the question, ready for the answer's first token."""
        question = QUESTION.format(problem=data.clip(problem.description.strip(), FIELD_CHARS),
                                   reference=data.clip(problem.solution.strip("\n"), FIELD_CHARS),
                                   program=data.clip(program.strip("\n"), FIELD_CHARS))
        ids = self.tokenizer.apply_chat_template([{"role": "user", "content": question}],
                                                 add_generation_prompt=True, tokenize=True)
        return list(ids["input_ids"] if hasattr(ids, "keys") else ids)

    def judge(self, items: list[tuple[Problem, str]]) -> list[float]:
        """p for each (problem, program); every problem needs a `solution`.
        Uncached items run in batches of similar length (left-padded, with
        position ids that skip the padding, so a batch gives the same p as
        one item alone)."""
        import torch
        keys = [(p.name, program) for p, program in items]
        todo = list({k: (p, program) for k, (p, program) in zip(keys, items) if k not in self.cache}.items())
        prompts = [self.prompt(p, program) for _, (p, program) in todo]
        order = sorted(range(len(todo)), key=lambda i: len(prompts[i]))
        pad = self.tokenizer.pad_token_id
        for start in range(0, len(order), self.batch_size):
            batch = order[start:start + self.batch_size]
            width = max(len(prompts[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + prompts[i] for i in batch], device=self.device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch],
                                device=self.device)
            with torch.no_grad():
                hidden = self.model.base_model(input_ids=ids, attention_mask=mask,
                                               position_ids=(mask.cumsum(1) - 1).clamp(min=0)).last_hidden_state
                logits = hidden[:, -1].float() @ self.head.T   # [batch, 2]: Yes, No
            self.forward_passes += 1
            # P(Yes) / (P(Yes) + P(No)): the softmax's normaliser cancels
            p = torch.sigmoid(logits[:, 0] - logits[:, 1])
            for i, value in zip(batch, p.tolist()):
                self.cache[todo[i][0]] = value
        return [self.cache[k] for k in keys]


# --------------------------------------------------------------------------
# The grounding function: the RLCF reward of a final program
# --------------------------------------------------------------------------

@dataclass
class Grounding:
    """What the grounding function made of one final program."""
    reward: float                 # the RLCF terminal reward, in [-1, 1]
    errors: list[str]             # static_check's messages ([]: it compiles)
    p_equivalent: float | None    # the discriminator's p; None: not asked (errors, or no reference)


def grounding_reward(errors: list[str], p_equivalent: float | None) -> float:
    """RLCF's terminal reward: -1 if the program fails the compiler checks
    (the paper's penalty for code that does not compile); otherwise the
    discriminator term 2p - 1, in [-1, 1] (p = 0.5, "can't tell", is 0);
    0 where no discriminator judgement exists (no reference solution)."""
    if errors:
        return -1.0
    return 0.0 if p_equivalent is None else 2.0 * p_equivalent - 1.0


def ground(items: list[tuple[Problem, str | None]], discriminator: Discriminator) -> list[Grounding]:
    """The grounding function on (problem, final program) pairs; None stands
    for no program (an answer without code, or an episode that filled the
    context), which fails like a program that does not compile. Programs that
    pass the checks and whose problem has a reference go to the discriminator
    in one batched call."""
    errors = [[NO_PROGRAM] if code is None else static_check(code, p.entry_point) for p, code in items]
    asked = [i for i, (p, _) in enumerate(items) if not errors[i] and p.solution]
    ps = dict(zip(asked, discriminator.judge([items[i] for i in asked]) if asked else []))
    return [Grounding(grounding_reward(errors[i], ps.get(i)), errors[i], ps.get(i)) for i in range(len(items))]


# --------------------------------------------------------------------------
# How often the discriminator agrees with execution (logged per step)
# --------------------------------------------------------------------------

COUNTS = ("rlcf/grounding", "rlcf/compile_fail", "rlcf/no_reference", "rlcf/asked", "rlcf/p_sum",
          "rlcf/tp", "rlcf/fp", "rlcf/fn", "rlcf/tn")


def counts(g: Grounding, passes: bool) -> dict[str, float]:
    """One final program's share of the step's RLCF metrics. `passes`: it
    passes the judge tests. The discriminator "says equivalent" when p > 0.5;
    tp / fp / fn / tn compare that with `passes`, over the programs it judged."""
    asked = g.p_equivalent is not None
    says = asked and g.p_equivalent > 0.5
    return {"rlcf/grounding": g.reward, "rlcf/compile_fail": bool(g.errors),
            "rlcf/no_reference": not g.errors and not asked, "rlcf/asked": asked,
            "rlcf/p_sum": g.p_equivalent or 0.0, "rlcf/tp": says and passes, "rlcf/fp": says and not passes,
            "rlcf/fn": asked and not says and passes, "rlcf/tn": asked and not says and not passes}


def metrics(totals: dict[str, float], episodes: int) -> dict[str, float]:
    """Step metrics from `counts` summed over episodes (and ranks): shares of
    episodes (mean grounding reward, compile failures, no reference, and
    tp/fp/fn/tn, which sum over a run into its precision and recall), the
    mean p of the judged programs, and the discriminator's agreement,
    precision and recall against execution where they are defined."""
    n = max(episodes, 1)
    out = {k: totals[k] / n for k in COUNTS if k not in ("rlcf/asked", "rlcf/p_sum")}
    tp, fp, fn, tn, asked = (totals[f"rlcf/{k}"] for k in ("tp", "fp", "fn", "tn", "asked"))
    if asked:
        out["rlcf/p_equivalent"] = totals["rlcf/p_sum"] / asked
        out["rlcf/agreement"] = (tp + tn) / asked
    if tp + fp:
        out["rlcf/precision"] = tp / (tp + fp)
    if tp + fn:
        out["rlcf/recall"] = tp / (tp + fn)
    return out
