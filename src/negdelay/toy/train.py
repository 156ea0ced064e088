"""Train the toy Stable Diffusion model on the shapes world.

    python -m negdelay.toy.train                       # the shipped model: seed 0, default budgets
    python -m negdelay.toy.train --unet-steps 500      # a short run
    python -m negdelay.toy.train --device cuda         # on a GPU, if one is there

Two phases, both resumable from ``--ckpt-dir`` (atomic checkpoints every ``--ckpt-minutes``; a kill -9 loses at most
one interval; the data and noise random states are saved with the weights):

1. VAE (AutoencoderKL, 2x down-sampling, 4 latent channels): MSE + 0.1 L1 + 1e-5 KL. Then the posterior mean and
   std of every training image are computed once, and the scaling factor is set so that latents have unit std.
2. UNet2DConditionModel + CLIPTextModel, jointly: epsilon prediction, min-SNR(5) weighting, AdamW, linear warm-up,
   gradient clip 1.0, EMA of the weights, 10 % caption dropout that keeps the dot rate of dropped images equal to
   the rate under plain captions (``world.dropout_mask``).

Every ``--export-minutes`` (and at the end) the EMA weights are exported as a diffusers folder (fp16 safetensors)
to ``--out``: written to a temporary folder next to it, then renamed into place.

A phase stops at its step budget or its time budget, whichever comes first; with step budgets only
(``--vae-minutes 0 --unet-minutes 0``) the run is a function of the seed alone.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

# On a shared machine, OpenMP threads that spin at barriers stall each other when the cores are oversubscribed
# (measured here: 38 s per UNet step with 2 spinning threads under load vs 1.7 s passive). Must be set before torch.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import torch
import torch.nn.functional as F

from . import world
from .tokenizer import make_tokenizer

DEFAULT_OUT = Path(__file__).resolve().parent / "model"

SCHEDULER_CONFIG = dict(  # Stable Diffusion v1's scheduler
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    set_alpha_to_one=False,
    skip_prk_steps=True,
    steps_offset=1,
    prediction_type="epsilon",
    trained_betas=None,
)


def log(msg: str) -> None:
    print(time.strftime("%H:%M:%S"), msg, flush=True)


# ----------------------------------------------------------------------------------------------------------- models
def make_tokenizer_for_world():
    return make_tokenizer(world.VOCAB, world.MAX_TOKENS)


def make_vae():
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        norm_num_groups=16,
        sample_size=world.SIZE,
        scaling_factor=1.0,
    )


def make_text_encoder(tokenizer):
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=world.MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return CLIPTextModel(cfg)


def make_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=world.SIZE // 2,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64, 128),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=2,
        cross_attention_dim=64,
        attention_head_dim=8,
        norm_num_groups=16,
    )


# ------------------------------------------------------------------------------------------------------ checkpoints
def atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_pipeline(vae, text_encoder, unet, tokenizer, out: Path, info: dict) -> None:
    """Write a diffusers folder (fp16 weights) to ``out``: into a temp folder, then renamed into place."""
    import copy

    from diffusers import PNDMScheduler, StableDiffusionPipeline

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp-export")
    old = out.with_name(out.name + ".old-export")
    for p in (tmp, old):
        if p.exists():
            shutil.rmtree(p)
    mods = [copy.deepcopy(m).to("cpu", torch.float16).eval() for m in (vae, text_encoder, unet)]
    pipe = StableDiffusionPipeline(
        vae=mods[0],
        text_encoder=mods[1],
        tokenizer=tokenizer,
        unet=mods[2],
        scheduler=PNDMScheduler(**SCHEDULER_CONFIG),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(tmp), safe_serialization=True)
    _say_no_clipping(tmp / "scheduler" / "scheduler_config.json")
    (tmp / "training_info.json").write_text(json.dumps(info, indent=1))
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    if old.exists():
        shutil.rmtree(old)


def _say_no_clipping(path: Path) -> None:
    """Write ``clip_sample: false`` into the scheduler config, as Stable Diffusion's own config does: PNDM has no such
    argument, so ``save_pretrained`` leaves it out, and DDIM/DDPM built ``from_config`` would then clip latents."""
    cfg = json.loads(path.read_text())
    cfg["clip_sample"] = False
    path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


# -------------------------------------------------------------------------------------------------------- VAE phase
def train_vae(args, data, ckpt_dir: Path, device):
    path = ckpt_dir / "vae.pt"
    vae = make_vae().to(device)
    opt = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    rng = np.random.default_rng([args.seed, 1])
    gen = torch.Generator().manual_seed(args.seed + 1)
    step, elapsed, done = 0, 0.0, False
    if path.exists():
        ck = torch.load(path, weights_only=False)
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        gen.set_state(ck["gen"])
        step, elapsed, done = ck["step"], ck["elapsed"], ck["done"]
        log(f"vae: resumed at step {step} ({elapsed / 60:.1f} min done, finished={done})")
    if done:
        return vae.eval()

    def save(done_: bool):
        atomic_save(
            dict(vae=vae.state_dict(), opt=opt.state_dict(), rng=rng.bit_generator.state, gen=gen.get_state(),
                 step=step, elapsed=elapsed, done=done_),
            path,
        )

    images = data["images"]
    vae.train()
    t_start, t_ck, losses = time.time() - elapsed, time.time(), []
    while True:
        elapsed = time.time() - t_start
        if (args.vae_steps and step >= args.vae_steps) or (args.vae_minutes and elapsed >= args.vae_minutes * 60):
            break
        idx = rng.integers(0, len(images), args.vae_batch)
        x = torch.from_numpy(images[idx]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen).to(device)
        rec = vae.decode(z).sample
        kl = post.kl().mean() / z[0].numel()
        loss = F.mse_loss(rec, x) + 0.1 * F.l1_loss(rec, x) + 1e-5 * kl
        if args.vae_guided_weight:
            loss = loss + args.vae_guided_weight * guided_decode_loss(vae, data, idx, rng, gen, args, device)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        opt.step()
        step += 1
        losses.append(F.mse_loss(rec, x).item())
        if step % args.log_every == 0:
            log(f"vae step {step} mse {np.mean(losses):.4f} ({elapsed / 60:.1f} min)")
            losses = []
        if time.time() - t_ck > args.ckpt_minutes * 60:
            save(False)
            t_ck = time.time()
    save(True)
    log(f"vae: done, {step} steps in {elapsed / 60:.1f} min")
    return vae.eval()


def recoloured(data: dict, idx: np.ndarray, colours: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The scenes ``idx`` with their object (not the dot) repainted in ``colours`` (indices into world.COLOURS),
    jittered like the world's colours: the same geometry in another colour."""
    images = data["images"][idx].astype(np.float64) / 255.0
    paint = data["object_mask"][idx] & ~data["accessory_mask"][idx]
    for k, c in enumerate(colours):
        rgb = np.array(world.COLOUR_RGB[world.COLOURS[int(c)]], np.float64) / 255.0
        images[k][paint[k]] = np.clip(rgb + rng.uniform(-0.05, 0.05, size=3), 0, 1)
    return images


