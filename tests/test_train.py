"""Retraining, resume, evaluation, reconstruction, export, recipes and losses."""

import csv
import json
import math
from itertools import pairwise

import h5py
import numpy as np
import pytest
import torch
from conftest import SIZE, write_volume
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from nas_recon.cli.main import main
from nas_recon.engine.checkpoint import model_from_checkpoint, read_checkpoint
from nas_recon.errors import ConfigError, DataError, NasReconError
from nas_recon.evaluate.scoring import evaluate, predictor_for
from nas_recon.physics import center_crop, fft2c, ifft2c, make_mask
from nas_recon.physics.masks import eval_seed
from nas_recon.train.losses import parse_loss
from nas_recon.train.recipe import Recipe, load_recipe, recipe_from_dict
from nas_recon.train.retrain import RetrainConfig, RetrainProgress, run_retrain


def tiny_recipe(**kw):
    base = dict(epochs=3, batch_size=2, crop=16, lr=1e-3, lr_after=1e-4, lr_drop=0.5, val_max_slices=2)
    base.update(kw)
    return Recipe(**base)


def cfg(data_root, out, model="dccnn-1", **kw):
    return RetrainConfig(str(data_root), str(out), tiny_recipe(**kw), model=model, device="cpu", size=SIZE)


def test_short_retrain_lowers_the_loss_and_writes_checkpoints(data_root, tmp_path):
    res = run_retrain(cfg(data_root, tmp_path / "r", epochs=5, lr=3e-3))
    assert res["history"][0]["epoch"] == 0 and res["history"][0]["step"] == 0  # learning curve starts untrained
    trained = res["history"][1:]
    steps = [h["step"] for h in trained]
    assert steps[0] > 0 and steps == [steps[0] * (i + 1) for i in range(5)]
    assert all(b["wall_seconds"] >= a["wall_seconds"] for a, b in pairwise(res["history"]))
    losses = [h["train_loss"] for h in trained]
    assert losses[-1] < losses[0]
    for name in ("last.pt", "best.pt", "train_log.csv", "run.json"):
        assert (tmp_path / "r" / name).is_file()
    ck = read_checkpoint(tmp_path / "r" / "last.pt")
    assert ck["model"]["name"] == "dccnn-1" and ck["epoch"] == 5 and ck["data"]["input_max"] == 6.0
    assert [h["lr"] for h in trained] == pytest.approx([3e-3, 3e-3, 3e-3, 1e-4, 1e-4])
    model, spec, _ = model_from_checkpoint(tmp_path / "r" / "best.pt")
    assert spec.name == "dccnn-1"


class Interrupt(RetrainProgress):
    def step(self, epoch, step, loss):
        if epoch == 1 and step == 2:
            raise KeyboardInterrupt


def test_resume_gives_the_same_weights(data_root, tmp_path):
    run_retrain(cfg(data_root, tmp_path / "full"))
    with pytest.raises(KeyboardInterrupt):
        run_retrain(cfg(data_root, tmp_path / "cut"), progress=Interrupt())
    assert read_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 1
    run_retrain(cfg(data_root, tmp_path / "cut"), resume=True)
    a = read_checkpoint(tmp_path / "full" / "last.pt")
    b = read_checkpoint(tmp_path / "cut" / "last.pt")
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert [h["train_loss"] for h in a["history"]] == [h["train_loss"] for h in b["history"]]


def test_retrain_genotype(data_root, tmp_path):
    from conftest import EXAMPLE

    g = dict(EXAMPLE, channels=8, cascades=1)
    (tmp_path / "g.json").write_text(json.dumps(g))
    conf = RetrainConfig(str(data_root), str(tmp_path / "s"), tiny_recipe(epochs=1), genotype=str(tmp_path / "g.json"),
                         device="cpu", size=SIZE)
    res = run_retrain(conf)
    assert res["spec"].name == "searched" and res["spec"].genotype["cell"] == EXAMPLE["cell"]


