"""Framework implementations of the neutral spec: one subpackage per framework.

Each subpackage has the same module names (``core``, ``nn``, ``initializers``, ``losses``,
``layers``, ``models``), so knowing where something lives for one framework tells you where it
lives for the other. Importing a subpackage imports its framework; nothing here does so at
``import dualnet`` time (see :mod:`dualnet._backend`).
"""
