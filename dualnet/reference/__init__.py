"""A float64 numpy reference for everything in the spec, independent of both frameworks.

One plain function per spec entry, named like the spec (in the style of JAX's
``lax_reference``): obvious code whose only job is to be right. When torch and TensorFlow
disagree, this is the arbiter.
"""

from dualnet.reference import activations, initializers, layers, losses, optimizers, training

__all__ = ["activations", "initializers", "layers", "losses", "optimizers", "training"]