def guided_decode_loss(vae, data: dict, idx: np.ndarray, rng: np.random.Generator, gen, args, device):
    """Guidance in latent space should decode like guidance in pixel space.

    Classifier-free guidance extrapolates: ``uncond + s * (cond - uncond)``. The diagnosis (benchmarks/toy_diagnose.py,
    docs/toy-model.md) found the first VAE decoding extrapolated *red* latents as white or yellow from s = 2 on, while
    blue held to s = 9: with a near-deterministic posterior the decoder never saw latents off the data's thin manifold.
    This term paints each scene in all four colours, takes as the anchor either the mean of the four (what an
    unconditional prediction averages) or one other colour, extrapolates the encodings from the anchor to the scene's
    colour with a random s in [1, ``args.vae_guided_max``] and asks the decoder for the clipped pixel extrapolation.
    """
    n, k = len(idx), len(world.COLOURS)
    painted = [torch.from_numpy(recoloured(data, idx, np.full(n, c), rng)).permute(0, 3, 1, 2).float() * 2 - 1
               for c in range(k)]
    x = torch.stack(painted).to(device)  # (colours, n, 3, H, W)
    z = vae.encode(x.flatten(0, 1)).latent_dist.mean.unflatten(0, (k, n))
    rows = torch.arange(n)
    b = torch.from_numpy(rng.integers(0, k, n))
    a = (b + torch.from_numpy(rng.integers(1, k, n))) % k
    use_mean = (torch.rand(n, generator=gen) < 0.5).view(n, 1, 1, 1).to(device)
    xa = torch.where(use_mean, x.mean(0), x[a, rows])
    za = torch.where(use_mean, z.mean(0), z[a, rows])
    s = (1 + (args.vae_guided_max - 1) * torch.rand(n, 1, 1, 1, generator=gen)).to(device)
    target = (xa + s * (x[b, rows] - xa)).clamp(-1, 1)
    return F.mse_loss(vae.decode(za + s * (z[b, rows] - za)).sample, target)


