"""Access to the Kubernetes API: clients, exec and port-forward, with errors wrapped once."""
