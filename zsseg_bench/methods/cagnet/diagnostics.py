"""CaGNet's mechanism diagnostics (runs/diagnostics.py holds the rules that read them).

* The contextual module, at every step-1 iteration: the KL term, the share of exact zeros in the
  contextual-pool output (ReLU, bias-free: where it is 0, mu and logvar are exactly 0 and the
  latent is pure N(0, I) noise), mean |mu| and mean logvar of the full-scale input. They are
  logged with the losses every log step (`kld`, and `ctx_zero`, `ctx_mu_abs`, `ctx_logvar`), and summarised at the end of each step-1 stage as the means over its last log window.
* The generator, at the end of step 1 and of the finetune: the own-class shares of generated
  features (methods/common/diagnostics.py), generated as the finetune's classifier-only
  iterations make them (the full embedding table, latent N(0, I), generator dropout on).
"""

from __future__ import annotations

import torch

from zsseg_bench.methods.common.diagnostics import WindowMean, generated_feature_check

__all__ = ["CaGNetDiagnostics"]


class CaGNetDiagnostics:
    def __init__(self, log_every: int):
        self.log_every = log_every
        self.window = WindowMean(log_every)
        self.context: list[dict] = []
        self.generated: list[dict] = []

    def context_stats(self, kld: torch.Tensor, zero_share: torch.Tensor, mu: torch.Tensor,
                      logvar: torch.Tensor) -> dict[str, torch.Tensor]:
        """The step-1 statistics, as extra (never optimised) entries of the step's losses."""
        stats = {"ctx_zero": zero_share.detach(), "ctx_mu_abs": mu.detach().float().abs().mean(),
                 "ctx_logvar": logvar.detach().float().mean()}
        self.window.add(kld=kld, **stats)
        return stats

    def stage_end(self, model, stage, ctx) -> None:
        after = getattr(ctx, "current_stage", "") or stage.name
        if stage.name == "step1":
            means = self.window.means()
            if means:
                self.context.append({"after": after, "window": len(self.window.values),
                                     "kld": means["kld"], "zero_share": means["ctx_zero"],
                                     "mu_abs": means["ctx_mu_abs"], "logvar": means["ctx_logvar"]})
            self.window = WindowMean(self.log_every)
        if stage.name in ("step1", "mixed"):
            check = generated_feature_check(model, ctx, lambda images: model.encode(images, sample=False)[0][0],
                                            lambda labels: _generate(model, labels), after)
            if check is not None:
                self.generated.append(check)

    def facts(self) -> dict:
        out = {}
        if self.context:
            out["context"] = list(self.context)
        if self.generated:
            out["generated_features"] = list(self.generated)
        return out


def _generate(model, labels: torch.Tensor) -> torch.Tensor:
    """[n] labels -> [n, D] features, as a classifier-only finetune iteration generates them."""
    model.generator.train(True)
    n = labels.numel()
    latent = torch.randn(1, model.feature_dim, n, 1, device=labels.device)
    fake = model.generate(labels.view(1, n, 1), latent, model.embeddings)
    return fake[0, :, :, 0].t()