def test_nan_loss_stops_and_keeps_last_good(data_root, tmp_path, monkeypatch):
    import nas_recon.train.retrain as rt

    calls = {"n": 0}

    def fake_objective(spec, supervision):
        def loss(o, b):
            calls["n"] += 1
            val = torch.nn.functional.l1_loss(o, b.target)
            return val * float("nan") if calls["n"] > 5 else val

        return loss

    monkeypatch.setattr(rt, "objective", fake_objective)
    with pytest.raises(NasReconError, match=r"loss became nan at epoch 2 step 2.*last.pt"):
        run_retrain(cfg(data_root, tmp_path / "n"))
    assert read_checkpoint(tmp_path / "n" / "last.pt")["epoch"] == 1


def test_evaluate_zero_filled_matches_hand_computation(data_root):
    predict, _ = predictor_for(None, "zero-filled", "cpu")
    res = evaluate(predict, data_root / "test", size=SIZE, seed=5)
    assert set(res["aggregate"]) == {"4x", "8x"}
    path = next((data_root / "test").glob("*.h5"))
    with h5py.File(path) as f:
        raw, esc = f["kspace"][()], f["reconstruction_esc"][()]
    dr = esc.max()
    for row in res["slices"]:
        img = center_crop(ifft2c(torch.from_numpy(raw[row["slice"]])), SIZE, SIZE)
        rng = np.random.default_rng(eval_seed(5, path.name, row["slice"], row["acceleration"]))
        m = torch.from_numpy(make_mask(SIZE, row["acceleration"], rng=rng).astype(np.float32))
        x0 = ifft2c(fft2c(img) * m).abs().numpy().astype(np.float64)
        gt = img.abs().numpy().astype(np.float64)
        assert row["psnr"] == pytest.approx(peak_signal_noise_ratio(gt, x0, data_range=dr), abs=1e-3)
        assert row["ssim"] == pytest.approx(structural_similarity(gt, x0, data_range=dr, win_size=7), abs=1e-4)
        assert row["nmse"] == pytest.approx(np.sum((gt - x0) ** 2) / np.sum(gt**2), rel=1e-3)
    psnrs = [r["psnr"] for r in res["slices"] if r["acceleration"] == 4.0]
    assert res["aggregate"]["4x"]["psnr"]["mean"] == pytest.approx(np.mean(psnrs))
    assert res["aggregate"]["4x"]["psnr"]["std"] == pytest.approx(np.std(psnrs))
    assert len(res["volumes"]) == 2


