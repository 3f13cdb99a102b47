"""mfgp: Bayesian multi-fidelity Gaussian processes for materials properties.

Importing mfgp changes no global setting; heavy dependencies load on first use.
"""

__version__ = "0.1.0"
