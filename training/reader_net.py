"""The reader's network for training and export: a BERT encoder with two heads.

The shipped reader is this network exported to ONNX (training/export_reader.py); the library
runs it with ONNX Runtime (assistant/reader.py) and never imports this module.
"""

from __future__ import annotations

import torch
from torch import nn


class ReaderNet(nn.Module):
    """Encoder + the ``answers`` logit on [CLS] + ``span`` start/end logits per token."""

    def __init__(self, config) -> None:  # noqa: ANN001 - a transformers BertConfig
        super().__init__()
        from transformers import BertModel

        self.encoder = BertModel(config, add_pooling_layer=False)
        self.answers = nn.Linear(config.hidden_size, 1)
        self.span = nn.Linear(config.hidden_size, 2)

    @classmethod
    def from_base(cls, path: str) -> ReaderNet:
        """Heads freshly initialised on the weights of a sentence-transformers BERT folder."""
        from transformers import AutoConfig, BertModel

        net = cls(AutoConfig.from_pretrained(path))
        net.encoder = BertModel.from_pretrained(path, add_pooling_layer=False, dtype=torch.float32)
        return net

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        answers = self.answers(hidden[:, 0]).squeeze(-1)
        start, end = self.span(hidden).unbind(-1)
        return answers, start, end
