"""debugcap: capture evidence from running Go pods on Kubernetes without restarting them."""

__version__ = "0.1.0"
