"""The one training engine: every Trainer built in one place, last.pt as a nas-recon checkpoint holding
Lightning's state, resumes that draw each epoch as an uninterrupted run does."""

import re
from pathlib import Path

import pytest
import torch
from conftest import SIZE

from nas_recon.data.sampler import EpochSampler
from nas_recon.engine.checkpoint import model_from_checkpoint, read_checkpoint
from nas_recon.engine.checkpoint_io import EXTRA, RunCheckpointIO
from nas_recon.engine.dist import ALONE, ShardedBatches
from nas_recon.errors import ConfigError
from nas_recon.train.recipe import Recipe
from nas_recon.train.retrain import RetrainConfig, RetrainProgress, run_retrain

ROOT = Path(__file__).resolve().parents[1]


def test_one_place_builds_every_trainer():
    found = []
    for path in [*(ROOT / "nas_recon").rglob("*.py"), *(ROOT / "bench").rglob("*.py")]:
        if re.search(r"\bTrainer\(", path.read_text()):
            found.append(path.relative_to(ROOT).as_posix())
    assert found == ["nas_recon/engine/trainer.py"]


def test_batches_are_drawn_after_the_epoch_is_set():
    # Lightning makes a resumed fit's first iterator before it sets the sampler's epoch: the draw must wait
    sampler = ShardedBatches(EpochSampler(12, 3), 4, ALONE)
    it = iter(sampler)
    sampler.set_epoch(5)
    got = [i for b in it for i in b]
    order = EpochSampler(12, 3)
    order.set_epoch(5)
    assert got == list(order) and got != list(EpochSampler(12, 3))


def recipe(**kw):
    return Recipe(**{**dict(epochs=3, batch_size=2, crop=16, lr=1e-3, lr_after=1e-4, lr_drop=0.5,
                            val_max_slices=2), **kw})


class StopAt(RetrainProgress):
    def __init__(self, epoch):
        self.epoch = epoch

    def step(self, epoch, step, loss):
        if epoch == self.epoch and step == 1:
            raise KeyboardInterrupt


def test_last_pt_holds_the_network_and_lightnings_state(data_root, tmp_path):
    out = tmp_path / "r"
    with pytest.raises(KeyboardInterrupt):
        run_retrain(RetrainConfig(str(data_root), str(out), recipe(), model="dccnn-1", device="cpu", size=SIZE),
                    progress=StopAt(2))
    ck = read_checkpoint(out / "last.pt")  # the format, and the sha256 of the network's weights
    assert ck["epoch"] == 2 and len(ck["history"]) == 3  # the untrained row and two epochs
    assert ck["lightning"]["loops"]["fit_loop"]["epoch_progress"]["total"]["processed"] == 2
    assert len(ck["lightning"]["optimizer_states"]) == 1 and ck["scheduler"]["last_epoch"] == 2
    model, spec, _ = model_from_checkpoint(out / "last.pt")  # what evaluate and export load
    assert spec.name == "dccnn-1" and set(model.state_dict()) == set(ck["state_dict"])
    back = RunCheckpointIO().load_checkpoint(out / "last.pt")  # what Lightning restores from
    assert all(k.startswith("net.") for k in back["state_dict"]) and back[EXTRA]["best_psnr"] == ck["best_psnr"]
    assert torch.equal(back["state_dict"]["net." + next(iter(ck["state_dict"]))], next(iter(ck["state_dict"].values())))