@torch.no_grad()
def encode_all(vae, images: np.ndarray, device, ckpt_dir: Path):
    path = ckpt_dir / "latents.pt"
    if path.exists():
        return torch.load(path, weights_only=False)
    means, stds = [], []
    for i in range(0, len(images), 500):
        x = torch.from_numpy(images[i:i + 500]).to(device).permute(0, 3, 1, 2).float() / 127.5 - 1
        post = vae.encode(x).latent_dist
        means.append(post.mean.cpu())
        stds.append(post.std.cpu())
    mean, std = torch.cat(means), torch.cat(stds)
    sf = float(1.0 / mean.std())
    out = dict(mean=mean, std=std, scaling_factor=sf)
    atomic_save(out, path)
    log(f"latents: mean std {mean.std():.3f}, posterior std {std.mean():.3f}, scaling_factor {sf:.4f}")
    return out


# ------------------------------------------------------------------------------------------------------- UNet phase
def train_unet(args, data, lat, vae, tokenizer, ckpt_dir: Path, device, out: Path):
    """Phase 2: the UNet and the text encoder, jointly, until the step or time budget; resumable from
    ``ckpt_dir/unet.pt``; the EMA weights are exported to ``out`` now and then and at the end."""
    run = _UnetTraining(args, data, lat, vae, tokenizer, ckpt_dir / "unet.pt", device, out)
    run.resume()
    run.train()
    if args.val_every:
        if not run.validations or run.validations[-1]["step"] != run.step:
            run.validate_and_keep()
    else:
        run.export()
    run.save()
    log(f"unet: done, {run.step} steps in {run.elapsed / 60:.1f} min, loss (last 500 steps) {np.mean(run.recent):.4f}")