def test_cli_retrain_evaluate_reconstruct_export(data_root, tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text("epochs = 1\nbatch_size = 2\ncrop = 16\nval_max_slices = 2\n")
    run = tmp_path / "run"
    assert main(["retrain", "--model", "rdn-1", "--data", str(data_root), "--out", str(run), "--recipe", str(recipe),
                 "--size", str(SIZE), "--device", "cpu"]) == 0
    assert main(["evaluate", "--checkpoint", str(run / "best.pt"), "--data", str(data_root / "test"), "--out",
                 str(tmp_path / "m.json"), "--size", str(SIZE)]) == 0
    m = json.loads((tmp_path / "m.json").read_text())
    assert m["method"]["model"] == "rdn-1" and {"4x", "8x"} == set(m["aggregate"])
    # reconstruct: one file without a mask, one carrying its own mask
    inp = tmp_path / "inp"
    inp.mkdir()
    write_volume(inp / "a.h5", slices=2)
    mask = np.zeros(36, dtype=bool)  # fastMRI layout: as wide as the file's k-space (40 x 36), not the crop
    mask[::3] = True
    write_volume(inp / "b.h5", slices=3, mask=mask)
    assert main(["reconstruct", "--checkpoint", str(run / "best.pt"), "--input", str(inp), "--out",
                 str(tmp_path / "rec"), "--size", str(SIZE)]) == 0
    with h5py.File(tmp_path / "rec" / "a.h5") as f:
        assert f["reconstruction"].dtype == np.float32 and f["reconstruction"].shape == (2, SIZE, SIZE)
    with h5py.File(tmp_path / "rec" / "b.h5") as f:
        assert f["reconstruction"].shape == (3, SIZE, SIZE) and f.attrs["mask"] == "from file"
        rec = f["reconstruction"][()]
    with h5py.File(inp / "b.h5") as f:
        ref = f["reconstruction_esc"][()]
    assert 0.2 < rec.max() / ref.max() < 5  # original intensity scale
    # export round trip
    ts = tmp_path / "m.ts"
    assert main(["export", "--checkpoint", str(run / "best.pt"), "--format", "torchscript", "--out", str(ts)]) == 0
    model, _, _ = model_from_checkpoint(run / "best.pt")
    loaded = torch.jit.load(str(ts))
    x = torch.randn(1, 2, 20, 24)
    mk = torch.ones(1, 1, 1, 24)
    torch.testing.assert_close(loaded(x, x, mk), model.eval()(x, x, mk))


def test_matrix_fusion_equals_fft_fusion():
    from nas_recon.evaluate.export import MatrixFusion
    from nas_recon.physics import KSpaceFusion

    x, k0 = torch.randn(2, 2, 12, 10), torch.randn(2, 2, 12, 10)
    mask = (torch.rand(2, 1, 1, 10) > 0.5).float()
    for layer in (KSpaceFusion(), KSpaceFusion(0.3)):
        torch.testing.assert_close(MatrixFusion(layer, 12, 10)(x, k0 * mask, mask), layer(x, k0 * mask, mask),
                                   atol=1e-5, rtol=1e-4)


def test_bad_inputs(data_root, tmp_path):
    with pytest.raises(ConfigError, match="unknown model 'vgg'"):
        run_retrain(cfg(data_root, tmp_path / "a", model="vgg"))
    (tmp_path / "bad.json").write_text('{"format": "nas-recon-genotype", "version": 1}')
    with pytest.raises(ConfigError, match="field 'channels'"):
        run_retrain(RetrainConfig(str(data_root), str(tmp_path / "b"), tiny_recipe(),
                                  genotype=str(tmp_path / "bad.json")))
    with pytest.raises(DataError, match="no train/ or val/ subfolder"):
        run_retrain(cfg(data_root / "test", tmp_path / "c"))
    (tmp_path / "corrupt.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="corrupt"):
        model_from_checkpoint(tmp_path / "corrupt.pt")


def test_checkpoint_from_another_model(data_root, tmp_path):
    run_retrain(cfg(data_root, tmp_path / "a", epochs=1))
    ck = read_checkpoint(tmp_path / "a" / "last.pt")
    ck["model"]["name"] = "rdn-1"
    torch.save(ck, tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="weights do not fit model 'rdn-1'"):
        model_from_checkpoint(tmp_path / "x.pt")
    with pytest.raises(ConfigError, match="--resume: setting 'model.name' was 'dccnn-1', now 'rdn-1'"):
        run_retrain(cfg(data_root, tmp_path / "a", model="rdn-1", epochs=2), resume=True)


@pytest.mark.parametrize(
    "text,message",
    [("epochs = 3\nwarmup = 2", "unknown key 'warmup'"),
     ('epochs = "3"', "key 'epochs' must be a non-negative integer"),
     ("lr = -1.0", "key 'lr' must be a finite positive number"), ("accelerations = [0.5]", "key 'accelerations'"),
     ("loss = 3", "key 'loss' must be a string")],
)
def test_recipe_validation(tmp_path, text, message):
    p = tmp_path / "r.toml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_recipe(str(p))


def test_shipped_recipes():
    paper = load_recipe("paper")
    assert (paper.epochs, paper.lr, paper.lr_after, paper.lr_drop, paper.loss) == (80, 1e-3, 1e-4, 0.5, "l1")
    assert paper.accelerations == [4.0, 8.0] and paper.mask_type == "random"
    assert load_recipe("quick").epochs < paper.epochs
    with pytest.raises(ConfigError, match="unknown recipe"):
        load_recipe("slow")
    assert recipe_from_dict({}, "x") == Recipe()


def test_losses():
    a, b = torch.rand(2, 2, 200, 200), torch.rand(2, 2, 200, 200)
    l1 = parse_loss("l1")(a, b)
    ms = parse_loss("ms-ssim")(a, b)
    mix = parse_loss("l1+ms-ssim:0.16")(a, b)
    assert float(mix) == pytest.approx(float(0.16 * l1 + 0.84 * ms), rel=1e-5)
    assert float(parse_loss("ssim")(a, a)) == pytest.approx(0.0, abs=1e-5)
    assert float(parse_loss("mse")(a, b)) == pytest.approx(float(((a - b) ** 2).mean()))
    for bad in ("l2", "l1+ssim", "l1+ms-ssim:1.5", "ssim+l1:0.5"):
        with pytest.raises(ConfigError, match="--loss"):
            parse_loss(bad)
    with pytest.raises(ConfigError, match="at least 97 pixels"):
        parse_loss("ms-ssim")(torch.rand(1, 2, 32, 32), torch.rand(1, 2, 32, 32))


def test_tv_improves_on_zero_filled_and_matches_bart_when_present():
    from conftest import phantom

    from nas_recon.models.tv import bart_available, tv_bart, tv_torch

    rng = np.random.default_rng(0)
    clean = phantom(64, 64, rng)  # piecewise constant; with 3 % complex noise, as measured data have
    noise = rng.standard_normal(clean.shape) + 1j * rng.standard_normal(clean.shape)
    noisy = clean + 0.03 * np.abs(clean).max() * noise
    img = torch.from_numpy(noisy.astype(np.complex64))
    mask = torch.from_numpy(make_mask(64, 4, rng=np.random.default_rng(1)).astype(np.float32))
    k = fft2c(img) * mask
    gt = img.abs().numpy()
    zf = ifft2c(k).abs().numpy()
    tv = tv_torch(k, mask).abs().numpy()
    p_zf = peak_signal_noise_ratio(gt, zf, data_range=gt.max())
    p_tv = peak_signal_noise_ratio(gt, tv, data_range=gt.max())
    assert p_tv > p_zf + 1.0
    if bart_available():
        p_bart = peak_signal_noise_ratio(gt, tv_bart(k, mask).abs().numpy(), data_range=gt.max())
        assert abs(p_bart - p_tv) < 0.5
    assert math.isfinite(p_tv)


def test_onnx_export_round_trip(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from conftest import EXAMPLE

    from nas_recon.evaluate.export import export_model
    from nas_recon.genotype import genotype_from_dict
    from nas_recon.models.registry import build_model, spec_for_genotype

    g = genotype_from_dict(dict(EXAMPLE, channels=8))
    torch.manual_seed(0)
    model = build_model(spec_for_genotype(g)).eval()
    x = torch.randn(1, 2, 16, 16)
    mask = torch.zeros(1, 1, 1, 16)
    mask[..., 4:12] = 1
    with torch.no_grad():
        ref = model(x, x * mask, mask).numpy()
    out = export_model(model, "onnx", tmp_path / "m.onnx", size=16)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy(), "kspace": (x * mask).numpy(), "mask": mask.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)


def test_multicoil_onnx_export_is_the_sense_cascade(tmp_path):
    """A multi-coil cascade network exported to ONNX (the SENSE operator as DFT matrices, maps an input) gives the
    FFT model's output; TorchScript, soft SENSE DC and non-cascade models are refused in words."""
    ort = pytest.importorskip("onnxruntime")
    from nas_recon.evaluate.export import export_model
    from nas_recon.models.registry import ModelSpec, build_model

    g = torch.Generator().manual_seed(0)
    b, c, n = 1, 3, 16
    maps = torch.randn(b, c, 2, n, n, generator=g)
    maps = maps / (maps**2).sum(dim=(1, 2), keepdim=True).sqrt()  # sum_c |S_c|^2 = 1
    mask = torch.zeros(b, 1, 1, n)
    mask[..., 5:11] = 1
    mask[..., 1] = 1
    k0 = torch.randn(b, c, 2, n, n, generator=g) * mask.unsqueeze(1)
    x = torch.randn(b, 2, n, n, generator=g)
    torch.manual_seed(0)
    model = build_model(ModelSpec("dccnn-2", channels=8, cascades=2)).eval()
    with torch.no_grad():
        ref = model(x, k0, mask, maps).numpy()
    out = export_model(model, "onnx", tmp_path / "mc.onnx", size=n, coils=c)
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"input": x.numpy(), "kspace": k0.numpy(), "mask": mask.numpy(), "maps": maps.numpy()})[0]
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=1e-3)
    with pytest.raises(ConfigError, match="TorchScript exports are single-coil, use --format onnx"):
        export_model(model, "torchscript", tmp_path / "mc.pt", coils=c)
    soft = build_model(ModelSpec("modl-1", channels=8, cascades=1, learnable_lam=True))
    with pytest.raises(ConfigError, match="soft"):
        export_model(soft, "onnx", tmp_path / "soft.onnx", size=n, coils=c)
    with pytest.raises(ConfigError, match="cascade networks"):
        export_model(build_model(ModelSpec("unet", channels=4)), "onnx", tmp_path / "u.onnx", size=n, coils=c)
    assert not any(p.name != "mc.onnx" for p in tmp_path.iterdir())


