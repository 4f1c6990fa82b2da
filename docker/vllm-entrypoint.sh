#!/bin/sh
# Starts vLLM's OpenAI-compatible server on the model R2Rec serves, in either vLLM image
# (the official GPU image vllm/vllm-openai, or docker/vllm-cpu.Dockerfile).
#   sh vllm-entrypoint.sh --served-model-name r2rec --max-logprobs 32 [more vLLM flags]
# The model is the published checkpoint ($MODEL_ROOT/models/published, written by
# `r2rec retrain` / `r2rec model publish`) when one exists, else the prepared base model
# ($MODEL_ROOT/models/smollm2-135m-instruct, written by `r2rec model prepare-base`).
# The choice is made at start: restart this container after a new model is published.
# Extra flags are passed to vLLM unchanged. The module path is used rather than
# `vllm serve` because the CPU build's `vllm serve` entry point does not start.
# MODEL_ROLE=states: serve instead the published fused ranker's states/ folder (the base
# model cut at its head's layer) as a pooling model returning every token's hidden state,
# which the service reads with R2REC_STATES_URL (reasoning/backends/vllm_states.py).
set -eu
root="${MODEL_ROOT:-/checkpoints}"
if [ "${MODEL_ROLE:-generate}" = "states" ]; then
  model="$root/models/fused/states"
  if [ ! -f "$model/config.json" ]; then
    echo "vllm-entrypoint: no $model: publish a fused ranker whose head vLLM can serve" \
         "(r2rec model publish-fused; state_scale rms, last-token pooling)" >&2
    exit 2
  fi
  echo "vllm-entrypoint: serving the fused ranker's states model $model" >&2
  exec python3 -m vllm.entrypoints.openai.api_server --model "$model" \
    --host 0.0.0.0 --port 8000 --runner pooling --convert embed \
    --pooler-config '{"task": "token_embed", "tok_pooling_type": "ALL"}' "$@"
fi
model="$root/models/published"
if [ ! -f "$model/config.json" ]; then
  model="$root/models/smollm2-135m-instruct"
fi
if [ ! -f "$model/config.json" ]; then
  echo "vllm-entrypoint: no model in $root/models (published/ or smollm2-135m-instruct/);" \
       "run the model-init service: docker compose run --rm model-init" >&2
  exit 2
fi
# The published rating model's LoRA adapter was trained on the base model: it is served
# beside it as module "rating" (R2REC_RATING_LLM_MODEL=rating) only while the base model is.
adapter="$root/models/rating/adapter"
if [ "$model" = "$root/models/smollm2-135m-instruct" ] && [ -f "$adapter/adapter_config.json" ]; then
  echo "vllm-entrypoint: serving the rating adapter as \"rating\"" >&2
  set -- "$@" --enable-lora --max-lora-rank 16 --lora-modules "rating=$adapter"
fi
echo "vllm-entrypoint: serving $model" >&2
exec python3 -m vllm.entrypoints.openai.api_server --model "$model" \
  --host 0.0.0.0 --port 8000 "$@"
