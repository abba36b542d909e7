"""Find by meaning: a small static embedding model beside the full-text index.

Customers rarely use an entry's words ("waited all day and nobody turned up" for
"Technician did not show up"). A static embedding model maps each token to a
fixed vector; a text's vector is the mean of its tokens' vectors, so texts that
mean the same thing land close together even when they share no word.

The model is the one the `wordllama` package ships inside its wheel (a 32,000-
token tokenizer and 256-dimension weights): nothing is downloaded, no GPU, numpy
only at run time. Its files are read straight from the installed package: the
weights memory-mapped in half precision (16 MB, shared between processes by the
page cache), the tokenizer with the `tokenizers` library. That costs far less
memory than wordllama's own loader, which copies the table to single precision.

The model loads once per process. If it cannot load, `Meaning.error` says why,
search ranks on words alone, and the admin sees the reason (search page, `kb init`).
"""

from __future__ import annotations

import importlib.util
import json
import threading
from pathlib import Path

import numpy as np

MODEL = "l2_supercat"  # wordllama's default model: the name of its two files
DIM = 256
TOKENIZER_FILE = f"tokenizers/{MODEL}_tokenizer_config.json"
WEIGHTS_FILE = f"weights/{MODEL}_{DIM}.safetensors"
MAX_TOKENS = 512  # an entry's title, phrasings and answer; more adds little meaning
# The answer's opening says what it is about; the tokenizer's time grows with the text
# (most of `kb reindex`'s cost), and cutting the answers of tests/relevance_*.tsv to
# 400 characters changed no figure.
ANSWER_CHARS = 1000
VECTORS_PER_ENTRY = 2  # what the entry is about, and the whole entry (entry_vectors)


class Meaning:
    """The embedding model, or the reason there is none (`error`)."""

    def __init__(self, model_dir: str | Path | None = None, enabled: bool = True):
        self.name = f"wordllama {MODEL} {DIM}"
        self.error: str | None = None
        self._tokenizer = None
        self._table: np.ndarray | None = None
        if not enabled:
            self.error = "search by meaning is switched off (KB_MEANING=0); search uses words only."
            return
        try:
            folder = Path(model_dir) if model_dir else _package_folder()
            self._table = _weights(folder / WEIGHTS_FILE)
            from tokenizers import Tokenizer

            self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
            self._tokenizer.no_truncation()
        except Exception as exc:  # any failure: search goes on with words alone
            self._table = self._tokenizer = None
            self.error = f"the meaning model could not be loaded ({exc}); " \
                         "search uses words only. Reinstall kb's dependencies " \
                         "(pip install wordllama) and restart."

    @property
    def available(self) -> bool:
        return self._table is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit vectors (float32, one row per text); a text without tokens is all zeros."""
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        if not self.available or not texts:
            return out
        for row, text in enumerate(texts):
            # one text at a time: encode_batch starts a thread pool, which a forked
            # server worker must not inherit
            ids = self._token_ids(text)
            if not len(ids):
                continue
            vector = self._table[ids].astype(np.float32).mean(axis=0)
            norm = float(np.linalg.norm(vector))
            if norm > 0:
                out[row] = vector / norm
        return out

    def entry_vectors(self, title: str, phrasings: list[str] | tuple[str, ...],
                      answer: str) -> np.ndarray:
        """An entry's VECTORS_PER_ENTRY unit vectors (float32, one per row): what it is
        about (title and customer phrasings), then the whole entry (with the answer).
        Search takes the nearer of the two: a short query in the customer's words is
        nearest the first, a sheet imported without phrasings is carried by the second
        (README, "Relevance"). Each part is tokenized once; the whole entry's vector is
        the two parts' token vectors together."""
        out = np.zeros((VECTORS_PER_ENTRY, DIM), dtype=np.float32)
        if not self.available:
            return out
        about = self._token_ids(". ".join([title, *phrasings]))
        rest = self._token_ids(answer[:ANSWER_CHARS])[:max(0, MAX_TOKENS - len(about))]
        about_sum = self._table[about].astype(np.float32).sum(axis=0)
        whole_sum = about_sum + self._table[rest].astype(np.float32).sum(axis=0)
        for row, (total, count) in enumerate([(about_sum, len(about)),
                                              (whole_sum, len(about) + len(rest))]):
            norm = float(np.linalg.norm(total))
            if count and norm > 0:
                out[row] = total / norm
        return out

    def _token_ids(self, text: str) -> np.ndarray:
        ids = self._tokenizer.encode(text or "", add_special_tokens=False).ids[:MAX_TOKENS]
        return np.clip(np.asarray(ids, dtype=np.int64), 0, self._table.shape[0] - 1)


_models: dict[str, Meaning] = {}
_lock = threading.Lock()


def shared(model_dir: str | Path | None = None) -> Meaning:
    """The process's model (loaded on first use, once per folder)."""
    key = str(model_dir or "")
    with _lock:
        if key not in _models:
            _models[key] = Meaning(model_dir)
        return _models[key]


def _package_folder() -> Path:
    """The installed wordllama package's folder, found without importing it (its
    import pulls in pydantic and more; only its two data files are needed)."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the wordllama package is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _weights(path: Path) -> np.ndarray:
    """The embedding table of a safetensors file, memory-mapped (never copied)."""
    with path.open("rb") as handle:
        header_len = int.from_bytes(handle.read(8), "little")
        header = json.loads(handle.read(header_len))
    info = next(v for k, v in header.items() if k != "__metadata__")
    if info["dtype"] != "F16" or len(info["shape"]) != 2 or info["shape"][1] != DIM:
        raise ValueError(f"unexpected weights in {path.name}: {info['dtype']} {info['shape']}")
    start, _end = info["data_offsets"]
    return np.memmap(path, dtype=np.float16, mode="r", offset=8 + header_len + start,
                     shape=tuple(info["shape"]))
