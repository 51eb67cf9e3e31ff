"""The parts a config names: generator architectures beyond SRResNet, the GAN objectives, and the
name -> factory registries (architectures, losses, GAN objectives, optimisers) that training builds
from and the config's option lists come from."""
