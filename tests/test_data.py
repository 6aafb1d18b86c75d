"""data.py: prompt text, code extraction, loaders and their error messages."""
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import data
from data import DataError, Problem, extract_code
from sandbox import Sandbox, Test, TestResult

SAMPLE = Path(__file__).parent / "data" / "codecontests_sample.jsonl"
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------- prompt text

def test_first_turn_is_the_papers_text():
    p = Problem("x", "Print 1.", [Test(input="", output="1")], [Test(input="", output="1")])
    [msg] = data.first_turn_messages(p)
    assert msg["role"] == "user"
    assert msg["content"] == (
        "Provide a Python solution for the following competitive programming question: Print 1..\n\n"
        "Your code should be enclosed in triple backticks like so: ```python YOUR CODE HERE ```. "
        "Use the backticks for your code only.")


def test_feedback_lines_follow_the_paper():
    t = Test(input="1 2\n", output="3\n")
    line = lambda verdict, **kw: data.test_failure_line(t, TestResult(verdict, **kw))
    assert line("WA", stdout="4\n") == "- input '1 2\n' failed: Expected output '3\n' but got '4\n'"
    assert line("TLE") == "- input '1 2\n' failed: Execution took too long."
    assert line("MLE") == "- input '1 2\n' failed: Out of memory."
    trace = 'Traceback (most recent call last):\n  File "x", line 1\nZeroDivisionError: division by zero\n'
    assert line("RE", stderr=trace) == "- input '1 2\n' failed: " + trace.strip()
    # a function-call test: the check stands in for the input, its assertion tells what was wrong
    check = Test(check="assert add(1, 2) == 3")
    wrong = TestResult("WA", message="Traceback ...\nAssertionError: add(1, 2) returned -1")
    assert data.test_failure_line(check, wrong) == ("- input 'assert add(1, 2) == 3' failed: "
                                                    "Traceback ...\nAssertionError: add(1, 2) returned -1")
    msg = data.feedback_message(["- a", "- b"])
    assert msg.splitlines()[0] == "Your code failed the following tests:"
    assert msg.splitlines()[1:3] == ["- a", "- b"]
    assert msg.splitlines()[3] == "Give it another try."
    assert msg.endswith("Use the backticks for your code only.")
    assert data.no_code_message().endswith("Use the backticks for your code only.")


def test_feedback_for_real_sandbox_results():
    with Sandbox(workers=1) as sb:
        [wa, re_] = sb.run_tests("def add(a, b):\n    return a - b\n",
                                 [Test(check="assert add(1, 2) == 3"), Test(check="assert add('x') == 1")])
    assert data.test_failure_line(Test(check="assert add(1, 2) == 3"), wa).endswith("AssertionError")
    assert "TypeError" in data.test_failure_line(Test(check="assert add('x') == 1"), re_)


def test_long_feedback_is_cut_with_a_marker():
    t = Test(input="x" * 10_000, output="y")
    line = data.test_failure_line(t, TestResult("WA", stdout="z" * 5_000))
    assert len(line) < 3 * data.FEEDBACK_FIELD_CHARS + 200
    assert "[... 9600 characters cut]" in line and "[... 4600 characters cut]" in line
    trace = "noise\n" * 1000 + "ValueError: the real error"
    line = data.test_failure_line(t, TestResult("RE", stderr=trace))
    assert line.endswith("ValueError: the real error") and "characters cut]" in line


# ------------------------------------------------------------ code extraction

@pytest.mark.parametrize("response, expected", [
    ("```python\nprint(1)\n```", "print(1)"),
    ("Here:\n```py\nx = 1\nprint(x)\n```\nDone.", "x = 1\nprint(x)"),
    # several blocks: the longest python block wins over a short usage example
    ("```python\ndef f(a):\n    return a + 1\n```\nUsage:\n```python\nprint(f(1))\n```", "def f(a):\n    return a + 1"),
    # a python-tagged block wins over a longer untagged one
    ("```\nsome long untagged text = 1 + 2 + 3 + 4\n```\n```python\nprint(2)\n```", "print(2)"),
    # no language tag at all
    ("```\nprint(input())\n```", "print(input())"),
    # another language never counts
    ("```bash\necho hi\n```", None),
    ("```text\n3\n```\n```python\nprint(3)\n```", "print(3)"),
    # unterminated fence (answer cut by the token limit) runs to the end
    ("```python\nn = int(input())\nprint(n * 2)", "n = int(input())\nprint(n * 2)"),
    # prose only, empty block, unparseable block
    ("I would read the input and print the sum.", None),
    ("```python\n\n```", None),
    ("```python\ndef f(:\n    pass\n```", None),
    # a fence with 4 backticks and indentation
    ("  ````python\nprint(5)\n  ````", "print(5)"),
    # inline backticks are not fences
    ("Use `print(1)` to print.", None),
])
def test_extract_code(response, expected):
    assert extract_code(response) == expected


