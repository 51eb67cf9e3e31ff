"""The step contract: the Trainer and the stand-in offer the same `t`, and nothing else is promised."""

import pytest
import torch

from sr_course.components.adversarial import StandardGAN
from sr_course.config import load_config
from sr_course.contract import CONTRACT, StepContext, stand_in
from sr_course.losses import pixel_mse
from sr_course.models import Discriminator, Generator
from sr_course.solver import srgan_step, srresnet_step, train_srresnet_epoch
from sr_course.train.trainer import Trainer


def _tiny():
    torch.manual_seed(0)
    g, d = Generator(n_channels=8, n_blocks=1), Discriminator(n_channels=8, fc_size=16)
    return g, d, torch.optim.Adam(g.parameters(), 1e-3), torch.optim.Adam(d.parameters(), 1e-3)


def test_the_contract_lists_what_the_steps_use():
    assert CONTRACT == (
        "cfg", "G", "D", "D_raw", "opt_g", "opt_d", "scaler_g", "scaler_d", "pixel_loss",
        "content_loss", "adversarial", "iteration", "autocast", "clip_gradients", "epoch_batches",
        "end_step",
    )  # fmt: skip
    for name in CONTRACT:
        assert name in StepContext.__doc__


def test_the_trainer_and_the_stand_in_offer_the_whole_contract(sample_root, tmp_path):
    cfg = load_config(
        "smoke", data_root=str(sample_root), runs_dir=str(tmp_path), srgan={"mode": "baseline"}
    )
    trainer = Trainer(cfg, "srgan", progress=False)
    g, d, opt_g, opt_d = _tiny()
    t = stand_in(g, d, opt_g, opt_d, pixel_loss=pixel_mse, content_loss=pixel_mse)
    for name in CONTRACT:
        assert hasattr(trainer, name), f"the Trainer lacks t.{name}"
        assert hasattr(t, name), f"the stand-in lacks t.{name}"
    assert t.cfg.srgan.adv_weight == trainer.cfg.srgan.adv_weight == 1e-3
    assert t.cfg.srgan.d_steps == trainer.cfg.srgan.d_steps == 1


def test_a_name_outside_the_contract_gets_one_sentence():
    g, d, opt_g, opt_d = _tiny()
    t = stand_in(g, d, opt_g, opt_d)
    with pytest.raises(AttributeError) as err:
        t.scheduler  # noqa: B018
    assert str(err.value).startswith(
        "the training step used t.scheduler, which is not part of what a step receives: t offers "
        "cfg, G, D, D_raw, opt_g"
    )
    assert str(err.value).endswith("(the step contract, sr_course/contract.py)")
    with pytest.raises(AttributeError, match="the stand-in's settings have no 'gp_weight'"):
        t.cfg.srgan.gp_weight  # noqa: B018


def test_the_students_steps_run_on_the_stand_in():
    g, d, opt_g, opt_d = _tiny()
    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32) * 2 - 1
    t = stand_in(
        g, d, opt_g, opt_d, pixel_loss=pixel_mse, content_loss=pixel_mse,
        adversarial=StandardGAN(), batches=[(lr, hr)] * 3,
    )  # fmt: skip
    before = [p.detach().clone() for p in g.parameters()]
    out = srresnet_step(t, lr, hr)
    assert set(out) == {"loss"} and not out["loss"].requires_grad
    out = srgan_step(t, lr, hr)
    assert set(out) == {"content", "adversarial", "discriminator"}
    assert any(not torch.equal(a, b) for a, b in zip(before, g.parameters()))
    train_srresnet_epoch(t)  # the epoch loop: every batch, then end_step after each
    assert t.iteration == 3 and [set(x) for x in t.logged] == [{"loss"}] * 3


def test_optimizers_given_as_a_function_are_built_when_the_step_first_uses_them():
    """The self-checks and the grader's probes hand the step a function that builds the optimisers:
    a step that fails before using them (the kit's stub) never builds them."""
    g, d, opt_g, opt_d = _tiny()
    built = []

    def optimizers():
        built.append("built")
        return opt_g, opt_d

    lr, hr = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 32, 32) * 2 - 1
    t = stand_in(
        g, d, optimizers=optimizers, content_loss=pixel_mse, adversarial=StandardGAN()
    )  # fmt: skip

    assert built == []  # stand_in() itself builds nothing
    srgan_step(t, lr, hr)
    assert built == ["built"] and t.opt_g is opt_g and t.opt_d is opt_d
    srgan_step(t, lr, hr)
    assert built == ["built"]
    with pytest.raises(
        ValueError, match="^stand_in: give opt_g and opt_d, or optimizers, not both$"
    ):
        stand_in(g, d, opt_g, optimizers=optimizers)


def test_the_srgan_self_check_builds_no_optimiser_for_an_unfinished_step(monkeypatch):
    """The kit's stub raises before it uses t.opt_g: the self-check says so without building the
    optimisers (an optimiser's first construction imports torch._dynamo, about 1.3 s of CPU)."""
    from sr_course import checks, solver

    def unfinished(t, lr, hr, update_generator=True):
        raise NotImplementedError("TODO: SRGAN step: write the step")

    adams = []
    adam = torch.optim.Adam
    monkeypatch.setattr(solver, "srgan_step", unfinished)
    monkeypatch.setattr(torch.optim, "Adam", lambda *a, **k: adams.append(1) or adam(*a, **k))
    with pytest.raises(checks.CheckFailed, match="^the SRGAN step is not implemented yet"):
        checks.check_srgan_step()
    assert adams == []
    monkeypatch.undo()
    checks.check_srgan_step()  # the reference's step: the optimisers are built and used
