"""The design notebook's MusicGPT, defined here as the notebook defines it
(section 5), saved the notebook's way, and loaded into ``seed``."""

from __future__ import annotations

import pytest
import torch
from torch import nn, optim

from midilm import vocab
from midilm.errors import CheckpointError
from midilm.model import build_model, count_parameters, load_notebook_checkpoint, make_decoder


class MusicGPT(nn.Module):
    """Simple GPT-style model for music generation (the notebook's class)."""

    def __init__(self, vocab_size, d_model=256, n_heads=8, n_layers=6, max_seq_len=1024, dropout=0.1):
        super().__init__()
        self.d_model = d_model
        self.max_seq_len = max_seq_len
        self.token_emb = nn.Embedding(vocab_size, d_model, padding_idx=0)
        self.pos_emb = nn.Embedding(max_seq_len, d_model)
        self.dropout = nn.Dropout(dropout)
        decoder_layer = nn.TransformerDecoderLayer(
            d_model=d_model, nhead=n_heads, dim_feedforward=d_model * 4, dropout=dropout, batch_first=True
        )
        self.transformer = nn.TransformerDecoder(decoder_layer, num_layers=n_layers)
        self.lm_head = nn.Linear(d_model, vocab_size)
        self.register_buffer("causal_mask", torch.triu(torch.ones(max_seq_len, max_seq_len), diagonal=1).bool())

    def forward(self, x):
        batch_size, seq_len = x.shape
        positions = torch.arange(seq_len, device=x.device).unsqueeze(0)
        x = self.token_emb(x) + self.pos_emb(positions)
        x = self.dropout(x)
        mask = self.causal_mask[:seq_len, :seq_len]
        x = self.transformer(x, x, tgt_mask=mask, memory_mask=mask)
        return self.lm_head(x)


def save_like_the_notebook(model: nn.Module, path, vocab_size: int = vocab.VOCAB_SIZE) -> None:
    optimizer = optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.01)
    model(torch.randint(3, vocab_size, (2, 16))).sum().backward()
    optimizer.step()
    torch.save(
        {
            "epoch": 3,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": optimizer.state_dict(),
            "val_loss": 2.5,
            "vocab_size": vocab_size,
            "sequence_length": 48,
        },
        path,
    )


@pytest.fixture
def notebook_file(tmp_path):
    torch.manual_seed(7)
    model = MusicGPT(vocab.VOCAB_SIZE, d_model=32, n_heads=4, n_layers=2, max_seq_len=48 + 16)
    path = tmp_path / "best_model_lm.pt"
    save_like_the_notebook(model, path)
    return model.eval(), path


def test_notebook_shape_has_the_same_parameters_as_seed_small():
    with torch.device("meta"):
        notebook = MusicGPT(vocab.VOCAB_SIZE, max_seq_len=512 + 64)
    assert count_parameters(notebook) == 8_215_374


def test_notebook_checkpoint_loads_into_seed_with_equal_logits(notebook_file, generator):
    notebook, path = notebook_file
    config, state = load_notebook_checkpoint(path, n_heads=4)
    assert (config.arch, config.d_model, config.n_layers, config.d_ff, config.context_events) == ("seed", 32, 2, 128, 8)
    seed = build_model(config)
    seed.load_state_dict(state)
    seed.eval()
    inputs = torch.randint(0, vocab.VOCAB_SIZE, (3, 40), generator=generator)
    with torch.no_grad():
        torch.testing.assert_close(seed(inputs), notebook(inputs), rtol=0, atol=1e-6)
    assert list(seed.state_dict()) == list(notebook.state_dict())


def test_loaded_notebook_model_decodes_with_a_cache(notebook_file, generator):
    notebook, path = notebook_file
    config, state = load_notebook_checkpoint(path, n_heads=4)
    seed = build_model(config)
    seed.load_state_dict(state)
    decoder = make_decoder(seed, 1)
    prompt = torch.randint(3, vocab.VOCAB_SIZE, (1, 3, 8), generator=generator)
    decoder.prefill(prompt)
    with torch.no_grad():
        expected = notebook(prompt.reshape(1, -1))[:, -1]
    torch.testing.assert_close(decoder.logits(), expected, rtol=0, atol=1e-4)


def test_a_bare_state_dict_is_accepted(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "bare.pt"
    torch.save(MusicGPT(vocab.VOCAB_SIZE, d_model=32, n_heads=4, n_layers=1, max_seq_len=32).state_dict(), path)
    config, _ = load_notebook_checkpoint(path, n_heads=4)
    assert (config.n_layers, config.context_events) == (1, 4)


def test_another_vocabulary_is_refused(tmp_path):
    path = tmp_path / "v1.pt"
    save_like_the_notebook(MusicGPT(3000, d_model=32, n_heads=4, n_layers=1, max_seq_len=32), path, vocab_size=3000)
    with pytest.raises(CheckpointError, match=r"v1\.pt: made for a vocabulary of 3000 tokens"):
        load_notebook_checkpoint(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint", "not a readable PyTorch checkpoint"),
        ({"weights": 1}, "not a notebook MusicGPT checkpoint"),
        ([1, 2], "expected a dict"),
    ],
)
def test_unreadable_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.pt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        torch.save(content, path)
    with pytest.raises(CheckpointError, match=message):
        load_notebook_checkpoint(path)


def test_missing_file_and_bad_layout_are_refused(notebook_file, tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_notebook_checkpoint(tmp_path / "absent.pt")
    _, path = notebook_file
    with pytest.raises(CheckpointError, match="not divisible by n_heads=5"):
        load_notebook_checkpoint(path, n_heads=5)
    blob = torch.load(path, weights_only=True)
    del blob["model_state_dict"]["lm_head.bias"]
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="lm_head.bias"):
        load_notebook_checkpoint(path, n_heads=4)