def test_code_block_is_the_same_block_whether_or_not_it_parses():
    assert data.code_block("```python\ndef f(:\n    pass\n```") == "def f(:\n    pass"
    assert data.code_block("Here:\n```py\nx = 1\n```\nDone.") == extract_code("Here:\n```py\nx = 1\n```\nDone.")
    assert data.code_block("```python\n\n```") is None and data.code_block("no code") is None
    assert data.code_block("```bash\necho hi\n```") is None


def test_extract_code_keeps_the_models_syntax_warnings_off_the_console():
    import warnings
    code = 'x = 1if True else 2\nprint("\\d")'   # both warn when parsed, neither is an error
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert extract_code(f"```python\n{code}\n```") == code


# ---------------------------------------------------------------- CodeContests

def test_codecontests_file_is_filtered_and_converted():
    problems = data.load_file(SAMPLE)
    assert [p.name for p in problems] == ["1_A. Sum of Two", "2_B. Maximum", "3_C. Half"]  # 4_D: no private tests
    a, b, c = problems
    assert a.public_tests == [Test(input="1 2\n", output="3\n")]
    assert len(a.private_tests) == 3 and len(a.generated_tests) == 1
    assert len(a.judge_tests) == 4
    assert (a.time_limit, a.memory_limit_mb, a.source, a.difficulty) == (2.0, 256, "CODEFORCES", 7)
    assert a.solution == "a, b = map(int, input().split())\nprint(a + b)\n"  # the Python 3 one, not C++
    assert (b.time_limit, b.memory_limit_mb, b.source) == (1.5, data.DEFAULT_MEMORY_MB, "AIZU")
    assert c.time_limit == data.DEFAULT_TIME_LIMIT  # time_limit: null -> the paper's 10 s


def test_codecontests_parquet_and_gzip(tmp_path):
    import gzip
    import pyarrow as pa
    import pyarrow.parquet as pq
    rows = [json.loads(l) for l in SAMPLE.read_text().splitlines()]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "cc.parquet")
    with gzip.open(tmp_path / "cc.jsonl.gz", "wt") as f:
        f.write(SAMPLE.read_text())
    names = [p.name for p in data.load_file(SAMPLE)]
    assert [p.name for p in data.load_file(tmp_path / "cc.parquet")] == names
    assert [p.name for p in data.load_problems(str(tmp_path / "cc.jsonl.gz"))] == names


def test_codecontests_hub_path_uses_datasets(monkeypatch):
    """The hub loader runs for real except for the download (no network here)."""
    import datasets
    rows = [json.loads(l) for l in SAMPLE.read_text().splitlines()]
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: calls.append((name, split)) or rows)
    problems = data.load_problems("codecontests:valid")
    assert calls == [("deepmind/code_contests", "valid")]
    assert len(problems) == 3
    with pytest.raises(DataError, match="splits train, valid, test"):
        data.load_problems("codecontests:dev")


def test_sample_solutions_pass_their_own_tests():
    with Sandbox(workers=2) as sb:
        for p in data.load_file(SAMPLE):
            results = sb.run_tests(p.solution, p.public_tests + p.judge_tests, time_limit=p.time_limit)
            assert [r.verdict for r in results] == ["AC"] * len(results), p.name


# ------------------------------------------------------------ error messages

def test_malformed_jsonl_names_file_and_line(tmp_path):
    f = tmp_path / "bad.jsonl"
    f.write_text(SAMPLE.read_text().splitlines()[0] + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl line 2: not valid JSON"):
        data.load_file(f)
    f.write_text("[1, 2]\n")
    with pytest.raises(DataError, match=r"bad.jsonl line 1: expected a JSON object"):
        data.load_file(f)


def test_missing_column_names_file_row_and_column(tmp_path):
    row = json.loads(SAMPLE.read_text().splitlines()[0])
    del row["private_tests"]
    f = tmp_path / "cc.jsonl"
    f.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"cc.jsonl line 1: missing column\(s\) private_tests"):
        data.load_file(f)
    f.write_text(json.dumps({"question": "?"}) + "\n")
    with pytest.raises(DataError, match=r"line 1: unknown schema"):
        data.load_file(f)