def test_checkpoint_io_refuses_state_outside_the_network(tmp_path):
    with pytest.raises(ValueError, match="lies outside the network"):
        RunCheckpointIO().save_checkpoint({EXTRA: {}, "state_dict": {"other.w": torch.zeros(1)}}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_every_kind_keeps_one_checkpoint_format_and_refuses_another_kinds(tmp_path):
    from nas_recon.search.config import RECORD as SEARCH
    from nas_recon.train.pretrain import RECORD as PRETRAIN
    from nas_recon.train.retrain import RECORD as RETRAIN

    lightning = {"epoch": 3, "global_step": 9, "pytorch-lightning_version": "2", "loops": {}, "optimizer_states": []}
    for record, module in ((SEARCH, "training_module.model.w"), (RETRAIN, "net.w"), (PRETRAIN, "model.net.w")):
        out = tmp_path / record.kind
        assert record.checkpoint(out) == out / "last.pt" and record.resumable(out) is None
        io = record.checkpoint_io()
        io.save_checkpoint({**lightning, "state_dict": {module: torch.ones(2)},
                            EXTRA: {"model": {"name": record.kind}}}, record.checkpoint(out))
        ck = read_checkpoint(out / "last.pt")  # nas-recon's format: its kind, the weights at the top level
        assert ck["kind"] == record.kind and list(ck["state_dict"]) == [module.removeprefix(record.prefix)]
        back = io.load_checkpoint(out / "last.pt")  # what Lightning restores: its own keys, the module's names
        assert back["epoch"] == 3 and torch.equal(back["state_dict"][module], torch.ones(2))
        assert record.resumable(out) == out / "last.pt"
    with pytest.raises(ConfigError, match="a retrain checkpoint, not a search one"):
        SEARCH.checkpoint_io().load_checkpoint(tmp_path / "retrain" / "last.pt")
    with pytest.raises(ConfigError, match="a search checkpoint, not a pretrain one"):
        PRETRAIN.checkpoint_io().load_checkpoint(tmp_path / "search" / "last.pt")
    # an earlier version's search and pretraining kept Lightning's own files: found, and read as they are
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    legacy = old / "checkpoints" / "last.ckpt"
    torch.save({**lightning, "state_dict": {"training_module.model.w": torch.ones(2)}}, legacy)
    assert SEARCH.resumable(old) == legacy and RETRAIN.resumable(old) is None
    assert SEARCH.checkpoint_io().load_checkpoint(legacy)["epoch"] == 3


def test_a_damaged_last_pt_is_refused_before_lightning_sees_it(data_root, tmp_path):
    out = tmp_path / "r"
    cfg = RetrainConfig(str(data_root), str(out), recipe(epochs=2), model="dccnn-1", device="cpu", size=SIZE)
    with pytest.raises(KeyboardInterrupt):
        run_retrain(cfg, progress=StopAt(1))
    ck = torch.load(out / "last.pt", weights_only=False)
    ck["lightning"]["optimizer_states"][0]["param_groups"][0]["params"] = [0]  # one parameter fewer
    torch.save(ck, out / "last.pt")
    with pytest.raises(ConfigError, match="last.pt: its training state does not fit this run"):
        run_retrain(cfg, resume=True)


def test_one_run_record_writes_checks_and_refuses_for_every_kind(tmp_path):
    """run.json by the engine's RunRecord: kind and version first, a folder in use refused, a changed fixed
    setting refused, a key an older record lacks read as its default; search, retrain and pretrain each declare one."""
    import json

    from nas_recon import __version__
    from nas_recon.engine.record import RunRecord
    from nas_recon.search.config import RECORD as SEARCH
    from nas_recon.train.pretrain import RECORD as PRETRAIN
    from nas_recon.train.retrain import RECORD as RETRAIN

    assert {r.kind for r in (SEARCH, RETRAIN, PRETRAIN)} == {"search", "retrain", "pretrain"}
    rec = RunRecord("retrain", ("seed", "precision"), {"precision": "32"}, "retrain")
    out = tmp_path / "run"
    rec.write(out, {"seed": 0, "model": {"name": "dccnn-3"}})
    saved = json.loads((out / "run.json").read_text())
    assert list(saved)[:2] == ["kind", "version"] and saved["kind"] == "retrain" and saved["version"] == __version__
    marker = out / "last.pt"
    rec.check_new(out, False, marker)  # no marker yet: a new run may start
    marker.write_bytes(b"")
    with pytest.raises(ConfigError, match=re.escape(f"{out}: a retrain run is already there (use --resume")):
        rec.check_new(out, False, marker)
    rec.check_new(out, True, marker)
    rec.check_resume(out, {"seed": 0, "precision": "32"})  # 'precision' absent from the record: its default
    with pytest.raises(ConfigError, match="setting 'precision' was '32', now 'bf16-mixed'"):
        rec.check_resume(out, {"seed": 0, "precision": "bf16-mixed"})
    with pytest.raises(ConfigError, match="the record of a retrain run, not a search run"):
        SEARCH.read(out)