def test_unet_trains_under_its_own_crop_batch_and_repeats(data_root, tmp_path):
    """unet_crop / unet_batch_size / unet_repeats apply to the U-Net only (fastMRI: whole images, batch 1)."""
    # a unet_crop above the image size means whole images
    kw = dict(epochs=1, crop=16, batch_size=2, repeats=2, unet_crop=10 * SIZE, unet_batch_size=1, unet_repeats=1)
    u = run_retrain(cfg(data_root, tmp_path / "u", model="unet", **kw))
    d = run_retrain(cfg(data_root, tmp_path / "d", model="dccnn-1", **kw))
    # batch 1 against batch 2, each slice drawn once against twice: the same number of steps
    assert u["history"][-1]["step"] == d["history"][-1]["step"]
    saved = json.loads((tmp_path / "u" / "run.json").read_text())["recipe"]
    assert (saved["crop"], saved["batch_size"], saved["repeats"]) == (SIZE, 1, 1)
    saved = json.loads((tmp_path / "d" / "run.json").read_text())["recipe"]
    assert (saved["crop"], saved["batch_size"], saved["repeats"]) == (16, 2, 2)


@pytest.mark.parametrize("model", ["dccnn-1", "searched"])
def test_bf16_mixed_retrain_tracks_fp32(data_root, tmp_path, model):
    """--precision bf16-mixed (issue 21): the networks under autocast, fusion and loss in float32; the first
    epoch's loss and validation PSNR stay within bf16 rounding of the fp32 run, and the precision is recorded
    and fixed on resume."""
    from conftest import EXAMPLE

    g = tmp_path / "g.json"
    g.write_text(json.dumps(dict(EXAMPLE, channels=4, cascades=1)))
    recipe = Recipe(epochs=1, batch_size=2, crop=16, val_max_slices=1)
    runs = {}
    for precision in ("32", "bf16-mixed"):
        cfg = RetrainConfig(str(data_root), str(tmp_path / precision), recipe, model=None if model == "searched"
                            else model, genotype=str(g) if model == "searched" else None, device="cpu", size=SIZE,
                            precision=precision)
        runs[precision] = run_retrain(cfg)["history"][-1]
    fp32, bf16 = runs["32"], runs["bf16-mixed"]
    assert bf16["train_loss"] == pytest.approx(fp32["train_loss"], rel=0.05)
    assert bf16["val_psnr"] == pytest.approx(fp32["val_psnr"], abs=0.3)
    assert json.loads((tmp_path / "bf16-mixed" / "run.json").read_text())["precision"] == "bf16-mixed"
    with pytest.raises(ConfigError, match="'precision' was 'bf16-mixed', now '32'"):
        run_retrain(RetrainConfig(str(data_root), str(tmp_path / "bf16-mixed"), recipe,
                                  model=None if model == "searched" else model,
                                  genotype=str(g) if model == "searched" else None, device="cpu", size=SIZE),
                    resume=True)


