"""The self-checks catch broken code with the sentence a student understands (instructor-only: the
broken versions below are pieces of the solution, so this file is left out of the student kit;
tests/grading/test_mutations.py runs the same sentences against many more mutants)."""

import pytest

from sr_course import checks, models
from sr_course.checks import CheckFailed


def test_srresnet_without_tanh_fails_its_check(monkeypatch):
    original = models.SRResNet.__init__

    def without_tanh(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self.tail.block = self.tail.block[:-1]  # the final activation forgotten

    monkeypatch.setattr(models.SRResNet, "__init__", without_tanh)
    with pytest.raises(CheckFailed) as err:
        checks.check_srresnet()
    assert str(err.value) == f"SRResNet: {checks.MESSAGES['sr range']}"


def test_residual_block_without_skip_fails_its_check(monkeypatch):
    monkeypatch.setattr(models.ResidualBlock, "forward", lambda self, x: self.conv2(self.conv1(x)))
    with pytest.raises(CheckFailed) as err:
        checks.check_blocks()
    assert str(err.value) == f"ResidualBlock: {checks.MESSAGES['residual skip']}"


def test_wrong_discriminator_size_fails_its_check(monkeypatch):
    original = models.Discriminator.__init__

    def smaller(self, kernel_size=3, n_channels=64, n_blocks=8, fc_size=1024):
        original(self, kernel_size, n_channels, n_blocks, fc_size=512)

    monkeypatch.setattr(models.Discriminator, "__init__", smaller)
    with pytest.raises(
        CheckFailed, match="Discriminator has 14,127,297 parameters, expected 23,565,505"
    ):
        checks.check_discriminator()


def test_gan_step_that_trains_d_in_the_g_step_is_caught(monkeypatch):
    from sr_course import solver

    monkeypatch.setattr(solver, "frozen", lambda module: _leave_frozen(module))
    with pytest.raises(
        CheckFailed, match=r"srgan_step failed: RuntimeError: .* means a network was left frozen"
    ):
        checks.check_srgan_step()


class _leave_frozen:
    def __init__(self, module):
        self.module = module

    def __enter__(self):
        for p in self.module.parameters():
            p.requires_grad_(False)

    def __exit__(self, *exc):
        return False


def test_vgg_truncation_index_values_and_a_miscount_fails_its_check(monkeypatch):
    """The TODO's answers (kept out of the kit: tests/test_models.py states only the worked
    example), and a count that stops at the convolution, before its ReLU."""
    assert models.vgg19_truncation_index(5, 4) == 36  # the paper's phi_(5,4)
    assert models.vgg19_truncation_index(2, 2) == 9
    assert models.vgg19_truncation_index(3, 1) == 12
    monkeypatch.setattr(
        models, "vgg19_truncation_index", lambda i, j: 35 if (i, j) == (5, 4) else 2
    )
    with pytest.raises(CheckFailed) as err:
        checks.check_vgg()
    assert str(err.value).startswith(
        "vgg19_truncation_index(2, 2) = 2: the first 2 layers of vgg19().features end at the ReLU "
        "after convolution 1, but phi_(2,2) ends at the ReLU after convolution 4"
    )
