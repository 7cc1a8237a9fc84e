"""The debugcap testbed: a real single-node Kubernetes cluster and S3 server on this machine.

Run as ``python -m testbed up|down|status|env``; see docs/testbed.md.
"""
