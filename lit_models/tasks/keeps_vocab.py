"""Tasks on text keep the data's vocabulary inside every checkpoint."""

from __future__ import annotations

from typing import Any, Optional

from litexp.errors import LitexpError


class KeepsVocab:
    """Mixin for tasks on text: the data's vocabulary travels inside every checkpoint.

    Generation and embedding export after loading then use exactly the ids the model was trained
    with; evaluating a checkpoint on data with another vocabulary is an error.
    """

    vocab: Optional[dict[str, Any]] = None  # Vocab.to_dict(): plain lists, loads with weights_only=True

    def _data_vocab(self) -> Optional[dict[str, Any]]:
        vocab = getattr(getattr(self.trainer, "datamodule", None), "vocab", None)
        if vocab is None:
            return None
        return vocab if isinstance(vocab, dict) else vocab.to_dict()

    def on_fit_start(self) -> None:
        self.vocab = self._data_vocab() or self.vocab

    def _check_vocab(self) -> None:
        data_vocab = self._data_vocab()
        if self.vocab is not None and data_vocab is not None and vocab_tokens(data_vocab) != vocab_tokens(self.vocab):
            raise LitexpError("the checkpoint's vocabulary differs from the data's (another corpus, level or "
                              "min_freq?); evaluate it with the data settings it was trained with")

    def on_validation_start(self) -> None:
        self._check_vocab()

    def on_test_start(self) -> None:
        self._check_vocab()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["vocab"] = self.vocab

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        self.vocab = checkpoint.get("vocab")


def vocab_tokens(vocab: dict[str, Any]) -> Any:
    """The token lists of a vocabulary dict, or of each side of a {"source": ..., "target": ...} pair."""
    if "tokens" in vocab:
        return vocab["tokens"]
    return {side: vocab_tokens(part) for side, part in vocab.items() if isinstance(part, dict)}
