"""DEMC: Dynamic Expansionable Memory Cluster (Ye & Bors, AAAI 2024; DEMC spec sections 2-3).

A single VAE-GAN (encoder E, generator/decoder G, WGAN critic D) trained from a temporary memory
M^t and a growing set of memory clusters M^d. Per arrival (``DEMC.observe``):
  1. the batch x_t enters M^t;
  2. when M^t holds more than ``temp_capacity`` images, the novelty check runs: x_t's latent
     descriptor (mean of the encoder means and standard deviations, eval-mode BN) is compared with
     every cluster's by the mean-per-dimension KL; with no cluster yet, or when the aggregated
     distance (max: released, min: paper) exceeds ``novelty_threshold``, a new cluster is made of
     the ``cluster_size`` M^t images of lowest reconstruction error (one stochastic latent draw),
     M^t is emptied, and training is skipped at this arrival (released ``continue``);
  3. otherwise ``updates_per_arrival`` updates (``VAEGANLearner.train_on``) on augmented batches of
     64 drawn uniformly from M^t and all clusters; each update (``VAEGANLearner.update``) is
       step 1: critic on L_d = D(G(z)) - D(x) + 10 GP (RMSProp), then G and E together on
               L_g = -D(G(z)) + L_vae (RMSProp), z ~ U(-1, 1) (or N(0, I));
       step 2: E alone on L_inf = L_vae (Adam), G and D frozen;
     with L_vae = ||x - G(mu + sigma eps)||^2 (summed over pixels) + 0.1 KL;
  4. M^t is cut back to ``temp_capacity`` at random (or by reservoir sampling).

The released code's plain bugs are fixed by default: per-image gradient-penalty norm and
interpolation weights (``gp_legacy`` restores them), eval-mode BatchNorm for the novelty and
selection statistics, step 2 after step 1 (``step_order=simultaneous`` restores the released
single snapshot), the first batch stored once (``duplicate_first_batch``). docs/demc.md lists all.
"""
from __future__ import annotations

import math

import torch

from ..data.augment import augment
from ..errors import TrainingError
from ..memory import CLUSTER_SELECTIONS, TEMPORARY_MEMORIES, ClusterMemory
from ..models.vaegan import frozen_bn_statistics, gradient_penalty
from .base import Learner