def test_mismatched_tests_and_empty_files(tmp_path):
    row = json.loads(SAMPLE.read_text().splitlines()[0])
    row["public_tests"]["output"] = []
    f = tmp_path / "cc.jsonl"
    f.write_text(json.dumps(row) + "\n")
    with pytest.raises(DataError, match=r"line 1: column 'public_tests' has 1 inputs but 0 outputs"):
        data.load_file(f)
    f.write_text(SAMPLE.read_text().splitlines()[3] + "\n")  # only the problem without private tests
    with pytest.raises(DataError, match=r"no usable problem \(1 rows"):
        data.load_file(f)
    with pytest.raises(DataError, match="no such file"):
        data.load_file(tmp_path / "missing.jsonl")
    with pytest.raises(DataError, match="expected a .jsonl"):
        (tmp_path / "x.csv").write_text("a,b\n")
        data.load_file(tmp_path / "x.csv")


def test_unknown_dataset_and_split():
    with pytest.raises(DataError, match="unknown dataset 'mbpp'"):
        data.load_problems("mbpp")
    with pytest.raises(DataError, match="the easy set has splits"):
        data.load_problems("easy:dev")


# ------------------------------------------------------------------- HumanEval

def test_humaneval_loads_offline():
    problems = data.load_problems("humaneval")
    assert len(problems) == 164
    p = problems[0]
    assert p.name == "HumanEval/0" and p.entry_point == "has_close_elements"
    assert p.description.startswith("Complete the following Python function.")
    assert all(p.public_tests and len(p.private_tests) == 1 for p in problems)
    assert all(t.check is not None for p in problems for t in p.public_tests + p.private_tests)


def test_humaneval_canonical_solutions_pass_public_and_private_tests():
    problems = data.load_humaneval()
    with Sandbox(workers=2) as sb:
        batches = sb.map([(p.solution, p.public_tests + p.private_tests) for p in problems], time_limit=10.0)
    failing = [(p.name, [r.verdict for r in rs]) for p, rs in zip(problems, batches)
               if any(r.verdict != "AC" for r in rs)]
    assert failing == []


def test_humaneval_wrong_solution_fails_public_tests():
    p = data.load_humaneval()[0]
    wrong = "def has_close_elements(numbers, threshold):\n    return True\n"
    with Sandbox(workers=1) as sb:
        results = sb.run_tests(wrong, p.public_tests, time_limit=5.0)
    assert [r.verdict for r in results] != ["AC"] * len(results)


# ----------------------------------------------------------------------- models

def test_resolve_model(tmp_path, smollm2):
    assert Path(smollm2, "config.json").exists() and Path(smollm2, "model.safetensors").exists()
    config = json.loads(Path(smollm2, "config.json").read_text())
    assert "quantization_config" not in config and config["dtype"] == "bfloat16"
    assert data.resolve_model("meta-llama/Llama-3.1-8B-Instruct") == "meta-llama/Llama-3.1-8B-Instruct"
    assert data.resolve_model(smollm2) == smollm2
    with pytest.raises(DataError, match="has no config.json"):
        data.resolve_model(str(tmp_path))
    with pytest.raises(DataError, match="no such folder"):
        data.resolve_model(str(tmp_path / "nope"))


