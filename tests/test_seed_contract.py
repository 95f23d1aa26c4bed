"""The seed snippet from the original design runs unchanged."""
import pytest
import torch
from torch.utils.data import DataLoader

from autogpt_gui.engine.data.loaders import WindowDataset
from autogpt_gui.engine.data.sources import PythonDocsSource
from autogpt_gui.engine.model.gpt import AutoGPTModel
from autogpt_gui.engine.train.trainer import Trainer


@pytest.mark.slow
def test_seed_snippet_trains_and_lowers_validation_loss():
    text = PythonDocsSource()._text()[:120_000]  # bytes: token ids 0..255 for the default model
    tokens = torch.tensor(list(text), dtype=torch.long)
    split = int(len(tokens) * 0.9)
    train_dataset = WindowDataset(tokens[:split].numpy(), 64)
    val_dataset = WindowDataset(tokens[split:].numpy(), 64)
    torch.manual_seed(0)

    model = AutoGPTModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    train_loader = DataLoader(train_dataset, batch_size=32, shuffle=True)
    val_loader = DataLoader(val_dataset, batch_size=32, shuffle=False)
    trainer = Trainer(model, optimizer, train_loader, val_loader)
    before = trainer.evaluate()
    trainer.train(2)

    after = trainer.evaluate()
    assert trainer.device.type == "cpu"
    assert trainer.epoch == 2 and trainer.step == 2 * len(train_loader)
    assert after < before - 1.0, (before, after)


def test_train_epoch_returns_mean_loss():
    tokens = torch.randint(0, 256, (5000,))
    ds = WindowDataset(tokens.numpy(), 32)
    model = AutoGPTModel()
    trainer = Trainer(model, torch.optim.AdamW(model.parameters(), lr=1e-3), DataLoader(ds, batch_size=16),
                      DataLoader(ds, batch_size=16))
    mean = trainer.train_epoch()
    assert 4.0 < mean < 6.5 and trainer.epoch == 1