class VAEGANLearner(Learner):
    """The VAE-GAN's two-step update and its replay pass; DEMC and the VAE-GAN baselines share them."""

    model_name = "vaegan"  # config.validate: these learners need model.name=vaegan

    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        c = cfg.learner
        self.critic_params = list(model.critic_net.parameters())
        self.encoder_params = list(model.encoder.parameters())
        self.gen_enc_params = self.encoder_params + list(model.generator.parameters())
        self.critic_optimizer = torch.optim.RMSprop(self.critic_params, lr=c.gan_lr, alpha=c.rmsprop_alpha,
                                                    eps=c.rmsprop_eps)
        # self.optimizer (saved by the base class) is step 1's generator + encoder optimiser
        self.optimizer = torch.optim.RMSprop(self.gen_enc_params, lr=c.gan_lr, alpha=c.rmsprop_alpha,
                                             eps=c.rmsprop_eps)
        # fused: the same Adam arithmetic in one kernel (about 5x faster on CPU)
        self.inference_optimizer = torch.optim.Adam(self.encoder_params, lr=c.lr, betas=(c.beta1, c.beta2),
                                                    fused=True)

    # -- one update: step 1 (critic, then G + E), step 2 (E alone) --------------------------------
    def update(self, x: torch.Tensor) -> dict[str, float]:
        """One update on an (augmented) batch ``x: (B, D)``: step 1 (critic, then G + E), step 2 (E)."""
        c = self.cfg.learner
        z = self.model.prior_sample(len(x), self.generator)  # one z per update, for the critic and for G
        logs = {"loss_d": self.critic_step(x, z)}
        if c.inference_step and c.step_order == "simultaneous":
            logs.update(self.simultaneous_steps(x, z))
        else:
            logs.update(self.generator_step(x, z))
            if c.inference_step:
                logs["loss_inf"] = self.inference_step(x)
        self.steps += 1
        return logs

    def critic_step(self, x: torch.Tensor, z: torch.Tensor) -> float:
        """Step 1a: D on L_d = mean D(G(z)) - mean D(x) + gp_weight * GP (RMSProp)."""
        c, model = self.cfg.learner, self.model
        fake = model.decode(z).detach()
        gp = gradient_penalty(model.critic, x, fake, self.generator, model.shape, legacy=c.gp_legacy)
        loss_d = model.critic(fake).mean() - model.critic(x).mean() + c.gp_weight * gp
        self.critic_optimizer.zero_grad(set_to_none=True)
        loss_d.backward(inputs=self.critic_params)
        self.critic_optimizer.step()
        return loss_d.item()

    def generator_step(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        """Step 1b: G and E together on L_g = -mean D(G(z)) + vae_weight * L_vae (RMSProp).

        The adversarial term reaches G only (z is drawn from the prior, not encoded); D is not updated.
        """
        c, model = self.cfg.learner, self.model
        loss_vae = model.vae_loss(x, c.kl_weight, self.generator).mean()
        loss_g = -model.critic(model.decode(z)).mean() + c.vae_weight * loss_vae
        self.optimizer.zero_grad(set_to_none=True)
        loss_g.backward(inputs=self.gen_enc_params)
        self.optimizer.step()
        return {"loss_g": loss_g.item(), "loss_vae": loss_vae.item()}

    def inference_step(self, x: torch.Tensor) -> float:
        """Step 2: E alone on L_inf = L_vae (Adam); G stays in the forward pass but is frozen
        (no parameter update, and its BatchNorm running statistics are left as they are)."""
        c, model = self.cfg.learner, self.model
        with frozen_bn_statistics(model.generator):
            loss_inf = model.vae_loss(x, c.kl_weight, self.generator).mean()
        self.inference_optimizer.zero_grad(set_to_none=True)
        loss_inf.backward(inputs=self.encoder_params)
        self.inference_optimizer.step()
        return loss_inf.item()

    def simultaneous_steps(self, x: torch.Tensor, z: torch.Tensor) -> dict[str, float]:
        """Released variant of steps 1b + 2: L_g's RMSProp step on G + E and L_vae's Adam step on E,
        both computed from the same parameters and the same forward pass (one ``sess.run``)."""
        c, model = self.cfg.learner, self.model
        loss_vae = model.vae_loss(x, c.kl_weight, self.generator).mean()
        loss_g = -model.critic(model.decode(z)).mean() + c.vae_weight * loss_vae
        g_grads = torch.autograd.grad(loss_g, self.gen_enc_params, retain_graph=True)
        e_grads = torch.autograd.grad(loss_vae, self.encoder_params)
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
        c, b = self.cfg.learner, self.cfg.learner.minibatch
        per_epoch = math.ceil(len(data) / b)
        totals: dict[str, float] = {}
        n = 0
        order = torch.arange(0)
        for i in range(c.updates_per_arrival):
            j = i % per_epoch
            if j == 0:
                order = torch.randperm(len(data), generator=self.generator)
            idx = order[j * b:(j + 1) * b]
            if len(idx) < b:
                continue
            x = data[idx]
            if c.augment:
                x = augment(x, self.model.shape, self.generator, c.aug_rotation, c.aug_shift, c.aug_hflip)
            for k, v in self.update(x).items():
                totals[k] = totals.get(k, 0.0) + v
            n += 1
        logs = {k: v / n for k, v in totals.items()}
        if not all(math.isfinite(v) for v in logs.values()):
            raise TrainingError(f"non-finite loss ({logs}) at arrival {self.arrivals}, step {self.steps}; "
                                f"try a lower learner.gan_lr (now {c.gan_lr}) or learner.lr (now {c.lr})")
        return logs

    # -- checkpoint ------------------------------------------------------------------------------
    def extra_state(self) -> dict:
        return {"critic_optimizer": self.critic_optimizer.state_dict(),
                "inference_optimizer": self.inference_optimizer.state_dict()}

    def load_extra_state(self, state: dict) -> None:
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.inference_optimizer.load_state_dict(state["inference_optimizer"])


class DEMC(VAEGANLearner):
    def __init__(self, cfg, model, generator):
        super().__init__(cfg, model, generator)
        m = cfg.memory
        self.temp = TEMPORARY_MEMORIES[m.temp_policy](m.temp_capacity, model.x_dim)
        self.clusters = ClusterMemory(m.cluster_size, model.x_dim, m.novelty_kl, m.novelty_agg, m.max_clusters)
        self.selection = CLUSTER_SELECTIONS[m.cluster_select]()
        self.log: list[dict] = []  # one entry per novelty check (written to events.jsonl)

    def observe(self, x: torch.Tensor) -> dict[str, float]:
        m = self.cfg.memory
        # 1. the temporary memory takes the batch (released quirk, off by default: the first one twice)
        self.temp.add(x)
        if self.arrivals == 0 and m.duplicate_first_batch:
            self.temp.add(x)
        self.arrivals += 1
        # 2. novelty check, only when the temporary memory overflows
        expanded = False
        if self.temp.over_capacity() and not self.clusters.full():
            mu, sigma = self.latent_stats(x)  # descriptor of the incoming batch only, (B, Z) each
            if m.refresh_stats and self.clusters.num_clusters > 0:
                fresh = [self.latent_stats(images) for images in self.clusters.images]  # cluster by cluster
                self.clusters.set_descriptors(torch.cat([f[0] for f in fresh]), torch.cat([f[1] for f in fresh]))
            d = self.clusters.distances(mu, sigma) if self.clusters.num_clusters else torch.zeros(0)  # (K,)
            novelty = self.clusters.aggregate(d)  # inf with no cluster yet: the first one is always made
            expanded = novelty > m.novelty_threshold
            event = {"arrival": self.arrivals, "novelty": novelty if len(d) else None,
                     "novelty_min": float(d.min()) if len(d) else None,
                     "novelty_max": float(d.max()) if len(d) else None, "expanded": expanded}
            if expanded:
                self.make_cluster()
            self.log.append({**event, "clusters": self.clusters.num_clusters})
        logs: dict[str, float] = {}
        # 3. train on M^t and every cluster (skipped at an expansion, as released)
        if not expanded:
            logs = self.train_on(torch.cat([self.temp.data, self.clusters.data]))
        # 4. cut the temporary memory back to its capacity
        self.temp.shrink(self.generator)
        return {**logs, "temp": len(self.temp), "clusters": self.clusters.num_clusters}

    def make_cluster(self) -> None:
        """A new cluster from M^t (by reconstruction error, as selected), then M^t is emptied."""
        data = self.temp.data
        errors = self.model.recon_error(data, self.generator)  # (N,): one stochastic latent draw each
        idx = self.selection.select(errors, self.cfg.memory.cluster_size, self.generator)
        mu, sigma = self.latent_stats(data[idx])
        self.clusters.add(data[idx], mu, sigma)
        self.temp.clear()

    def latent_stats(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder means and std devs of a batch or cluster, ``(B, Z)`` each, for the descriptors:
        eval-mode BatchNorm, or (``novelty_bn=batch``, released) the batch's own statistics."""
        return self.model.latent_stats(x, batch_statistics=self.cfg.memory.novelty_bn == "batch")

    # -- what the loop and the evaluator ask ---------------------------------------------------
    def memory_sizes(self) -> dict[str, int]:
        return {"temporary": len(self.temp), "clusters": self.clusters.num_clusters,
                "cluster_images": len(self.clusters), "memory": len(self.temp) + len(self.clusters)}

    def memory_images(self) -> dict[str, torch.Tensor]:
        return {"temporary": self.temp.data, "clusters": self.clusters.data}

    def extra_state(self) -> dict:
        return {**super().extra_state(), "temp": self.temp.state_dict(), "clusters": self.clusters.state_dict(),
                "log": self.log}

    def load_extra_state(self, state: dict) -> None:
        super().load_extra_state(state)
        self.temp.load_state_dict(state["temp"])
        self.clusters.load_state_dict(state["clusters"])
        self.log = list(state["log"])