def test_float16_training_needs_cuda(data_root, tmp_path):
    with pytest.raises(ConfigError, match="16-mixed needs a CUDA device"):
        run_retrain(RetrainConfig(str(data_root), str(tmp_path / "r"), Recipe(epochs=1), model="dccnn-1",
                                  device="cpu", size=SIZE, precision="16-mixed"))
    assert not (tmp_path / "r").exists()


def _event_tags(folder) -> dict[str, list[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc.Tags()


def test_retrain_writes_tensorboard_events_beside_the_csv(data_root, tmp_path):
    """With tensorboard installed, RUN/tensorboard holds losses, validation metrics, the lr and a validation image
    (zero-filled | output | target | error) per epoch; train_log.csv is unchanged as the record."""
    pytest.importorskip("tensorboard")
    out = tmp_path / "r"
    run_retrain(RetrainConfig(str(data_root), str(out), Recipe(epochs=2, batch_size=2, crop=16, val_max_slices=1),
                              model="dccnn-1", device="cpu", size=SIZE))
    tags = _event_tags(out / "tensorboard")
    assert {"loss/train", "val/psnr", "val/ssim", "lr", "val/psnr_4x", "val/psnr_8x", "val/ssim_4x",
            "val/ssim_8x"} <= set(tags["scalars"])
    assert tags["images"] == ["val/zero-filled|output|target|error"]
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(out / "tensorboard"))
    acc.Reload()
    psnr = [e.value for e in acc.Scalars("val/psnr")]
    rows = list(csv.DictReader((out / "train_log.csv").open()))
    assert psnr == pytest.approx([float(r["val_psnr"]) for r in rows[1:]], rel=1e-6)


def test_tv_of_several_slices_runs_bart_in_parallel_in_input_order(monkeypatch):
    """BART: one single-threaded pics per core at once, results in the slices' order, equal to one at a time."""
    import threading
    import time

    from nas_recon.models import tv

    seen: list[tuple[int, int | None, str]] = []

    def fake_bart(k, m, threads=None, maps=None):
        time.sleep(0.05 * (4 - int(k.real.flatten()[0])))  # later slices finish first
        seen.append((int(k.real.flatten()[0]), threads, threading.current_thread().name))
        return k * 2

    monkeypatch.setattr(tv, "tv_bart", fake_bart)
    monkeypatch.setattr(tv, "bart_available", lambda: True)
    monkeypatch.setattr(tv.os, "cpu_count", lambda: 2)
    ks = [torch.full((4, 4), float(i), dtype=torch.complex64) for i in range(4)]
    outs, name = tv.tv_reconstruct_many(ks, [torch.ones(4)] * 4)
    assert name == "bart" and [int(o.real[0, 0]) for o in outs] == [0, 2, 4, 6]
    assert {t for _, t, _ in seen} == {1} and len({n for _, _, n in seen}) == 2  # 2 workers, 1 thread each
    monkeypatch.setattr(tv, "bart_available", lambda: False)
    assert tv.tv_reconstruct_many(ks[:1], [torch.ones(4)])[1] == "torch"
