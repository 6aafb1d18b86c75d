"""The three command lines answer a user's mistake with one line, `error: ...`, and
a non-zero exit status: never a traceback. Each mistake goes through the
program's `main` in this process; one per program also runs as a real process,
to see exactly what a user sees."""
import subprocess
import sys
from pathlib import Path

import pytest

import eval as evaluation
import rlef
import sandbox

ROOT = Path(__file__).resolve().parents[1]
MAINS = {"rlef.py": rlef.main, "eval.py": evaluation.main, "sandbox.py": sandbox._main}

MISTAKES = [
    (["rlef.py", "--preset", "nope"], "unknown preset 'nope'"),
    (["rlef.py", "--model", "/no/such/model"], "no such folder"),
    (["rlef.py", "--train-data", "nosuch:split"], "unknown dataset 'nosuch:split'"),
    (["rlef.py", "--config", "/no/such/config.json"], "does not exist"),
    (["rlef.py", "--steps", "many"], "invalid int value: 'many'"),
    (["rlef.py", "--engine-dtype", "int4"], "--engine-dtype must be one of"),
    (["eval.py", "--data", "nosuch:split"], "unknown dataset 'nosuch:split'"),
    (["eval.py", "--model", "/no/such/model"], "no such folder"),
    (["eval.py", "--curve", "/no/such/metrics.jsonl"], "No such file or directory"),
    (["eval.py", "--samples", "/no/such/samples.jsonl", "--data", "humaneval"], "No such file or directory"),
    (["eval.py", "--modes", "sideways"], "unknown mode(s) sideways"),
    (["eval.py", "--k", "one"], "comma-separated integers"),
    (["sandbox.py", "/no/such/solution.py", "--input", "/dev/null", "--output", "/dev/null"], "No such file"),
    (["sandbox.py", "solution.py", "--tests", "BROKEN"], "not JSON"),
    (["sandbox.py", "solution.py", "--tests", "WRONG_KEYS"], "each test is {input, output} or {check}"),
    (["sandbox.py", "solution.py"], "no tests"),
]


def files(argv: list[str], folder: Path) -> list[str]:
    """The mistake's files, written into `folder`."""
    (folder / "solution.py").write_text("print(1)\n")
    (folder / "broken.json").write_text("{nope")
    (folder / "keys.json").write_text('[{"stdin": "1"}]')
    names = {"BROKEN": "broken.json", "WRONG_KEYS": "keys.json", "solution.py": "solution.py"}
    return [str(folder / names[a]) if a in names else a for a in argv]


@pytest.mark.parametrize("argv, message", MISTAKES)
def test_a_mistake_is_one_line(argv, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")  # rlef.py's checks as under torchrun; nothing starts
    program, *args = files(argv, tmp_path)
    with pytest.raises(SystemExit) as stop:
        MAINS[program](args + (["--out", str(tmp_path / "run")] if program == "rlef.py" else []))
    # raise SystemExit("error: ...") prints its text; argparse prints "prog: error: ..." and exits 2
    last = stop.value.code if isinstance(stop.value.code, str) else capsys.readouterr().err.strip().splitlines()[-1]
    assert stop.value.code != 0 and last.count("\n") == 0
    assert "error: " in last and message in last
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("argv, message", [MISTAKES[2], MISTAKES[6], MISTAKES[13]])
def test_what_the_user_sees(argv, message, tmp_path):
    program, *args = files(argv, tmp_path)
    p = subprocess.run([sys.executable, str(ROOT / program), *args], cwd=tmp_path, capture_output=True, text=True,
                       timeout=300, env={"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "HOME": str(Path.home())})
    assert p.returncode != 0 and "Traceback" not in p.stderr, p.stderr[-3000:]
    lines = p.stderr.strip().splitlines()
    assert "error: " in lines[-1] and message in lines[-1], p.stderr[-3000:]
