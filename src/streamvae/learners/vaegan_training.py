"""The VAE-GAN update shared by DEMC and its baselines (DEMC spec section 3): config and learner base.

Each update (``VAEGANLearner.update``) on an augmented batch of 64:
  step 1: critic on L_d = D(G(z)) - D(x) + 10 GP (RMSProp), then G and E together on
          L_g = -D(G(z)) + L_vae (RMSProp), z ~ U(-1, 1) (or N(0, I));
  step 2: E alone on L_inf = L_vae (Adam), G and D frozen;
with L_vae = ||x - G(mu + sigma eps)||^2 (summed over pixels) + 0.1 KL. ``train_on`` runs
``updates_per_arrival`` of them over shuffled minibatches of a replay set, as released.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from ..config import LearnerConfig, check_choice, check_nonnegative, check_positive, check_unit_interval
from ..data.augment import augment
from ..errors import TrainingError
from ..models.vaegan import VAEGAN, frozen_bn_statistics, gradient_penalty, recorded_bn_update, repeat_bn_update
from .base import Learner


@dataclass(frozen=True)
class VAEGANTrainingConfig(LearnerConfig):
    updates_per_arrival: int = 300  # updates after each arrival (a skipped partial batch counts as one)
    minibatch: int = 64  # images per update
    lr: float = 1e-4  # Adam learning rate of step 2 (the encoder alone)
    beta1: float = 0.5  # Adam beta1 (step 2)
    beta2: float = 0.999  # Adam beta2 (step 2)
    gan_lr: float = 1e-4  # RMSProp learning rate of the critic and of generator+encoder (step 1)
    rmsprop_alpha: float = 0.9  # RMSProp decay (TF1 default)
    rmsprop_eps: float = 1e-10  # RMSProp epsilon (TF1 default)
    rmsprop_init: str = "one"  # RMSProp squared-gradient average at the start: one (released TF1) | zero (PyTorch)
    kl_weight: float = 0.1  # weight of the KL in L_vae (released KLThreshold)
    vae_weight: float = 1.0  # weight of L_vae inside the generator loss L_g
    gp_weight: float = 10.0  # weight of the gradient penalty in the critic loss
    gp_legacy: bool = True  # released penalty (one eps per batch, norm over the image height only) | false: standard
    inference_step: bool = True  # step 2: the encoder alone on L_inf = L_vae (released SVHN/CIFAR: absent)
    step_order: str = "sequential"  # sequential (paper: step 2 after step 1) | simultaneous (released: same snapshot)
    augment: bool = True  # augment every training batch (released: Keras ImageDataGenerator)
    aug_rotation: float = 20.0  # degrees: rotation drawn from U(-r, r)
    aug_shift: float = 0.1  # fraction of the width/height: shifts drawn from U(-s, s)
    aug_hflip: bool = True  # flip horizontally with probability 1/2 (released: even for digits)

    def validate(self) -> None:
        for key in ("updates_per_arrival", "minibatch", "lr", "gan_lr", "rmsprop_eps"):
            check_positive(f"learner.{key}", getattr(self, key))
        for key in ("kl_weight", "vae_weight", "gp_weight", "aug_rotation", "aug_shift"):
            check_nonnegative(f"learner.{key}", getattr(self, key))
        for key in ("beta1", "beta2", "rmsprop_alpha"):
            check_unit_interval(f"learner.{key}", getattr(self, key))
        check_choice("learner.step_order", self.step_order, ("sequential", "simultaneous"))
        check_choice("learner.rmsprop_init", self.rmsprop_init, ("one", "zero"))


def start_square_avg_at_one(optimizer: torch.optim.RMSprop) -> None:
    """Fill a fresh RMSprop's state as TF1 does (squared-gradient average = 1, step 0), before any step.

    PyTorch creates the state lazily at the first step (zeros) and skips parameters whose state
    exists; the first steps are then lr * g / sqrt(alpha + (1 - alpha) g^2) instead of about
    lr / sqrt(1 - alpha). The state is the optimiser's own, so checkpoints save and restore it.
    """
    for group in optimizer.param_groups:
        if group["momentum"] > 0 or group["centered"]:
            raise ValueError("start_square_avg_at_one supports plain RMSprop only (no momentum, not centered)")
        for p in group["params"]:
            state = optimizer.state[p]
            if not state:
                state["step"] = torch.tensor(0.0)
                state["square_avg"] = torch.ones_like(p, memory_format=torch.preserve_format)


class VAEGANLearner(Learner):
    """The VAE-GAN's two-step update and its replay pass; DEMC and the VAE-GAN baselines share them."""

    config_class = VAEGANTrainingConfig
    model_kind = "vaegan"
    model: VAEGAN  # what the loop builds for model_kind vaegan

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        c = cfg.learner
        self.critic_params = list(model.critic_net.parameters())
        self.encoder_params = list(model.encoder.parameters())
        self.gen_enc_params = self.encoder_params + list(model.generator.parameters())
        self.critic_optimizer = torch.optim.RMSprop(self.critic_params, lr=c.gan_lr, alpha=c.rmsprop_alpha,
                                                    eps=c.rmsprop_eps)
        # step 1's generator + encoder optimiser
        self.optimizer = torch.optim.RMSprop(self.gen_enc_params, lr=c.gan_lr, alpha=c.rmsprop_alpha,
                                             eps=c.rmsprop_eps)
        # fused: the same Adam arithmetic in one kernel (about 5x faster on CPU)
        self.inference_optimizer = torch.optim.Adam(self.encoder_params, lr=c.lr, betas=(c.beta1, c.beta2),
                                                    fused=True)
        if c.rmsprop_init == "one":  # TF1's RMSPropOptimizer starts its "rms" slot at 1: small first steps
            for opt in (self.critic_optimizer, self.optimizer):
                start_square_avg_at_one(opt)

    # -- one update: step 1 (critic, then G + E), step 2 (E alone) --------------------------------
    # Each step runs its forward passes (and the penalty's input gradient) under ``self.autocast()``
    # (bf16 matmuls under ``precision: bf16``, nothing in fp32) and its backward and optimiser step
    # outside: autocast caches its bf16 copies of the weights for the whole region, so a region must
    # not span an optimiser step. Losses, scores, the penalty's norm and BatchNorm statistics stay fp32.
    def update(self, x: torch.Tensor) -> dict[str, float]:
        """One update on an (augmented) batch ``x: (B, D)``: step 1 (critic, then G + E), step 2 (E)."""
        c = self.cfg.learner
        z = self.model.prior_sample(len(x), self.generator)  # one z per update, for the critic and for G
        # G(z) once: step 1a uses it detached, step 1b backpropagates through the same graph (G does not
        # change in between). Step 1b's second pass of z through G's BatchNorm is replayed on the running
        # statistics (repeat_bn_update), so they end as if G(z) had run twice, as the plain steps do.
        with self.autocast(), recorded_bn_update(self.model.generator) as bn_record:
            fake = self.model.decode(z)  # (B, D), with G's graph
        reuse = (fake, bn_record)
        logs = {"loss_d": self.critic_step(x, z, fake.detach())}
        if c.inference_step and c.step_order == "simultaneous":
            logs.update(self.simultaneous_steps(x, z, reuse))
        else:
            logs.update(self.generator_step(x, z, reuse))
            if c.inference_step:
                logs["loss_inf"] = self.inference_step(x)
        self.steps += 1
        return logs

    def _fake_for_g(self, z: torch.Tensor, reuse) -> torch.Tensor:
        """G(z) for step 1b: a fresh pass, or step 1a's (``_replay_bn`` then repeats its BatchNorm update)."""
        return self.model.decode(z) if reuse is None else reuse[0]

    def _replay_bn(self, reuse) -> None:
        """After step 1b's backward: G's running statistics as if step 1b had run G(z) itself."""
        if reuse is not None:
            repeat_bn_update(self.model.generator, reuse[1])

    def critic_step(self, x: torch.Tensor, z: torch.Tensor, fake: torch.Tensor | None = None) -> float:
        """Step 1a: D on L_d = mean D(G(z)) - mean D(x) + gp_weight * GP (RMSProp).
        ``fake``: G(z) when the caller has it already (``update``)."""
        c, model = self.cfg.learner, self.model
        with self.autocast():
            if fake is None:
                fake = model.decode(z)
            fake = fake.detach()
            gp = gradient_penalty(model.critic, x, fake, self.generator, model.shape, legacy=c.gp_legacy)
            loss_d = model.critic(fake).mean() - model.critic(x).mean() + c.gp_weight * gp
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss_d.backward(inputs=self.critic_params)
        self.critic_optimizer.step()
        return loss_d.item()

    def generator_step(self, x: torch.Tensor, z: torch.Tensor, reuse=None) -> dict[str, float]:
        """Step 1b: G and E together on L_g = -mean D(G(z)) + vae_weight * L_vae (RMSProp).

        The adversarial term reaches G only (z is drawn from the prior, not encoded); D is not updated.
        ``reuse``: (G(z) with its graph, G's BatchNorm statistics before and after it) from ``update``.
        """
        c, model = self.cfg.learner, self.model
        with self.autocast():
            loss_vae = model.vae_loss(x, c.kl_weight, self.generator).mean()
            loss_g = -model.critic(self._fake_for_g(z, reuse)).mean() + c.vae_weight * loss_vae
        self.optimizer.zero_grad(set_to_none=True)
        loss_g.backward(inputs=self.gen_enc_params)
        self._replay_bn(reuse)
        self.optimizer.step()
        return {"loss_g": loss_g.item(), "loss_vae": loss_vae.item()}

    def inference_step(self, x: torch.Tensor) -> float:
        """Step 2: E alone on L_inf = L_vae (Adam); G stays in the forward pass but is frozen
        (no parameter update, and its BatchNorm running statistics are left as they are)."""
        c, model = self.cfg.learner, self.model
        with self.autocast(), frozen_bn_statistics(model.generator):
            loss_inf = model.vae_loss(x, c.kl_weight, self.generator).mean()
        self.inference_optimizer.zero_grad(set_to_none=True)
        loss_inf.backward(inputs=self.encoder_params)
        self.inference_optimizer.step()
        return loss_inf.item()

    def simultaneous_steps(self, x: torch.Tensor, z: torch.Tensor, reuse=None) -> dict[str, float]:
        """Released variant of steps 1b + 2: L_g's RMSProp step on G + E and L_vae's Adam step on E,
        both computed from the same parameters and the same forward pass (one ``sess.run``)."""
        c, model = self.cfg.learner, self.model
        with self.autocast():
            loss_vae = model.vae_loss(x, c.kl_weight, self.generator).mean()
            loss_g = -model.critic(self._fake_for_g(z, reuse)).mean() + c.vae_weight * loss_vae
        g_grads = torch.autograd.grad(loss_g, self.gen_enc_params, retain_graph=True)
        e_grads = torch.autograd.grad(loss_vae, self.encoder_params)
        self._replay_bn(reuse)
        self._step(self.optimizer, self.gen_enc_params, g_grads)
        self._step(self.inference_optimizer, self.encoder_params, e_grads)
        return {"loss_g": loss_g.item(), "loss_vae": loss_vae.item()}

    @staticmethod
    def _step(optimizer: torch.optim.Optimizer, params: list, grads) -> None:
        for p, g in zip(params, grads):
            p.grad = g
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    # -- the replay pass after an arrival ----------------------------------------------------------
    def train_on(self, data: torch.Tensor) -> dict[str, float]:
        """``updates_per_arrival`` updates on shuffled minibatches of ``data: (N, D)``, augmented.

        As released (a Keras flow over the shuffled union): epochs of minibatches; the partial
        batch at the end of an epoch is skipped but counts towards the updates.
        """
        t0 = time.perf_counter()
        c, b = self.cfg.learner, self.cfg.learner.minibatch
        per_epoch = math.ceil(len(data) / b)
        totals: dict[str, float] = {}
        n = 0
        order = torch.arange(0, device=data.device)
        for i in range(c.updates_per_arrival):
            j = i % per_epoch
            if j == 0:
                order = torch.randperm(len(data), generator=self.generator, device=data.device)
            idx = order[j * b:(j + 1) * b]
            if len(idx) < b:
                continue
            x = data[idx]
            if c.augment:
                x = augment(x, self.model.shape, self.generator, c.aug_rotation, c.aug_shift, c.aug_hflip)
            for k, v in self.update(x).items():
                totals[k] = totals.get(k, 0.0) + v
            n += 1
        self.train_seconds += time.perf_counter() - t0
        logs = {k: v / n for k, v in totals.items()}
        if not all(math.isfinite(v) for v in logs.values()):
            raise TrainingError(f"non-finite loss ({logs}) at arrival {self.arrivals}, step {self.steps}; "
                                f"try a lower learner.gan_lr (now {c.gan_lr}) or learner.lr (now {c.lr})")
        return logs

    def steps_on(self, images: int) -> int:
        # train_on skips a partial minibatch: a replay set smaller than one takes no update
        c = self.cfg.learner
        return c.updates_per_arrival if images >= c.minibatch else 0

    # -- checkpoint ------------------------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"critic": self.critic_optimizer, "generator_encoder": self.optimizer,
                "inference": self.inference_optimizer}