def test_converted_smollm2_loads_and_has_a_chat_template(smollm2):
    import torch
    from transformers import AutoModelForCausalLM
    tokenizer = data.load_tokenizer(smollm2)
    assert tokenizer.eos_token == "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(smollm2)
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    ids = tokenizer.apply_chat_template([{"role": "user", "content": "Say hi."}], add_generation_prompt=True,
                                        return_tensors="pt", return_dict=True)["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > ids.shape[1]


def test_stats_cli():
    out = subprocess.run([sys.executable, "data.py", "--stats"], cwd=Path(__file__).parents[1],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    for title in ("## easy set (version 2)", "## HumanEval", "## CodeContests file"):
        assert title in out.stdout
    for split, problems in (("train", 170), ("seen", 133), ("valid", 134), ("test", 134)):
        assert f"{split:>8}: {problems:5d} problems" in out.stdout
    assert "<|im_start|>user\nProvide a Python solution" in out.stdout


# --------------------------------------------------------------------------
# The end of an answer: from the chat template, checked against the metadata
# --------------------------------------------------------------------------

def test_the_end_of_turn_is_the_token_the_template_puts_after_an_answer(smollm2, smollm2_wrong_eos):
    from transformers import AutoTokenizer
    for folder in (smollm2, smollm2_wrong_eos):  # the metadata does not matter, the template does
        tok = AutoTokenizer.from_pretrained(folder)
        assert tok.convert_ids_to_tokens(data.end_of_turn(tok)) == "<|im_end|>"
    tok = AutoTokenizer.from_pretrained(smollm2)  # a Llama 3 style template
    tok.add_special_tokens({"additional_special_tokens": ["<|eot_id|>", "<|start_header_id|>", "<|end_header_id|>"]})
    tok.chat_template = ("{% for m in messages %}{{ '<|start_header_id|>' + m['role'] + '<|end_header_id|>\\n\\n' "
                         "+ m['content'] | trim + '<|eot_id|>' }}{% endfor %}")
    assert tok.convert_ids_to_tokens(data.end_of_turn(tok)) == "<|eot_id|>"


def test_wrong_eos_metadata_is_reported_and_answers_end_at_the_templates_token(smollm2, smollm2_wrong_eos):
    with pytest.warns(UserWarning) as caught:
        tok = data.load_tokenizer(smollm2_wrong_eos)
    [message] = [str(w.message) for w in caught if "ends answers" in str(w.message)]
    assert "chat template ends answers with <|im_end|> (2)" in message
    for where in ("the tokenizer's eos_token", "config.json's eos_token_id", "generation_config.json's eos_token_id"):
        assert f"{where} is <|im_start|> (1)" in message
    assert (tok.eos_token, tok.eos_token_id, tok.pad_token_id) == ("<|im_end|>", 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the correct folder: nothing to report
        assert data.load_tokenizer(smollm2).eos_token_id == 2


def test_the_embedded_model_is_converted_with_its_end_of_turn_as_eos(smollm2):
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig
    folder = Path(smollm2)
    assert json.loads((folder / data.CONVERSION_STAMP).read_text())["format"] == data.CONVERSION_FORMAT
    assert AutoTokenizer.from_pretrained(folder).eos_token == "<|im_end|>"
    assert AutoConfig.from_pretrained(folder).eos_token_id == 2
    assert GenerationConfig.from_pretrained(folder).eos_token_id == 2


TRANSFORMERS_5_17 = ["transformers==5.17.0", "huggingface-hub==1.33.0"]


def test_conversion_under_transformers_5_17_is_correct_and_replaces_an_older_one(smollm2_wrong_eos, tmp_path):
    """transformers 4.56 to 5.17 read the GGUF's eos as <|im_start|>. Under 5.17
    (installed once into a side folder of the user cache), a cached folder
    from an older conversion (no stamp, wrong eos) is converted again, and the
    new one names <|im_end|> as eos in tokenizer, config and generation config."""
    import shutil
    import subprocess
    side = data.cache_dir() / "test-transformers-5.17"
    if not (side / "transformers" / "__init__.py").exists():
        pip = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(side),
                              *TRANSFORMERS_5_17], capture_output=True, text=True)
        if pip.returncode:
            shutil.rmtree(side, ignore_errors=True)
            pytest.skip(f"the conversion under transformers 5.17 is not checked: could not install "
                        f"{' '.join(TRANSFORMERS_5_17)}: {' '.join(pip.stderr.split())[-300:]}")
    old = tmp_path / "rlef" / "SmolLM2-135M-Instruct"
    shutil.copytree(smollm2_wrong_eos, old, symlinks=True)  # what an older conversion left: no stamp
    probe = ("import json, sys, transformers, data\n"
             "from transformers import AutoConfig, AutoTokenizer, GenerationConfig\n"
             "folder = data.resolve_model(data.SMOLLM2)\n"
             "print(json.dumps([transformers.__version__, folder, AutoTokenizer.from_pretrained(folder).eos_token,\n"
             "                  AutoConfig.from_pretrained(folder).eos_token_id,\n"
             "                  GenerationConfig.from_pretrained(folder).eos_token_id]))\n")
    env = {**os.environ, "PYTHONPATH": f"{side}:{ROOT}", "XDG_CACHE_HOME": str(tmp_path)}
    p = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    version, folder, eos, config_eos, generation_eos = json.loads(p.stdout.splitlines()[-1])
    assert version == "5.17.0" and folder == str(old) and "older conversion" in p.stderr
    assert (eos, config_eos, generation_eos) == ("<|im_end|>", 2, 2)
    stamp = json.loads((old / data.CONVERSION_STAMP).read_text())
    assert stamp["transformers"] == "5.17.0" and not (old / "model.safetensors").is_symlink()