class _UnetTraining:
    """The state of phase 2 (models, EMA copies, optimizer, random states, progress) and its steps."""

    def __init__(self, args, data, lat, vae, tokenizer, path: Path, device, out: Path):
        self.args, self.vae, self.tokenizer, self.path, self.device, self.out = args, vae, tokenizer, path, device, out
        self._models(args, tokenizer, device)
        self.rng = np.random.default_rng([args.seed, 2])
        self.gen = torch.Generator().manual_seed(args.seed + 3)
        self.step, self.elapsed = 0, 0.0
        self.losses: list[float] = []
        self.recent: list[float] = []
        self.validations: list[dict] = []  # {"step", "rank", "result"} per validation, in order
        self.sched, self.w_t = _noise_schedule(device)
        self.ids_all, self.ids_empty = _caption_ids(tokenizer, data["captions"])
        self.mentions = data["mentions_dot"]
        self.sf, self.mean, self.std = lat["scaling_factor"], lat["mean"], lat["std"]

    def _models(self, args, tokenizer, device) -> None:
        """The UNet and text encoder (seeded), AdamW over both, and their EMA copies (frozen)."""
        torch.manual_seed(args.seed + 2)
        self.unet = make_unet().to(device)
        self.te = make_text_encoder(tokenizer).to(device)
        self.params = list(self.unet.parameters()) + list(self.te.parameters())
        self.opt = torch.optim.AdamW(self.params, lr=args.lr, weight_decay=1e-2)
        self.ema_u, self.ema_t = make_unet().to(device), make_text_encoder(tokenizer).to(device)
        self.ema_u.load_state_dict(self.unet.state_dict())
        self.ema_t.load_state_dict(self.te.state_dict())
        for m in (self.ema_u, self.ema_t):
            m.requires_grad_(False).eval()

    def resume(self) -> None:
        if not self.path.exists():
            return
        ck = torch.load(self.path, weights_only=False)
        for name in ("unet", "te", "ema_u", "ema_t", "opt"):
            getattr(self, name).load_state_dict(ck[name])
        self.rng.bit_generator.state = ck["rng"]
        self.gen.set_state(ck["gen"])
        self.step, self.elapsed = ck["step"], ck["elapsed"]
        self.validations = ck.get("validations", [])
        log(f"unet: resumed at step {self.step} ({self.elapsed / 60:.1f} min done)")

    def done(self) -> bool:
        a = self.args
        return bool((a.unet_steps and self.step >= a.unet_steps) or (a.unet_minutes and self.elapsed >= a.unet_minutes * 60))

    def train(self) -> None:
        """Steps until the budget; logs, checkpoints and exports on their clocks."""
        args = self.args
        self.unet.train()
        self.te.train()
        t_start = time.time() - self.elapsed
        t_ck = t_exp = time.time()
        while True:
            self.elapsed = time.time() - t_start
            if self.done():
                break
            lr = self.learning_rate()
            loss = self.train_step(lr)
            self.step += 1
            self.ema_update()
            self.losses.append(loss)
            self.recent = (self.recent + [loss])[-500:]
            if self.step % args.log_every == 0:
                self._log(lr)
            if time.time() - t_ck > args.ckpt_minutes * 60:
                self.save()
                t_ck = time.time()
            if args.val_every and self.step % args.val_every == 0:
                self.validate_and_keep()
            elif args.export_minutes and not args.val_every and time.time() - t_exp > args.export_minutes * 60:
                self.export()
                t_exp = time.time()

    def learning_rate(self) -> float:
        """Linear warm-up, then either a cosine from ``lr`` down to ``lr * lr_end`` at ``unet_steps``
        (``--schedule cosine``) or constant with an optional final linear anneal to 0 (``decay_steps``)."""
        return learning_rate(self.args, self.step)

    def batch(self):
        """A training batch: noisy latents, their noise and timesteps, caption ids (10 % dropped to the empty one)."""
        args = self.args
        idx = self.rng.integers(0, len(self.ids_all), args.batch)
        drop = world.dropout_mask(self.mentions[idx], self.rng)
        ids = self.ids_all[idx].clone()
        ids[torch.from_numpy(drop)] = self.ids_empty
        z0 = (self.mean[idx] + self.std[idx] * torch.randn(self.mean[idx].shape, generator=self.gen)) * self.sf
        noise = torch.randn(z0.shape, generator=self.gen)
        t = torch.randint(0, 1000, (args.batch,), generator=self.gen)
        z0, noise, t, ids = (x.to(self.device) for x in (z0, noise, t, ids))
        return self.sched.add_noise(z0, noise, t), noise, t, ids

    def train_step(self, lr: float) -> float:
        """One optimizer step (min-SNR weighted epsilon loss, gradient clip 1.0); returns the loss."""
        zt, noise, t, ids = self.batch()
        for g in self.opt.param_groups:
            g["lr"] = lr
        enc = self.te(ids)[0]
        pred = self.unet(zt, t, enc).sample
        loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (loss * self.w_t[t]).mean()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        return loss.item()

    def ema_update(self) -> None:
        decay = min(self.args.ema, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for src, dst in ((self.unet, self.ema_u), (self.te, self.ema_t)):
                for p, q in zip(src.parameters(), dst.parameters()):
                    q.lerp_(p, 1 - decay)

    def _log(self, lr: float) -> None:
        rate = self.elapsed / max(self.step, 1)
        log(f"unet step {self.step} loss {np.mean(self.losses):.4f} lr {lr:.2e} ({self.elapsed / 60:.1f} min, "
            f"{rate:.2f} s/step)")
        self.losses = []

    def info(self) -> dict:
        a = self.args
        return dict(seed=a.seed, vae_steps=getattr(a, "vae_steps_done", None), unet_steps=self.step,
                    unet_minutes=round(self.elapsed / 60, 1), batch=a.batch, lr=a.lr, decay_start=a.decay_start,
                    decay_steps=a.decay_steps, n_images=a.n_images, threads=a.threads, device=str(self.device),
                    schedule=a.schedule, lr_end=a.lr_end, vae_guided_weight=a.vae_guided_weight,
                    vae_guided_max=a.vae_guided_max, validations=[{k: v[k] for k in ("step", "rank")}
                                                                  for v in self.validations],
                    last_loss=float(np.mean(self.recent)) if self.recent else None)

    def save(self) -> None:
        atomic_save(
            dict(unet=self.unet.state_dict(), te=self.te.state_dict(), ema_u=self.ema_u.state_dict(),
                 ema_t=self.ema_t.state_dict(), opt=self.opt.state_dict(), rng=self.rng.bit_generator.state,
                 gen=self.gen.get_state(), step=self.step, elapsed=self.elapsed, validations=self.validations),
            self.path,
        )

    def export(self) -> None:
        self.vae.register_to_config(scaling_factor=self.sf)
        export_pipeline(self.vae, self.ema_t, self.ema_u, self.tokenizer, self.out, self.info())
        log(f"exported EMA weights at step {self.step} to {self.out}")

    def validate_and_keep(self) -> None:
        """Score the EMA weights on the validation seeds (``negdelay.toy.validate``); export them when they rank
        at least as high as every earlier validation of this run (so the exported model is the best one seen)."""
        from . import validate

        result = validate.score(self.ema_pipeline(), n=self.args.val_images)
        best = max((v["rank"] for v in self.validations), default=float("-inf"))
        entry = {"step": self.step, "rank": validate.rank(result), "result": result}
        self.validations.append(entry)
        log(f"validation at step {self.step}: both {result['both']:.3f}, colour {result['colour']}, "
            f"dot {result['dot']:.3f}, rank {entry['rank']:.3f} (best so far {best:.3f})")
        if entry["rank"] >= best:
            self.export()
        self.save()

    def ema_pipeline(self):
        """The EMA weights as an in-memory StableDiffusionPipeline (float32, eval), for validation."""
        from diffusers import PNDMScheduler, StableDiffusionPipeline

        self.vae.register_to_config(scaling_factor=self.sf)
        pipe = StableDiffusionPipeline(vae=self.vae, text_encoder=self.ema_t, tokenizer=self.tokenizer, unet=self.ema_u,
                                       scheduler=PNDMScheduler(**SCHEDULER_CONFIG), safety_checker=None,
                                       feature_extractor=None, requires_safety_checker=False)
        pipe.set_progress_bar_config(disable=True)
        return pipe


def learning_rate(args, step: int) -> float:
    """The UNet phase's learning rate at ``step``: linear warm-up over ``warmup`` steps, then ``--schedule cosine``
    (from ``lr`` to ``lr * lr_end`` at ``unet_steps``) or ``constant`` (with the optional linear anneal to 0 over
    ``decay_steps`` from ``decay_start``)."""
    import math

    lr = args.lr * min(1.0, (step + 1) / args.warmup)
    if args.schedule == "cosine":
        progress = min(1.0, max(0.0, (step - args.warmup) / max(1, args.unet_steps - args.warmup)))
        return lr * (args.lr_end + (1 - args.lr_end) * 0.5 * (1 + math.cos(math.pi * progress)))
    if args.decay_steps and step >= args.decay_start:
        lr *= max(0.0, 1.0 - (step - args.decay_start) / args.decay_steps)
    return lr


def _noise_schedule(device):
    """The training noise schedule (SD v1's) and the min-SNR(5) loss weight of each timestep (epsilon prediction)."""
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    ac = sched.alphas_cumprod.to(device)
    snr = ac / (1 - ac)
    return sched, torch.clamp(snr, max=5.0) / snr


def _caption_ids(tokenizer, captions):
    """Every caption tokenized once, and the empty caption (the dropout target)."""
    ids_all = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
    ids_empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                          return_tensors="pt").input_ids[0]
    return ids_all, ids_empty


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="diffusers folder to export to")
    ap.add_argument("--ckpt-dir", type=Path, default=Path(".toy-train"), help="resumable checkpoints")
    ap.add_argument("--n-images", type=int, default=60_000)
    ap.add_argument("--vae-minutes", type=float, default=5.0)
    ap.add_argument("--vae-steps", type=int, default=0, help="0 = no step limit")
    ap.add_argument("--vae-batch", type=int, default=64)
    ap.add_argument("--vae-guided-weight", type=float, default=0.5,
                    help="weight of the guided-decoding term (0 = the first model's VAE loss)")
    ap.add_argument("--vae-guided-max", type=float, default=3.0, help="largest extrapolation s of that term")
    ap.add_argument("--unet-minutes", type=float, default=60.0)
    ap.add_argument("--unet-steps", type=int, default=0, help="0 = no step limit")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay-start", type=int, default=0, help="step where a linear lr anneal to 0 starts")
    ap.add_argument("--decay-steps", type=int, default=0, help="length of that anneal (0 = constant lr)")
    ap.add_argument("--schedule", choices=("constant", "cosine"), default="constant",
                    help="cosine: lr falls to lr * --lr-end at --unet-steps (needs a step budget)")
    ap.add_argument("--lr-end", type=float, default=0.02, help="cosine: the final lr as a fraction of --lr")
    ap.add_argument("--val-every", type=int, default=0,
                    help="validate the EMA weights every N steps and export only the best (0 = export on a clock)")
    ap.add_argument("--val-images", type=int, default=96, help="validation images (plain prompts)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--export-minutes", type=float, default=10.0, help="0 = export only at the end")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if not (args.vae_minutes or args.vae_steps) or not (args.unet_minutes or args.unet_steps):
        ap.error("each phase needs a step or a time budget")
    if args.schedule == "cosine" and not args.unet_steps:
        ap.error("--schedule cosine needs --unet-steps (the step where the cosine ends)")

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    ckpt_dir = args.ckpt_dir
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    log(f"args: {vars(args)}")
    t0 = time.time()
    data = world.make_dataset(args.n_images, seed=args.seed)
    log(f"world: {args.n_images} scenes in {time.time() - t0:.1f} s; "
        f"dot mentioned {data['mentions_dot'].mean():.3f}, dot in plain {data['has_dot'][~data['mentions_dot']].mean():.3f}")
    tokenizer = make_tokenizer_for_world()
    torch.manual_seed(args.seed)
    vae = train_vae(args, data, ckpt_dir, device)
    args.vae_steps_done = torch.load(ckpt_dir / "vae.pt", weights_only=False)["step"]
    lat = encode_all(vae, data["images"], device, ckpt_dir)
    vae.requires_grad_(False)
    train_unet(args, data, lat, vae, tokenizer, ckpt_dir, device, args.out)
    log(f"total {(time.time() - t0) / 60:.1f} min this invocation")


if __name__ == "__main__":
    sys.exit(main())
