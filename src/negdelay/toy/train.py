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
    (tmp / "training_info.json").write_text(json.dumps(info, indent=1))
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    if old.exists():
        shutil.rmtree(old)


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
    from diffusers import DDPMScheduler

    path = ckpt_dir / "unet.pt"
    torch.manual_seed(args.seed + 2)
    unet = make_unet().to(device)
    te = make_text_encoder(tokenizer).to(device)
    params = list(unet.parameters()) + list(te.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-2)
    ema_u, ema_t = make_unet().to(device), make_text_encoder(tokenizer).to(device)
    ema_u.load_state_dict(unet.state_dict())
    ema_t.load_state_dict(te.state_dict())
    for m in (ema_u, ema_t):
        m.requires_grad_(False).eval()
    rng = np.random.default_rng([args.seed, 2])
    gen = torch.Generator().manual_seed(args.seed + 3)
    step, elapsed = 0, 0.0
    if path.exists():
        ck = torch.load(path, weights_only=False)
        unet.load_state_dict(ck["unet"])
        te.load_state_dict(ck["te"])
        ema_u.load_state_dict(ck["ema_u"])
        ema_t.load_state_dict(ck["ema_t"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        gen.set_state(ck["gen"])
        step, elapsed = ck["step"], ck["elapsed"]
        log(f"unet: resumed at step {step} ({elapsed / 60:.1f} min done)")

    sched = DDPMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"
    )
    ac = sched.alphas_cumprod.to(device)
    snr = ac / (1 - ac)
    w_t = torch.clamp(snr, max=5.0) / snr  # min-SNR(5) for epsilon prediction

    # Tokenize every caption once; the empty caption is the dropout target.
    caps = data["captions"]
    ids_all = tokenizer(caps, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                        return_tensors="pt").input_ids
    ids_empty = tokenizer([""], padding="max_length", max_length=tokenizer.model_max_length,
                          return_tensors="pt").input_ids[0]
    mentions = data["mentions_dot"]
    sf = lat["scaling_factor"]
    mean, std = lat["mean"], lat["std"]
    n = len(caps)

    def ema_update():
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for src, dst in ((unet, ema_u), (te, ema_t)):
                for p, q in zip(src.parameters(), dst.parameters()):
                    q.lerp_(p, 1 - decay)

    def info():
        return dict(seed=args.seed, vae_steps=getattr(args, "vae_steps_done", None), unet_steps=step,
                    unet_minutes=round(elapsed / 60, 1), batch=args.batch,
                    lr=args.lr, decay_start=args.decay_start, decay_steps=args.decay_steps,
                    n_images=args.n_images, threads=args.threads, device=str(device),
                    last_loss=float(np.mean(recent)) if recent else None)

    def save():
        atomic_save(
            dict(unet=unet.state_dict(), te=te.state_dict(), ema_u=ema_u.state_dict(), ema_t=ema_t.state_dict(),
                 opt=opt.state_dict(), rng=rng.bit_generator.state, gen=gen.get_state(), step=step,
                 elapsed=elapsed),
            path,
        )

    def export():
        vae.register_to_config(scaling_factor=sf)
        export_pipeline(vae, ema_t, ema_u, tokenizer, out, info())
        log(f"exported EMA weights at step {step} to {out}")

    unet.train()
    te.train()
    t_start = time.time() - elapsed
    t_ck = t_exp = time.time()
    losses, recent = [], []
    while True:
        elapsed = time.time() - t_start
        if (args.unet_steps and step >= args.unet_steps) or (args.unet_minutes and elapsed >= args.unet_minutes * 60):
            break
        idx = rng.integers(0, n, args.batch)
        drop = world.dropout_mask(mentions[idx], rng)
        ids = ids_all[idx].clone()
        ids[torch.from_numpy(drop)] = ids_empty
        z0 = (mean[idx] + std[idx] * torch.randn(mean[idx].shape, generator=gen)) * sf
        noise = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, 1000, (args.batch,), generator=gen)
        z0, noise, t, ids = z0.to(device), noise.to(device), t.to(device), ids.to(device)
        zt = sched.add_noise(z0, noise, t)
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        if args.decay_steps and step >= args.decay_start:  # final linear anneal to 0
            lr *= max(0.0, 1.0 - (step - args.decay_start) / args.decay_steps)
        for g in opt.param_groups:
            g["lr"] = lr
        enc = te(ids)[0]
        pred = unet(zt, t, enc).sample
        loss = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        loss = (loss * w_t[t]).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        ema_update()
        losses.append(loss.item())
        recent = (recent + [loss.item()])[-500:]
        if step % args.log_every == 0:
            rate = elapsed / max(step, 1)
            log(f"unet step {step} loss {np.mean(losses):.4f} lr {lr:.2e} ({elapsed / 60:.1f} min, {rate:.2f} s/step)")
            losses = []
        if time.time() - t_ck > args.ckpt_minutes * 60:
            save()
            t_ck = time.time()
        if args.export_minutes and time.time() - t_exp > args.export_minutes * 60:
            export()
            t_exp = time.time()
    save()
    export()
    log(f"unet: done, {step} steps in {elapsed / 60:.1f} min, loss (last 500 steps) {np.mean(recent):.4f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="diffusers folder to export to")
    ap.add_argument("--ckpt-dir", type=Path, default=Path(".toy-train"), help="resumable checkpoints")
    ap.add_argument("--n-images", type=int, default=60_000)
    ap.add_argument("--vae-minutes", type=float, default=5.0)
    ap.add_argument("--vae-steps", type=int, default=0, help="0 = no step limit")
    ap.add_argument("--vae-batch", type=int, default=64)
    ap.add_argument("--unet-minutes", type=float, default=60.0)
    ap.add_argument("--unet-steps", type=int, default=0, help="0 = no step limit")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--decay-start", type=int, default=0, help="step where a linear lr anneal to 0 starts")
    ap.add_argument("--decay-steps", type=int, default=0, help="length of that anneal (0 = constant lr)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--ckpt-minutes", type=float, default=3.0)
    ap.add_argument("--export-minutes", type=float, default=10.0, help="0 = export only at the end")
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    if not (args.vae_minutes or args.vae_steps) or not (args.unet_minutes or args.unet_steps):
        ap.error("each phase needs a step or a time budget")

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
